"""The exchange's true book in b25 backtest: the simulator's ``MarketView`` over one ``FastBook``
per symbol, fed decoded depth events (``procs.exchange_sim.market.recorded``).

It is the simulator's ``Market`` (procs/exchange_sim/market/true_book.py) with the book in numba:
the same levels, best prices, ``levels(n)`` and displayed quantities, the same listener calls for
trades and marks. A depth event is applied whole (one compiled call); then the matching engine
hears each level it watches (``SymbolEngine.watches``: the levels with our orders or what we took,
and levels that cross our resting orders), in the event's order, bids first. The simulator calls
it level by level as it applies them, so a listener there could read a half-applied book; the
matching engine never reads the book from those calls (only a user-stream ACCOUNT_UPDATE's mark,
which execution does not use), so what it does is the same. A recording that resyncs (a second
snapshot) tells the listeners of the changed levels in price order, where the simulator's dicts
go in insertion order.

The same book is what b25's market data sees (``book_update``): market_data rebuilds exactly this
book from the simulator's snapshot and diffs while the recording has no gap.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np

from procs.book.fastbook import FastBook
from procs.book.kernels import ST_USED, _find
from procs.core.instruments import Instrument
from procs.exchange_sim.api import MarketListener
from procs.exchange_sim.market.fast_kernels import apply_levels, watched_levels


class FastMarket:
    """The true book of every symbol, one FastBook each (symbols by index: ``sid``)."""

    def __init__(self, instruments: dict[str, Instrument], symbols: list[str], keep: int = 64) -> None:
        self.instruments = dict(instruments)
        self.symbols = list(symbols)
        self.sid = {s: i for i, s in enumerate(self.symbols)}
        self.fast = [FastBook(instruments[s], keep=keep) for s in self.symbols]
        self.last_u = [0] * len(self.symbols)
        self.marks: list[int | None] = [None] * len(self.symbols)
        self.sim_time_ms: int | None = None
        self._listeners: list[MarketListener] = []
        self._mark_listeners: list[MarketListener] = []
        self._idx = np.empty(1024, np.int64)  # watched_levels' answer
        self.venue = None  # the trading side's Venue: whose engines say which levels they watch

    # -- MarketView -------------------------------------------------------------------------
    def best_bid(self, symbol: str) -> tuple[int, int] | None:
        return self.fast[self.sid[symbol]].best_bid()

    def best_ask(self, symbol: str) -> tuple[int, int] | None:
        return self.fast[self.sid[symbol]].best_ask()

    def levels(self, symbol: str, is_bid: bool, n: int) -> list[tuple[int, int]]:
        fb = self.fast[self.sid[symbol]]
        return fb.bid_levels(n) if is_bid else fb.ask_levels(n)

    def displayed_qty(self, symbol: str, is_bid: bool, price_ticks: int) -> int:
        fb = self.fast[self.sid[symbol]]
        side = 0 if is_bid else 1
        keys = fb._keys
        slot = _find(keys[side], price_ticks, keys.shape[1] - 1)
        return int(fb._vals[side, slot]) if slot >= 0 else 0

    def mark_price_ticks(self, symbol: str) -> int | None:
        i = self.sid[symbol]
        m = self.marks[i]
        return m if m is not None else self.mid_ticks(i)

    def mid_ticks(self, i: int) -> int | None:
        fb = self.fast[i]
        b, a = fb.best_bid(), fb.best_ask()
        if b is None or a is None:
            return b[0] if a is None and b is not None else (a[0] if a is not None else None)
        return (a[0] + b[0]) // 2

    def add_listener(self, listener: MarketListener) -> None:
        self._listeners.append(listener)
        if hasattr(listener, "on_mark_price"):
            self._mark_listeners.append(listener)

    def now_ms(self) -> int:
        return self.sim_time_ms if self.sim_time_ms is not None else time.time_ns() // 1_000_000

    # -- the exchange applies the recording --------------------------------------------------
    def load(self, i: int, bp: np.ndarray, bq: np.ndarray, ap: np.ndarray, aq: np.ndarray, last_u: int,
             notify: bool = True) -> None:
        """Replace symbol i's book (a snapshot); listeners hear the levels that changed."""
        fb = self.fast[i]
        old = (dict(fb.bid_levels()), dict(fb.ask_levels())) if notify and self._listeners else None
        fb.clear()
        n = len(bp) + len(ap)
        need = 1 << max(14, (4 * n).bit_length())
        if need > fb._keys.shape[1]:
            fb._resize(need)
        px = np.concatenate([bp, ap]).astype(np.int64)
        qty = np.concatenate([bq, aq]).astype(np.int64)
        keep = qty > 0
        nb = int(keep[:len(bp)].sum())
        fb.crossed = apply_levels(fb._keys, fb._vals, fb._top, fb._st, px[keep], qty[keep], 0, nb,
                                  int(keep.sum()) - nb, fb.keep) == 1
        self.last_u[i] = last_u
        if old is not None:
            sym = self.symbols[i]
            for is_bid, before, after in ((True, old[0], dict(fb.bid_levels())), (False, old[1], dict(fb.ask_levels()))):
                for p in sorted(before.keys() - after.keys()):
                    for lst in self._listeners:
                        lst.on_book_level(sym, is_bid, p, 0)
                for p in sorted(after):
                    if before.get(p) != after[p]:
                        for lst in self._listeners:
                            lst.on_book_level(sym, is_bid, p, after[p])

    def apply(self, i: int, px: np.ndarray, qty: np.ndarray, off: int, nb: int, na: int, last_u: int) -> None:
        """One depth event (already known to continue the book) and its watched levels' listeners."""
        fb = self.fast[i]
        cap = fb._keys.shape[1]
        if nb + na > cap - fb._limit:  # a huge event: room first
            fb._resize(cap << 1)
        fb.crossed = apply_levels(fb._keys, fb._vals, fb._top, fb._st, px, qty, off, nb, na, fb.keep) == 1
        st = fb._st
        if st[0, ST_USED] > fb._limit or st[1, ST_USED] > fb._limit:
            fb._resize(fb._keys.shape[1])
        self.last_u[i] = last_u
        venue = self.venue
        if venue is None:
            return
        eng = venue.engines.get(self.symbols[i])
        if eng is None or not (eng.known[True] or eng.known[False] or eng.book[True] or eng.book[False]):
            return  # no resting order, nothing taken: the matching engine watches no level
        sym = self.symbols[i]
        kb, ka = eng.known[True], eng.known[False]
        bb, ba = eng.best[True], eng.best[False]
        if len(self._idx) < nb + na:
            self._idx = np.empty(2 * (nb + na), np.int64)
        m = watched_levels(px, qty, off, nb, na, np.fromiter(kb, np.int64, len(kb)), np.fromiter(ka, np.int64, len(ka)),
                           -1 if bb is None else bb, -1 if ba is None else ba, self._idx)
        if not m:
            return
        known_bid, known_ask = set(kb), set(ka)
        listeners = self._listeners
        for j in self._idx[:m].tolist():
            is_bid = j < nb
            p, q = int(px[off + j]), int(qty[off + j])
            for lst in listeners:
                lst.on_book_level(sym, is_bid, p, q)
            if kb.keys() != known_bid or ka.keys() != known_ask or eng.best[True] != bb or eng.best[False] != ba:
                # the engine's state moved (a fill, a level learnt): the rest level by level
                self._scan(eng, sym, px, qty, off, nb, na, j + 1)
                return

    def _scan(self, eng: Any, sym: str, px: np.ndarray, qty: np.ndarray, off: int, nb: int, na: int,
              start: int) -> None:
        """Levels ``start..`` of a depth event to the listeners, each if the engine watches it then."""
        p = px[off:off + nb + na].tolist()
        q = qty[off:off + nb + na].tolist()
        listeners = self._listeners
        for j in range(start, nb + na):
            is_bid = j < nb
            if eng.watches(is_bid, p[j], q[j]):
                for lst in listeners:
                    lst.on_book_level(sym, is_bid, p[j], q[j])

    def trade(self, i: int, px: int, qty: int, buyer_is_maker: bool, ts_ms: int) -> None:
        sym = self.symbols[i]
        for lst in self._listeners:
            lst.on_market_trade(sym, px, qty, buyer_is_maker, ts_ms)

    def set_mark(self, i: int, px: int) -> None:
        if self.marks[i] == px:
            return
        self.marks[i] = px
        ts = self.now_ms()
        for lst in self._mark_listeners:
            lst.on_mark_price(self.symbols[i], px, ts)

    # -- what market_data publishes -------------------------------------------------------------
    def book_update(self, i: int, rows: np.ndarray, depth: int, update_id: int, ts_event: int, ts_recv: int,
                    flags: int, seq: int, layout: struct.Struct) -> tuple:
        """The BookUpdate record market_data would publish now, as the flat tuple a ring read gives."""
        fb = self.fast[i]
        fb.fill_record(rows, 0, depth, i, update_id, ts_event, ts_recv, flags, seq)
        rows[0, 4] = ts_recv  # ts_pub: the publish takes no simulated time
        return layout.unpack_from(rows)
