"""Risk: positions and P&L ledger, limits, trading-state machine, reconciliation, alerts.

``config`` ([risk] section), ``ledger`` (exact integer positions and P&L), ``limits`` (config ->
RiskState integers), ``state`` (ACTIVE/REDUCING/HALTED from holds), ``engine`` (ties them
together, no I/O), ``reconcile`` (signed REST queries in a thread), ``agent`` (the shm side that
``procs.risk`` runs).
"""
