"""Latency measurement and fitting: ``b25 latency`` (procs/tools/latency/cli.py)."""
