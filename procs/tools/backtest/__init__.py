"""b25 backtest: a strategy on recordings in one process, the same code as live (procs/tools/backtest/run.py)."""
