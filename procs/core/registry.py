"""The b25 trading registry: every ring and state block, declared once (STYLE.md example 4).

Producers and named consumers come from the service table (``procs.core.services``); this module
adds what each ring holds and how it behaves.

| name | record | policy | producer -> named consumers |
|---|---|---|---|
| md.book | BookUpdate | broadcast | market_data -> strategy, risk |
| md.trade | Trade | broadcast | market_data -> strategy |
| orders.strategy | OrderIntent | gating | strategy -> execution |
| orders.manual | OrderIntent | gating | tui / ops API -> execution |
| orders.remote | OrderIntent | gating | bridge (remote strategies over NATS) -> execution |
| exec | OrderEvent | gating | execution -> strategy, risk |
| strategy.signals | Signal | broadcast | strategy -> (observers: TUI) |
| alerts.<proc> | Alert | broadcast | risk, execution, market_data, strategy, bridge -> (observers) |
| book.<symbol> | BookUpdate | state | market_data |
| risk.state | RiskState | state | risk -> execution (in line) |
| status.<proc> | ProcessStatus | state | every process |

Observers (TUI, monitor, tools) read any ring without a slot and never gate it.
"""

from __future__ import annotations

from shm import layout as L
from shm.registry import Registry, RingSpec, StateSpec

from . import messages as M
from . import services

MD_BOOK = "md.book"
MD_TRADE = "md.trade"
ORDERS_STRATEGY = "orders.strategy"
ORDERS_MANUAL = "orders.manual"
ORDERS_REMOTE = "orders.remote"
EXEC = "exec"
SIGNALS = "strategy.signals"
RISK_STATE = "risk.state"
ALERT_PRODUCERS = services.alert_producers()
PROCESSES = services.NAMES


def book_state_name(symbol: str) -> str:
    return f"book.{symbol}"


def alerts_name(proc: str) -> str:
    return f"alerts.{proc}"


def build_registry(depth: int = M.DEFAULT_DEPTH) -> Registry:
    """The registry for a deployment whose books carry ``depth`` levels per side."""
    reg = Registry()
    book = M.book_update_dtype(depth)
    consumers = services.consumers_of  # the named consumers of each ring come from the service table
    reg.ring(RingSpec(MD_BOOK, book, 4096, L.POLICY_BROADCAST, consumers(MD_BOOK)))
    reg.ring(RingSpec(MD_TRADE, M.Trade, 16384, L.POLICY_BROADCAST, consumers(MD_TRADE)))
    reg.ring(RingSpec(ORDERS_STRATEGY, M.OrderIntent, 4096, L.POLICY_GATING, consumers(ORDERS_STRATEGY)))
    reg.ring(RingSpec(ORDERS_MANUAL, M.OrderIntent, 256, L.POLICY_GATING, consumers(ORDERS_MANUAL)))
    reg.ring(RingSpec(ORDERS_REMOTE, M.OrderIntent, 1024, L.POLICY_GATING, consumers(ORDERS_REMOTE)))
    reg.ring(RingSpec(EXEC, M.OrderEvent, 8192, L.POLICY_GATING, consumers(EXEC)))
    reg.ring(RingSpec(SIGNALS, M.Signal, 4096, L.POLICY_BROADCAST, consumers(SIGNALS)))
    for p in ALERT_PRODUCERS:
        reg.ring(RingSpec(alerts_name(p), M.Alert, 256, L.POLICY_BROADCAST, consumers(alerts_name(p))))
    reg.state(StateSpec("book.{symbol}", book, 1))
    reg.state(StateSpec(RISK_STATE, M.RiskState, 1))
    return reg
