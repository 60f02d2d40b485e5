"""What a strategy sees: the ``Strategy`` base class, read-only record views, and ``StrategyApi``.

A plugin (``strategies/<name>.py``) subclasses ``Strategy`` and pairs it with a Config struct
(a ``StrategyConfig``: frozen, kw_only, forbid_unknown_fields). The engine calls

    on_start()                      after construction (and after every reload)
    on_book(book: BookView)         each BookUpdate of a subscribed symbol
    on_trade(trade: TradeView)      each Trade of a subscribed symbol
    on_order_event(ev: OrderEventView, order: Order | None)   each OrderEvent of its own orders,
                                    and (kind ORDER_OPEN, ev.recovered) each order a previous
                                    process left working that it adopts (recovered_orders = "adopt")
    on_timer(token: int, now_ns: int)                         a timer set with api.set_timer
    on_stop()                       before a reload replaces it and at shutdown

Views wrap the flat tuple the ring read produced (one struct unpack per record, no numpy scalar
per field) and are reused for the next record: copy what you keep, never the view itself.
Prices are int ticks and quantities int lots (``api.tick(sid)`` is the exchange tick size in
ticks, ``api.step(sid)`` the lot step). Hot-path calls return codes: a tag > 0, or an ``ERR_*``
below zero; nothing on the hot path raises on purpose.
"""

from __future__ import annotations

from typing import Any, Protocol

from procs.core import log
from procs.core import messages as M
from procs.core.config import Section
from procs.core.instruments import Instrument

from .state import CANCELING, Order, StrategyState

StrategyConfig = Section  # the base of every strategy's Config

ERR_RING_FULL = -1  # orders.strategy is full (execution is behind): nothing was written
ERR_BAD_INTENT = -2  # qty/price/side out of range
ERR_NOT_RUNNING = -3  # the strategy is paused or stopped
ERR_SYMBOL = -4  # not one of the strategy's symbols
ERR_UNKNOWN_ORDER = -5  # cancel of a tag that is not open
# execution denied this strategy's last order for the whole system's state (halted, recovering,
# risk unavailable, breaker open, journal full) or its order rate: new orders are held here for
# [strategy] deny_hold_ms, not written to be denied again (cancels still go)
ERR_HELD = -6

# Signal.decision
DECISION_NONE = 0
DECISION_BUY = 1
DECISION_SELL = -1
DECISION_QUOTE = 2
DECISION_CANCEL = 3


class BookView:
    """Read-only view of one BookUpdate (top-N both sides); valid during the callback only."""

    __slots__ = ("_v", "depth", "_bq", "_ap", "_aq")

    def __init__(self, depth: int) -> None:
        self._v: tuple = (0,) * (9 + 4 * depth)
        self.depth = depth
        self._bq = 9 + depth
        self._ap = 9 + 2 * depth
        self._aq = 9 + 3 * depth

    symbol_id = property(lambda s: s._v[0])
    update_id = property(lambda s: s._v[1])
    ts_event = property(lambda s: s._v[2])
    ts_recv = property(lambda s: s._v[3])
    ts_pub = property(lambda s: s._v[4])
    n_bids = property(lambda s: s._v[5])
    n_asks = property(lambda s: s._v[6])
    flags = property(lambda s: s._v[7])
    seq = property(lambda s: s._v[8])

    @property
    def usable(self) -> bool:
        """Both sides present and not resyncing (levels are current)."""
        v = self._v
        return v[5] > 0 and v[6] > 0 and not v[7] & M.BOOK_RESYNCING

    @property
    def best_bid(self) -> int:
        return self._v[9] if self._v[5] else 0

    @property
    def best_ask(self) -> int:
        return self._v[self._ap] if self._v[6] else 0

    @property
    def best_bid_qty(self) -> int:
        return self._v[self._bq] if self._v[5] else 0

    @property
    def best_ask_qty(self) -> int:
        return self._v[self._aq] if self._v[6] else 0

    def bid_px(self, k: int) -> int:
        return self._v[9 + k]

    def bid_qty(self, k: int) -> int:
        return self._v[self._bq + k]

    def ask_px(self, k: int) -> int:
        return self._v[self._ap + k]

    def ask_qty(self, k: int) -> int:
        return self._v[self._aq + k]

    def bid_qty_sum(self, k: int) -> int:
        """Quantity of the best ``k`` bid levels (fewer if the book is thinner)."""
        n = min(k, self._v[5])
        return sum(self._v[self._bq:self._bq + n])

    def ask_qty_sum(self, k: int) -> int:
        n = min(k, self._v[6])
        return sum(self._v[self._aq:self._aq + n])

    @property
    def mid(self) -> float:
        """(best bid + best ask) / 2 in ticks; 0.0 when a side is empty."""
        v = self._v
        if not v[5] or not v[6]:
            return 0.0
        return (v[9] + v[self._ap]) * 0.5

    @property
    def microprice(self) -> float:
        """Size-weighted mid (leans toward the side with less quantity); 0.0 when a side is empty."""
        v = self._v
        if not v[5] or not v[6]:
            return 0.0
        bq, aq = v[self._bq], v[self._aq]
        if bq + aq <= 0:
            return (v[9] + v[self._ap]) * 0.5
        return (v[9] * aq + v[self._ap] * bq) / (bq + aq)

    def bids(self, k: int | None = None) -> list[tuple[int, int]]:
        """[(px, qty)] of the best k bids (allocates: for tools and tests, not the hot path)."""
        n = self._v[5] if k is None else min(k, self._v[5])
        return [(self._v[9 + i], self._v[self._bq + i]) for i in range(n)]

    def asks(self, k: int | None = None) -> list[tuple[int, int]]:
        n = self._v[6] if k is None else min(k, self._v[6])
        return [(self._v[self._ap + i], self._v[self._aq + i]) for i in range(n)]


class TradeView:
    """Read-only view of one Trade; valid during the callback only."""

    __slots__ = ("_v",)

    def __init__(self) -> None:
        self._v: tuple = (0,) * 8

    symbol_id = property(lambda s: s._v[0])
    trade_id = property(lambda s: s._v[1])
    price = property(lambda s: s._v[2])
    qty = property(lambda s: s._v[3])
    ts_event = property(lambda s: s._v[4])
    ts_recv = property(lambda s: s._v[5])
    ts_pub = property(lambda s: s._v[6])
    flags = property(lambda s: s._v[7])

    @property
    def aggressor(self) -> int:
        """BUY when the taker bought, SELL when the taker sold (the buyer was the maker)."""
        return M.SELL if self._v[7] & M.TRADE_BUYER_MAKER else M.BUY


class OrderEventView:
    """Read-only view of one OrderEvent (field names as in ``messages.OrderEvent``)."""

    __slots__ = ("_v",)

    def __init__(self) -> None:
        self._v: tuple = (0,) * 25

    event_seq = property(lambda s: s._v[0])
    kind = property(lambda s: s._v[1])
    strategy_id = property(lambda s: s._v[2])
    symbol_id = property(lambda s: s._v[3])
    side = property(lambda s: s._v[4])
    order_type = property(lambda s: s._v[5])
    client_tag = property(lambda s: s._v[6])
    order_id = property(lambda s: s._v[7])
    price = property(lambda s: s._v[8])
    qty = property(lambda s: s._v[9])
    cum_qty = property(lambda s: s._v[10])
    last_px = property(lambda s: s._v[11])
    last_qty = property(lambda s: s._v[12])
    fee_e8 = property(lambda s: s._v[13])
    reason = property(lambda s: s._v[14])
    trade_id = property(lambda s: s._v[15])
    ts_event = property(lambda s: s._v[16])
    ts_recv = property(lambda s: s._v[17])
    ts_intent = property(lambda s: s._v[18])
    ts_md_recv = property(lambda s: s._v[19])
    ts_sent = property(lambda s: s._v[20])
    intent_id = property(lambda s: s._v[21])
    source = property(lambda s: s._v[22])
    flags = property(lambda s: s._v[23])

    @property
    def client_order_id(self) -> str:
        return self._v[24].rstrip(b"\0").decode(errors="replace")

    @property
    def kind_name(self) -> str:
        return M.EVENT_NAMES.get(self._v[1], str(self._v[1]))

    @property
    def recovered(self) -> bool:
        """Execution reported this order after a restart (kind ORDER_OPEN: an order a previous
        process of this strategy left working, now adopted; or a reconciliation's report)."""
        return bool(self._v[23] & M.FLAG_RECOVERED)

    @property
    def is_fill(self) -> bool:
        return self._v[1] == M.ORDER_FILLED or self._v[1] == M.ORDER_PARTIALLY_FILLED


class Strategy:
    """Base of every strategy plugin; override the callbacks you need."""

    config_class: type | None = None  # the Config struct; default: <ClassName>Config in the module

    def __init__(self, config: Any, api: StrategyApi) -> None:
        self.config = config
        self.api = api

    def on_start(self) -> None:
        pass

    def on_book(self, book: BookView) -> None:
        pass

    def on_trade(self, trade: TradeView) -> None:
        pass

    def on_order_event(self, event: OrderEventView, order: Order | None) -> None:
        pass

    def on_timer(self, token: int, now_ns: int) -> None:
        pass

    def on_stop(self) -> None:
        pass


class Clock(Protocol):
    def now_ns(self) -> int: ...


class StrategyHost(Protocol):
    """What ``StrategyApi`` needs of the engine it forwards to (``engine.Engine`` implements it;
    a Protocol here keeps the api from importing the engine that imports it)."""

    instruments: list[Instrument]
    symbols: list[str]
    ticks: list[int]
    steps: list[int]
    clock: Clock

    def bad_intent(self) -> int: ...
    def submit(self, api: StrategyApi, sid: int, side: int, order_type: int, tif: int, price: int, qty: int,
               reduce_only: bool, trigger_price: int = 0, callback_bps: int = 0, flags: int = 0) -> int: ...
    def cancel(self, api: StrategyApi, tag: int) -> int: ...
    def modify(self, api: StrategyApi, tag: int, price: int, qty: int) -> int: ...
    def cancel_all(self, api: StrategyApi, sid: int = -1) -> int: ...
    def mid(self, sid: int) -> float: ...
    def signal(self, api: StrategyApi, sid: int, value: float, decision: int, aux: float) -> bool: ...
    def set_timer(self, api: StrategyApi, token: int, delay_ns: int, interval_ns: int = 0) -> None: ...
    def cancel_timer(self, api: StrategyApi, token: int) -> None: ...


class StrategyApi:
    """The engine's face toward one strategy: intents, its own orders/positions, signals, timers.

    One per strategy id; it survives reloads (the new instance gets the same api and state).
    """

    def __init__(self, engine: StrategyHost, sid: str, num: int, state: StrategyState, symbol_ids: list[int]) -> None:
        self._engine = engine
        self.id = sid
        self.num = num  # strategy_id in ring records
        self.state = state
        self.symbol_ids = symbol_ids
        self.running = False  # set by the engine: a paused or replaced instance cannot send intents
        n = len(engine.instruments)
        self._mine = [False] * n
        for s in symbol_ids:
            self._mine[s] = True
        self._sig_ts = [-(1 << 62)] * n  # signal rate limit per symbol: last publish time and decision
        self._sig_dec = [-99] * n

    # -- intents (hot path: codes, not exceptions) -------------------------------------------
    def submit_limit(self, symbol_id: int, side: int, price: int, qty: int, tif: int = M.GTC,
                     reduce_only: bool = False) -> int:
        """A limit order; returns its client tag (> 0) or an ERR_* code (< 0)."""
        if price <= 0:
            return self._engine.bad_intent()
        return self._engine.submit(self, symbol_id, side, M.LIMIT, tif, price, qty, reduce_only)

    def submit_market(self, symbol_id: int, side: int, qty: int, reduce_only: bool = False) -> int:
        """A market order; returns its client tag (> 0) or an ERR_* code (< 0)."""
        return self._engine.submit(self, symbol_id, side, M.MARKET, M.IOC, 0, qty, reduce_only)

    def cancel(self, tag: int) -> int:
        """Cancel one open order by tag; returns the tag or an ERR_* code. Idempotent while canceling."""
        return self._engine.cancel(self, tag)

    def stop_loss(self, symbol_id: int, side: int, trigger_price: int, qty: int, *, on_mark: bool = False,
                  reduce_only: bool = True) -> int:
        """A STOP_MARKET order: a MARKET order of ``qty`` once the price reaches ``trigger_price``
        against you (a SELL at or below it, a BUY at or above); the last trade price, or the mark
        with ``on_mark``. Reduce-only by default (it protects a position). Returns its tag or an
        ERR_* code; ``triggered`` is published when it fires."""
        return self.submit_conditional(symbol_id, side, M.STOP_MARKET, qty, trigger_price, on_mark=on_mark,
                                       reduce_only=reduce_only)

    def take_profit(self, symbol_id: int, side: int, trigger_price: int, qty: int, *, on_mark: bool = False,
                    reduce_only: bool = True) -> int:
        """A TAKE_PROFIT_MARKET order: as ``stop_loss`` with the trigger the other way (a SELL at
        or above ``trigger_price``, a BUY at or below)."""
        return self.submit_conditional(symbol_id, side, M.TAKE_PROFIT_MARKET, qty, trigger_price, on_mark=on_mark,
                                       reduce_only=reduce_only)

    def trailing_stop(self, symbol_id: int, side: int, callback_bps: int, qty: int, *, activation_price: int = 0,
                      on_mark: bool = False, reduce_only: bool = True) -> int:
        """A TRAILING_STOP_MARKET order: follows the best price since it was placed (once it has
        reached ``activation_price``, when given) and goes as a MARKET order when the price comes
        back ``callback_bps`` from it (10..1000, in steps of 10: 0.1 % .. 10 %)."""
        return self.submit_conditional(symbol_id, side, M.TRAILING_STOP_MARKET, qty, activation_price,
                                       callback_bps=callback_bps, on_mark=on_mark, reduce_only=reduce_only)

    def submit_conditional(self, symbol_id: int, side: int, order_type: int, qty: int, trigger_price: int, *,
                           callback_bps: int = 0, on_mark: bool = False, reduce_only: bool = True) -> int:
        """A conditional order (``M.STOP_MARKET``, ``M.TAKE_PROFIT_MARKET``,
        ``M.TRAILING_STOP_MARKET``). Execution counts it in the pre-trade checks as if it filled
        (its quantity against the position limit, its notional at the trigger price) and keeps it
        across its own restarts; it waits at the venue, so it fires while b25 is down too."""
        if order_type not in M.CONDITIONAL_TYPES or M.conditional_terms_fault(order_type, 0, trigger_price,
                                                                                callback_bps):
            return self._engine.bad_intent()
        return self._engine.submit(self, symbol_id, side, order_type, M.GTC, 0, qty, reduce_only, trigger_price,
                                   callback_bps, M.INTENT_ON_MARK if on_mark else 0)

    def modify(self, order: Order | int, price: int | None = None, qty: int | None = None) -> int:
        """Amend an open LIMIT order (an ``Order`` or its tag) to a new ``price`` (ticks) and/or
        ``qty`` (lots, above what has filled); None keeps it. Returns the tag or an ERR_* code.
        Execution checks the new terms as a new order's (ORDER_MODIFY_REJECTED with the reason
        when denied or refused); ``ORDER_MODIFIED`` says the venue took them (the order's
        ``price``/``qty`` follow then). On Binance USD-M an amended order loses its queue place."""
        tag = order if isinstance(order, int) else order.tag
        return self._engine.modify(self, tag, price or 0, qty or 0)

    def cancel_all(self, symbol_id: int = -1) -> int:
        """Cancel every open order (of one symbol, or all); returns how many cancels were written."""
        return self._engine.cancel_all(self, symbol_id)

    # -- own orders and positions ------------------------------------------------------------
    def open_orders(self, symbol_id: int) -> list[Order]:
        """The open orders of one symbol (the engine's list: do not modify)."""
        return self.state.by_symbol[symbol_id]

    def working(self, symbol_id: int, side: int) -> Order | None:
        """The first open order on ``side`` that is not being cancelled, or None."""
        for o in self.state.by_symbol[symbol_id]:
            if o.side == side and o.status != CANCELING:
                return o
        return None

    def has_canceling(self, symbol_id: int, side: int) -> bool:
        for o in self.state.by_symbol[symbol_id]:
            if o.side == side and o.status == CANCELING:
                return True
        return False

    def order(self, tag: int) -> Order | None:
        return self.state.orders.get(tag)

    def position(self, symbol_id: int) -> int:
        """Net position in lots (signed)."""
        return self.state.positions[symbol_id].qty

    def pnl(self, symbol_id: int) -> tuple[float, float, float]:
        """(realized, unrealized from mid, fees) in the quote asset."""
        return self.state.pnl(symbol_id, self._engine.mid(symbol_id))

    # -- instruments -------------------------------------------------------------------------
    def instrument(self, symbol_id: int) -> Instrument:
        return self._engine.instruments[symbol_id]

    def tick(self, symbol_id: int) -> int:
        """The exchange tick size in ticks (prices you send must be multiples of it)."""
        return self._engine.ticks[symbol_id]

    def step(self, symbol_id: int) -> int:
        """The exchange lot step in lots."""
        return self._engine.steps[symbol_id]

    def symbol(self, symbol_id: int) -> str:
        return self._engine.symbols[symbol_id]

    def qty_to_lots(self, symbol_id: int, text: str) -> int:
        return self._engine.instruments[symbol_id].qty_to_lots(text)

    # -- signals, timers, time, logs ---------------------------------------------------------
    def signal(self, symbol_id: int, value: float, decision: int = DECISION_NONE, aux: float = 0.0) -> bool:
        """Publish a Signal for the TUI (rate-limited per symbol; a changed decision always goes)."""
        return self._engine.signal(self, symbol_id, value, decision, aux)

    def set_timer(self, token: int, delay_ns: int, interval_ns: int = 0) -> None:
        """Call on_timer(token, now) after ``delay_ns`` (then every ``interval_ns`` if > 0)."""
        self._engine.set_timer(self, token, delay_ns, interval_ns)

    def cancel_timer(self, token: int) -> None:
        self._engine.cancel_timer(self, token)

    def now_ns(self) -> int:
        """The engine clock (monotonic ns live; simulated time in a replay)."""
        return self._engine.clock.now_ns()

    def log(self, event: str, **fields: Any) -> None:
        """One info line tagged with the strategy id (never per market event)."""
        log.info(event, strategy=self.id, **fields)

    def log_once(self, key: str, event: str, **fields: Any) -> None:
        """Log ``event`` the first time ``key`` is seen for this strategy."""
        log.once(f"{self.id}/{key}", "warn", event, strategy=self.id, **fields)
