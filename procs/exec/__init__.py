"""The order path's client side: pre-trade check, client order ids, transports, limiter,
breaker, order state machine, journal and reconciliation (run by ``procs/execution.py``)."""
