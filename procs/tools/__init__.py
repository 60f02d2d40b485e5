"""Harnesses and operator tools: replay, bench, affinity and the Stack (a whole b25 instance)."""
