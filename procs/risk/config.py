"""The ``[risk]`` config section: limits, breach actions, reconciliation and the agent's loop.

Amounts are decimal text (quote asset for money, base asset for quantities) so a limit is
exact; they are converted once at start (and on Reload) into lots and 1e-8 quote units by the
symbol's Instrument (``Limits.build``). ``0`` means "no limit" everywhere, as in RiskState.

Example::

    [risk]
    max_daily_loss = "500"          # quote (USDT); breach -> on_loss_breach
    max_drawdown = "1000"           # from the equity peak; breach -> on_drawdown_breach
    on_loss_breach = "HALTED"
    on_drawdown_breach = "REDUCING"
    max_open_orders = 50
    max_orders_per_s = 20
    reconcile_interval_s = 5.0

    max_margin_ratio = "0.5"        # maintenance margin / margin balance; breach -> REDUCING, then HALTED
    crisis_max_volatility_bps = 40  # crisis mode (procs/risk/crisis.py): REDUCING until an operator clears it
    crisis_max_spread_bps = 50
    crisis_max_feed_age_s = 5
    crisis_max_drawdown_velocity = "300"

    [risk.default]                  # every configured symbol without its own table
    max_order_qty = "0.1"
    max_order_notional = "10000"
    max_position = "0.5"
    max_open_orders = 10
    price_band_bps = 200
    max_leverage = "3"              # position notional / margin balance; breach -> REDUCING, then HALTED

    [risk.symbols.BTCUSDT]          # only the fields given replace [risk.default]'s
    max_position = "1"
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import ClassVar, Literal

import msgspec

from procs.core.agent import Runtime
from procs.core.config import Section

StateName = Literal["ACTIVE", "REDUCING", "HALTED"]


def decimal_text(text: str, field: str, allow_negative: bool = False) -> Decimal:
    """A finite decimal from config text; ValueError naming the field otherwise."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {field}={text!r}") from None
    if not d.is_finite() or (d < 0 and not allow_negative):
        raise ValueError(f"must be a finite{'' if allow_negative else ' non-negative'} decimal: {field}={text!r}")
    return d


class SymbolLimits(Section):
    """Per-symbol pre-trade limits (execution checks them in line); "0" / 0 = no limit."""

    max_order_qty: str = "0"  # base asset
    max_order_notional: str = "0"  # quote asset
    max_position: str = "0"  # base asset, absolute net position over every strategy
    max_open_orders: int = 0
    price_band_bps: int = 0  # a limit price further than this from the mark is denied
    max_leverage: str = "0"  # position notional at the mark / the account's margin balance

    def __post_init__(self) -> None:
        for f in ("max_order_qty", "max_order_notional", "max_position", "max_leverage"):
            decimal_text(getattr(self, f), f)
        if self.max_open_orders < 0 or self.price_band_bps < 0:
            raise ValueError(f"must be >= 0: max_open_orders={self.max_open_orders} "
                             f"price_band_bps={self.price_band_bps}")


class SymbolOverrides(Section):
    """``[risk.symbols.<SYMBOL>]``: only the fields given replace ``[risk.default]``'s."""

    max_order_qty: str | None = None
    max_order_notional: str | None = None
    max_position: str | None = None
    max_open_orders: int | None = None
    price_band_bps: int | None = None
    max_leverage: str | None = None

    def __post_init__(self) -> None:
        for f in ("max_order_qty", "max_order_notional", "max_position", "max_leverage"):
            if getattr(self, f) is not None:
                decimal_text(getattr(self, f), f)
        for f in ("max_open_orders", "price_band_bps"):
            if (getattr(self, f) or 0) < 0:
                raise ValueError(f"must be >= 0: {f}={getattr(self, f)}")

    def merged(self, default: SymbolLimits) -> SymbolLimits:
        given = {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not None}
        return msgspec.structs.replace(default, **given) if given else default


class HistoryConfig(Section):
    """``[risk.history]``: the live P&L history (procs/risk/history.py); off in a replay."""

    enabled: bool = True
    dir: str = "run/history"  # files go in <dir>/<instance>/
    interval_s: float = 1.0  # one sample (a row per strategy and symbol, and the account) this often
    seal_s: float = 300.0  # the day file takes the tail as a row group this often (and at midnight, and at stop)

    def __post_init__(self) -> None:
        if not 0.1 <= self.interval_s <= 60:
            raise ValueError(f"interval_s must be 0.1..60: interval_s={self.interval_s}")
        if not self.interval_s <= self.seal_s <= 3600:
            raise ValueError(f"seal_s must be interval_s..3600: seal_s={self.seal_s}")


class RiskRuntime(Runtime):
    """``[risk.runtime]``: cpu, sched and idle, which blocks, not backs off: risk is off the order
    path, so backoff's spin after each book update would cost CPU for no latency gain
    (docs/decisions/005-risk-idles-by-blocking.md)."""

    idle: str = "block"
    agent_fields: ClassVar[tuple[str, ...]] = ("idle",)


class RiskConfig(Section):
    """The risk process: limits, what a breach does, reconciliation with the exchange."""

    # -- global limits -----------------------------------------------------------------------
    max_open_orders: int = 0
    max_orders_per_s: int = 0
    max_daily_loss: str = "0"  # quote; net P&L (realized + unrealized - fees) since 00:00 UTC
    max_drawdown: str = "0"  # quote; equity peak - equity
    on_loss_breach: Literal["REDUCING", "HALTED"] = "HALTED"
    on_drawdown_breach: Literal["REDUCING", "HALTED"] = "REDUCING"
    capital: str = "0"  # quote; equity = capital + net P&L (what the drawdown is measured on)
    initial_state: StateName = "ACTIVE"
    # the kill switch and the operator, daily-loss and drawdown holds outlive a restart here (a
    # crash must not clear what only an operator may); "" = run/risk/<instance>.holds.json,
    # "-" = not kept (a replay never keeps them)
    holds_file: str = ""
    cancel_all_on_reducing: bool = False  # HALTED always sends CancelAll; REDUCING only if set
    # -- margin (procs/risk/margin.py, docs/decisions/045-margin-model.md) ------------------------
    # the exchange's margin ratio (maintenance margin / margin balance; it liquidates at 1): above
    # this -> REDUCING (the "minimum margin" limit, in the exchange's direction); "0" = no limit
    max_margin_ratio: str = "0"
    limit_halt_after_s: float = 30.0  # a leverage or margin-ratio breach still there this long -> HALTED
    mark_max_age_s: float = 5.0  # the venue's mark price older than this: the book mid is used instead
    # -- crisis mode (procs/risk/crisis.py): REDUCING by itself, an operator clears it; 0 = off --
    crisis_max_volatility_bps: float = 0.0  # stdev of 1 s mid returns over the window, bps
    crisis_volatility_window_s: float = 60.0
    crisis_max_spread_bps: float = 0.0  # best bid/ask spread, bps of the mid ...
    crisis_spread_for_s: float = 2.0  # ... held this long
    crisis_max_feed_age_s: float = 0.0  # no good book this long on a symbol with a position
    crisis_max_drawdown_velocity: str = "0"  # quote lost from the window's equity high
    crisis_drawdown_window_s: float = 60.0
    default: SymbolLimits = msgspec.field(default_factory=SymbolLimits)
    symbols: dict[str, SymbolOverrides] = msgspec.field(default_factory=dict)
    # -- reconciliation (the venue's account and positions, in a thread; [venue] says where) --
    reconcile: bool = True
    reconcile_interval_s: float = 5.0
    reconcile_timeout_s: float = 3.0
    # a result reaches the engine this long after the venue answered: fills the answer holds but
    # whose events were still on their way have come by then (docs/decisions/047-reconcile-at-answer-time.md);
    # at most reconcile_interval_s
    reconcile_settle_s: float = 1.0
    # how far the venue's clock (the times of its fills) may be from ours; a fill that close to
    # the request may or may not be in the answer
    reconcile_clock_tolerance_ms: int = 250
    # consecutive mismatching checks before it counts (a fill slower than reconcile_settle_s)
    mismatch_confirmations: int = 2
    # at start, book what the exchange holds beyond our ledger (after the exec backlog) as
    # strategy -2, so a restarted risk publishes the real net positions
    seed_from_exchange: bool = True
    # -- the agent ---------------------------------------------------------------------------
    publish_interval_ms: int = 100  # risk.state is also written on every change
    attach_timeout_s: float = 0.0  # wait for exec/md.book at start; after that retried each second
    runtime: RiskRuntime = msgspec.field(default_factory=lambda: RiskRuntime())
    history: HistoryConfig = msgspec.field(default_factory=HistoryConfig)
    # replay harness (``b25 replay``) only: the UTC day follows the simulator's ``sim.clock``
    # block (procs/core/simclock.py) and the lockstep gauges are kept
    sim_clock: bool = False
    # a reload (procs.core.reload) takes every other field, new ones included: the engine reads
    # them from its current config; these are read once, at start
    restart_only: ClassVar[frozenset[str]] = frozenset({
        "runtime", "history", "holds_file", "sim_clock", "attach_timeout_s", "reconcile", "reconcile_interval_s",
        "reconcile_timeout_s", "reconcile_settle_s", "seed_from_exchange", "publish_interval_ms", "initial_state", "capital"})

    def __post_init__(self) -> None:
        for f in ("max_daily_loss", "max_drawdown", "capital", "max_margin_ratio", "crisis_max_drawdown_velocity"):
            decimal_text(getattr(self, f), f)
        for f in ("limit_halt_after_s", "mark_max_age_s", "crisis_volatility_window_s", "crisis_drawdown_window_s"):
            if getattr(self, f) <= 0:
                raise ValueError(f"must be > 0: {f}={getattr(self, f)}")
        for f in ("crisis_max_volatility_bps", "crisis_max_spread_bps", "crisis_spread_for_s", "crisis_max_feed_age_s"):
            if getattr(self, f) < 0:
                raise ValueError(f"must be >= 0: {f}={getattr(self, f)}")
        if self.max_open_orders < 0 or self.max_orders_per_s < 0:
            raise ValueError(f"must be >= 0: max_open_orders={self.max_open_orders} "
                             f"max_orders_per_s={self.max_orders_per_s}")
        if self.reconcile_interval_s <= 0 or self.reconcile_timeout_s <= 0:
            raise ValueError(f"must be > 0: reconcile_interval_s={self.reconcile_interval_s} "
                             f"reconcile_timeout_s={self.reconcile_timeout_s}")
        if self.reconcile_settle_s < 0 or self.reconcile_clock_tolerance_ms < 0:
            raise ValueError(f"must be >= 0: reconcile_settle_s={self.reconcile_settle_s} "
                             f"reconcile_clock_tolerance_ms={self.reconcile_clock_tolerance_ms}")
        if not 1 <= self.publish_interval_ms <= 100:
            raise ValueError(f"publish_interval_ms must be 1..100: publish_interval_ms={self.publish_interval_ms}")
        if self.mismatch_confirmations < 1:
            raise ValueError(f"mismatch_confirmations must be >= 1: {self.mismatch_confirmations}")

    def limits_for(self, symbol: str) -> SymbolLimits:
        """The symbol's limits: ``[risk.default]`` with its own table's fields on top."""
        over = self.symbols.get(symbol)
        return over.merged(self.default) if over is not None else self.default
