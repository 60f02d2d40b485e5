"""The replay harness: the real processes on recorded data (``b25 replay``), deterministic in lockstep.

See procs/replay/run.py (one replay through an isolated Stack), procs/replay/lockstep.py (the
barrier and its protocol), procs/replay/summary.py (orders, fills, P&L, the journal hash) and
procs/replay/report.py (the report folder and plots).
"""
