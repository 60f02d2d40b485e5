"""The b25 trading registry: every ring and state block, declared once (STYLE.md example 4).

Producers and named consumers come from the service table (``procs.core.services``); this module
adds what each ring holds and how it behaves.

| name | record | policy | producer -> named consumers |
|---|---|---|---|
| md.book | BookUpdate | broadcast | market_data -> strategy, risk |
| md.trade | Trade | broadcast | market_data -> strategy |
| md.mark | MarkPrice | broadcast | market_data -> risk |
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
from .config import Section

MD_BOOK = "md.book"
MD_TRADE = "md.trade"
MD_MARK = "md.mark"
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


MIN_RING = 16
MAX_RING = 1 << 20


class RingCapacities(Section):
    """``[deploy.rings]``: records per ring, each a power of two (the ring indexes with a mask).

    A broadcast ring this many records behind its producer drops its oldest records for a slow
    observer; a gating ring makes its producer wait once its slowest named consumer is this far
    behind. Every producer creates its ring from these and consumers read the capacity from the
    segment header, so one deployment's processes always agree (a producer restarted with a
    different capacity over a live segment fails naming both)."""

    md_book: int = 4096
    md_trade: int = 16384
    md_mark: int = 1024
    orders_strategy: int = 4096
    orders_manual: int = 256
    orders_remote: int = 1024
    exec: int = 8192
    strategy_signals: int = 4096
    alerts: int = 256  # each alerts.<process> ring

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            n = getattr(self, name)
            if n & (n - 1) or not MIN_RING <= n <= MAX_RING:
                raise ValueError(f"{name} must be a power of two from {MIN_RING} to {MAX_RING} "
                                 f"(the ring indexes records with a mask): {name}={n}")

    def of(self, ring: str) -> int:
        """The capacity of the ring named ``ring`` (``alerts.<proc>`` -> ``alerts``)."""
        field = "alerts" if ring.startswith("alerts.") else ring.replace(".", "_")
        return int(getattr(self, field))


def build_registry(depth: int = M.DEFAULT_DEPTH, rings: RingCapacities | None = None) -> Registry:
    """The registry for a deployment whose books carry ``depth`` levels per side and whose rings
    hold ``rings`` records (``procs.core.deploy.registry`` builds it from the config file)."""
    reg = Registry()
    book = M.book_update_dtype(depth)
    cap = (rings or RingCapacities()).of
    consumers = services.consumers_of  # the named consumers of each ring come from the service table
    reg.ring(RingSpec(MD_BOOK, book, cap(MD_BOOK), L.POLICY_BROADCAST, consumers(MD_BOOK)))
    reg.ring(RingSpec(MD_TRADE, M.Trade, cap(MD_TRADE), L.POLICY_BROADCAST, consumers(MD_TRADE)))
    reg.ring(RingSpec(MD_MARK, M.MarkPrice, cap(MD_MARK), L.POLICY_BROADCAST, consumers(MD_MARK)))
    reg.ring(RingSpec(ORDERS_STRATEGY, M.OrderIntent, cap(ORDERS_STRATEGY), L.POLICY_GATING,
                      consumers(ORDERS_STRATEGY)))
    reg.ring(RingSpec(ORDERS_MANUAL, M.OrderIntent, cap(ORDERS_MANUAL), L.POLICY_GATING, consumers(ORDERS_MANUAL)))
    reg.ring(RingSpec(ORDERS_REMOTE, M.OrderIntent, cap(ORDERS_REMOTE), L.POLICY_GATING, consumers(ORDERS_REMOTE)))
    reg.ring(RingSpec(EXEC, M.OrderEvent, cap(EXEC), L.POLICY_GATING, consumers(EXEC)))
    reg.ring(RingSpec(SIGNALS, M.Signal, cap(SIGNALS), L.POLICY_BROADCAST, consumers(SIGNALS)))
    for p in ALERT_PRODUCERS:
        reg.ring(RingSpec(alerts_name(p), M.Alert, cap(alerts_name(p)), L.POLICY_BROADCAST,
                          consumers(alerts_name(p))))
    reg.state(StateSpec("book.{symbol}", book, 1))
    reg.state(StateSpec(RISK_STATE, M.RiskState, 1))
    return reg
