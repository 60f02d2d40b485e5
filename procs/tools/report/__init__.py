"""``b25 report``: what a session did, from execution's journal (live, replay or backtest).

    b25 report [--journal FILE | --run DIR] [--from T --to T] [--json] [--html DIR]

``procs.tools.report.metrics`` computes every figure from the journal records and a ``Session``
(symbols, instruments, strategy names, capital, the final marks); ``render`` prints it as text
and writes the self-contained HTML page; ``cli`` finds the journal and the session.
"""
