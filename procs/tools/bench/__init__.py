"""Benchmarks behind ``b25 bench``; each prints the peer baseline beside b25's figure."""
