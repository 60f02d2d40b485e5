"""The simulator's true book: the state every stream, snapshot, fill and fault is checked against.

Per symbol, bids and asks are ``dict[price_ticks -> qty_lots]`` with a cached best price per
side (recomputed lazily only after the best level is removed), the last applied update id and
a mark price. ``Market`` implements ``procs.exchange_sim.api.MarketView``; every level change and market
trade is passed to the registered ``MarketListener``s in the order it happened.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from procs.core.instruments import Instrument
from procs.exchange_sim.api import MarketListener
from procs.exchange_sim.wallclock import wall_ms

_POW10 = [10**i for i in range(19)]


def fixed(value: int, scale: int) -> str:
    """Integer units of 10**-scale -> decimal text with exactly ``scale`` decimals, as Binance
    writes prices and quantities ("63943.90", "0.010")."""
    if scale == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), _POW10[scale])
    return f"{sign}{whole}.{frac:0{scale}d}"


class SymbolBook:
    """One symbol's true L2 book."""

    __slots__ = ("symbol", "instrument", "bids", "asks", "last_u", "mark_ticks", "mark_recorded", "_bb", "_ba",
                 "_bb_ok", "_ba_ok")

    def __init__(self, instrument: Instrument) -> None:
        self.symbol = instrument.symbol
        self.instrument = instrument
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last_u = 0
        self.mark_ticks: int | None = None
        self.mark_recorded = False  # a replay carries the exchange's own mark for this symbol
        self._bb: int | None = None
        self._ba: int | None = None
        self._bb_ok = True
        self._ba_ok = True

    def set_level(self, is_bid: bool, px: int, qty: int) -> None:
        """Absolute qty at a level (0 deletes); keeps the cached best exact or marks it stale."""
        if is_bid:
            if qty > 0:
                self.bids[px] = qty
                if self._bb_ok and (self._bb is None or px > self._bb):
                    self._bb = px
            elif self.bids.pop(px, None) is not None and px == self._bb:
                self._bb_ok = False
        else:
            if qty > 0:
                self.asks[px] = qty
                if self._ba_ok and (self._ba is None or px < self._ba):
                    self._ba = px
            elif self.asks.pop(px, None) is not None and px == self._ba:
                self._ba_ok = False

    def best_bid_px(self) -> int | None:
        if not self._bb_ok:
            self._bb = max(self.bids) if self.bids else None
            self._bb_ok = True
        return self._bb

    def best_ask_px(self) -> int | None:
        if not self._ba_ok:
            self._ba = min(self.asks) if self.asks else None
            self._ba_ok = True
        return self._ba

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bb = self._ba = None
        self._bb_ok = self._ba_ok = True

    def levels(self, is_bid: bool, n: int) -> list[tuple[int, int]]:
        side = self.bids if is_bid else self.asks
        if n <= 2:
            out: list[tuple[int, int]] = []
            best = self.best_bid_px() if is_bid else self.best_ask_px()
            if best is not None and n >= 1:
                out.append((best, side[best]))
                if n == 2 and len(side) > 1:
                    rest = [p for p in side if p != best]
                    p2 = max(rest) if is_bid else min(rest)
                    out.append((p2, side[p2]))
            return out
        keys = sorted(side, reverse=is_bid)[:n]
        return [(p, side[p]) for p in keys]

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids best first, asks best first), up to n levels each."""
        return self.levels(True, n), self.levels(False, n)

    def mid_ticks(self) -> int | None:
        b, a = self.best_bid_px(), self.best_ask_px()
        if b is None or a is None:
            return b if a is None else a
        return (a + b) // 2


TRADE_LOG = 200_000


class Market:
    """All symbols' true books plus the simulated clock; implements ``MarketView``."""

    def __init__(self, instruments: dict[str, Instrument], clock_ms: Callable[[], int] | None = None) -> None:
        self.instruments = instruments
        self.books: dict[str, SymbolBook] = {s: SymbolBook(i) for s, i in instruments.items()}
        self._listeners: list[MarketListener] = []
        self._mark_listeners: list[MarketListener] = []  # those that watch the mark price
        self._clock_ms = clock_ms
        self.sim_time_ms: int | None = None  # set by replay; wall time when None
        # the market trades the feed published, newest TRADE_LOG of them (GET /sim/trades): what a
        # recording of this session must hold
        self.trade_log: deque[tuple[str, int, int, int, bool, int]] = deque(maxlen=TRADE_LOG)

    # -- MarketView ---------------------------------------------------------------------------
    def best_bid(self, symbol: str) -> tuple[int, int] | None:
        b = self.books[symbol]
        px = b.best_bid_px()
        return None if px is None else (px, b.bids[px])

    def best_ask(self, symbol: str) -> tuple[int, int] | None:
        b = self.books[symbol]
        px = b.best_ask_px()
        return None if px is None else (px, b.asks[px])

    def levels(self, symbol: str, is_bid: bool, n: int) -> list[tuple[int, int]]:
        return self.books[symbol].levels(is_bid, n)

    def displayed_qty(self, symbol: str, is_bid: bool, price_ticks: int) -> int:
        b = self.books[symbol]
        return (b.bids if is_bid else b.asks).get(price_ticks, 0)

    def mark_price_ticks(self, symbol: str) -> int | None:
        b = self.books[symbol]
        return b.mark_ticks if b.mark_ticks is not None else b.mid_ticks()

    def add_listener(self, listener: MarketListener) -> None:
        self._listeners.append(listener)
        if hasattr(listener, "on_mark_price"):
            self._mark_listeners.append(listener)

    def now_ms(self) -> int:
        if self.sim_time_ms is not None:
            return self.sim_time_ms
        if self._clock_ms is not None:
            return self._clock_ms()
        return wall_ms()

    # -- mutation (market sources only) ---------------------------------------------------------
    def add_symbol(self, instrument: Instrument) -> SymbolBook:
        self.instruments[instrument.symbol] = instrument
        book = self.books[instrument.symbol] = SymbolBook(instrument)
        return book

    def top(self, symbol: str, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.books[symbol].top(n)

    def apply_diff(
        self, symbol: str, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], last_u: int
    ) -> None:
        """Apply one depth event (absolute quantities) and tell the listeners level by level."""
        book = self.books[symbol]
        listeners = self._listeners
        for px, qty in bids:
            book.set_level(True, px, qty)
            for lst in listeners:
                lst.on_book_level(symbol, True, px, qty)
        for px, qty in asks:
            book.set_level(False, px, qty)
            for lst in listeners:
                lst.on_book_level(symbol, False, px, qty)
        book.last_u = last_u

    def load_snapshot(
        self, symbol: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]], last_u: int
    ) -> None:
        """Replace a symbol's book; listeners see only the levels that actually changed."""
        book = self.books[symbol]
        old_b, old_a = dict(book.bids), dict(book.asks)
        book.clear()
        for px, qty in bids:
            if qty > 0:
                book.set_level(True, px, qty)
        for px, qty in asks:
            if qty > 0:
                book.set_level(False, px, qty)
        book.last_u = last_u
        for lst in self._listeners:
            for is_bid, old, new in ((True, old_b, book.bids), (False, old_a, book.asks)):
                for px in old.keys() - new.keys():
                    lst.on_book_level(symbol, is_bid, px, 0)
                for px, qty in new.items():
                    if old.get(px) != qty:
                        lst.on_book_level(symbol, is_bid, px, qty)

    def trade(self, symbol: str, px: int, qty: int, buyer_is_maker: bool, ts_ms: int) -> None:
        for lst in self._listeners:
            lst.on_market_trade(symbol, px, qty, buyer_is_maker, ts_ms)

    def set_mark(self, symbol: str, px: int, recorded: bool = True) -> None:
        """A new mark price (a replay's recorded one by default); listeners hear it when it changed."""
        book = self.books[symbol]
        if recorded:
            book.mark_recorded = True
        if book.mark_ticks == px:
            return
        book.mark_ticks = px
        ts = self.now_ms()
        for lst in self._mark_listeners:
            lst.on_mark_price(symbol, px, ts)

    def update_marks(self, smoothing: float) -> None:
        """The mark-price model, run every mark interval for symbols without a recorded mark.

        Binance's mark is built from the index and a smoothed basis [D:Mark-Price]; a simulated
        market has no index, so the mark is an exponential average of the mid: ``mark +=
        smoothing * (mid - mark)`` (1.0 = the mid itself, what a replay without recorded marks
        uses). It lags the last trade, so MARK_PRICE and CONTRACT_PRICE triggers differ as they do
        on the exchange."""
        for symbol, book in self.books.items():
            if book.mark_recorded:
                continue
            mid = book.mid_ticks()
            if mid is None:
                continue
            cur = book.mark_ticks
            new = mid if cur is None or smoothing >= 1.0 else cur + round(smoothing * (mid - cur))
            self.set_mark(symbol, new, recorded=False)

    def depth_snapshot(self, symbol: str, limit: int) -> dict:
        """The ``GET /fapi/v1/depth`` body for the true book now."""
        book = self.books[symbol]
        ins = book.instrument
        ps, qs = ins.price_scale, ins.qty_scale
        bids, asks = book.top(limit)
        now = self.now_ms()
        return {
            "lastUpdateId": book.last_u,
            "E": now,
            "T": now,
            "bids": [[fixed(p, ps), fixed(q, qs)] for p, q in bids],
            "asks": [[fixed(p, ps), fixed(q, qs)] for p, q in asks],
        }
