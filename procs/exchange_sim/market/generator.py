"""The seeded synthetic market: a random-walk fair price with a book that lives near the touch.

Each ``step()`` is one depth event for one symbol, chosen by the seeded RNG: an order added
near the fair price (distance geometric in ticks), a cancel near the touch, or an aggressive
order that consumes the touch (one trade per level it takes), plus a periodic trim of levels
that drifted far from the fair price. Aggressor side leans toward the fair price, so the
touch follows the walk. The content of every event (symbol, update ids, levels, trades)
depends only on the seed and config; timestamps come from the market clock.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

from procs.exchange_sim.config import GeneratorConfig
from procs.exchange_sim.market.true_book import Market, SymbolBook


@dataclass(slots=True)
class GenEvent:
    """One generated depth event (already applied to the true book) and its trades."""

    symbol: str
    first_u: int
    last_u: int
    prev_u: int
    bids: list[tuple[int, int]] = field(default_factory=list)
    asks: list[tuple[int, int]] = field(default_factory=list)
    # (trade id, price ticks, qty lots, buyer is maker)
    trades: list[tuple[int, int, int, bool]] = field(default_factory=list)


class _SymState:
    __slots__ = ("book", "tick", "step", "fair", "mean_lots", "prev_u", "trade_id", "n", "gap", "gap_until")

    def __init__(self, book: SymbolBook, tick: int, step: int, fair: float, mean_lots: int) -> None:
        self.book, self.tick, self.step, self.fair = book, tick, step, fair
        self.mean_lots = mean_lots
        self.prev_u = 0
        self.trade_id = 1
        self.n = 0
        self.gap = 0  # wide_spread fault: no level closer than this many price units to the fair price ...
        self.gap_until = 0.0  # ... until this monotonic time


class Generator:
    """Deterministic (by seed) event source over the market's true books."""

    def __init__(self, market: Market, cfg: GeneratorConfig, symbols: list[str]) -> None:
        self.market, self.cfg = market, cfg
        self.rng = random.Random(cfg.seed)
        self.next_id = 1_000_000_000 * 1000 + cfg.seed % 1000 * 1_000_000
        self.syms: list[_SymState] = []
        for sym in symbols:
            ins = market.instruments[sym]
            tick = ins.tick_ticks * max(1, cfg.tick_mult.get(sym, 1))
            step = ins.step_lots
            start = ins.price_to_ticks(cfg.start_prices.get(sym, "100"))
            start -= start % tick
            min_q = max(1, ins.qty_to_lots(ins.min_qty) if ins.min_qty != "0" else step)
            mean = cfg.mean_lots * step if cfg.mean_lots else 10 * min_q
            self.syms.append(_SymState(market.books[sym], tick, step, float(start), mean))
        self._n_syms = len(self.syms)

    # -- helpers --------------------------------------------------------------------------------
    def _qty(self, st: _SymState, mean: float) -> int:
        lots = int(self.rng.expovariate(1.0 / mean)) + st.step
        return lots - lots % st.step or st.step

    def _dist(self, p: float) -> int:
        """Geometric number of ticks away from the touch (0 is most likely)."""
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - p))

    def seed_books(self) -> list[GenEvent]:
        """Fill each book with ``depth_levels`` levels per side around its start price."""
        out = []
        for st in self.syms:
            ev = self._new_event(st)
            fair = int(st.fair)
            for i in range(self.cfg.depth_levels):
                ev.bids.append((fair - (i + 1) * st.tick, self._qty(st, st.mean_lots * (1 + i / 10))))
                ev.asks.append((fair + (i + 1) * st.tick, self._qty(st, st.mean_lots * (1 + i / 10))))
            self._finish(st, ev)
            out.append(ev)
        return out

    def _new_event(self, st: _SymState) -> GenEvent:
        return GenEvent(st.book.symbol, self.next_id, self.next_id, st.prev_u)

    def _finish(self, st: _SymState, ev: GenEvent) -> None:
        # Update ids are one global sequence across symbols with other (unseen) updates in
        # between, as on futures: U is usually not prev u + 1, only pu chains.
        n = len(ev.bids) + len(ev.asks) + len(ev.trades)
        # int(random() * k) instead of randrange: same determinism, a third of the cost
        r = self.rng.random()
        ev.last_u = ev.first_u + max(0, n - 1) + int(r * 3)
        self.next_id = ev.last_u + 1 + int(r * 6) % 2
        st.prev_u = ev.last_u
        book = st.book
        ts = self.market.now_ms()
        for _tid, px, qty, bim in ev.trades:
            self.market.trade(book.symbol, px, qty, bim, ts)
        self.market.apply_diff(book.symbol, ev.bids, ev.asks, ev.last_u)

    # -- faults (POST /sim/fault price_jump / wide_spread) ------------------------------------------
    def _states(self, symbol: str) -> list[_SymState]:
        return [st for st in self.syms if not symbol or st.book.symbol == symbol]

    def jump(self, symbol: str, bps: float) -> list[GenEvent]:
        """Move the fair price and every level of the book by ``bps`` at once (one depth event per
        symbol: the old levels deleted, the same sizes at the moved prices)."""
        out = []
        for st in self._states(symbol):
            delta = int(round(st.fair * bps / 1e4 / st.tick)) * st.tick
            if not delta:
                continue
            st.fair += delta
            ev = self._new_event(st)
            for levels, side in ((st.book.bids, ev.bids), (st.book.asks, ev.asks)):
                moved = dict.fromkeys(levels, 0)
                moved.update({px + delta: q for px, q in levels.items()})
                side.extend(moved.items())
            self._finish(st, ev)
            out.append(ev)
        return out

    def widen(self, symbol: str, bps: float, seconds: float) -> list[GenEvent]:
        """For ``seconds``, no level within ``bps`` / 2 of the fair price on either side (a spread of
        about ``bps``): the levels inside go now, and new ones are placed outside."""
        out = []
        for st in self._states(symbol):
            st.gap = max(st.tick, int(st.fair * bps / 2e4 / st.tick) * st.tick)
            st.gap_until = time.monotonic() + seconds
            ev = self._new_event(st)
            self._pull_inside_gap(st, ev)
            self._finish(st, ev)
            out.append(ev)
        return out

    def _gap(self, st: _SymState) -> int:
        if st.gap and time.monotonic() >= st.gap_until:
            st.gap = 0
        return st.gap

    def _pull_inside_gap(self, st: _SymState, ev: GenEvent) -> None:
        fair = int(st.fair) - int(st.fair) % st.tick
        lo, hi = fair - st.gap, fair + st.gap
        for levels, side, inside, edge in ((st.book.bids, ev.bids, lambda p: p > lo, lo),
                                           (st.book.asks, ev.asks, lambda p: p < hi, hi)):
            gone = [p for p in levels if inside(p)]
            side.extend((p, 0) for p in gone)
            if gone and len(gone) == len(levels):  # never empty a side: one level at the band's edge
                side.append((edge, self._qty(st, st.mean_lots)))

    # -- one event ------------------------------------------------------------------------------
    def step(self) -> GenEvent:
        rng = self.rng
        st = self.syms[int(rng.random() * self._n_syms)] if self._n_syms > 1 else self.syms[0]
        st.n += 1
        st.fair += rng.gauss(0.0, self.cfg.drift_ticks) * st.tick
        book = st.book
        bb, ba = book.best_bid_px(), book.best_ask_px()
        ev = self._new_event(st)
        if st.gap and self._gap(st) and bb is not None and ba is not None:
            fair = int(st.fair) - int(st.fair) % st.tick
            if bb > fair - st.gap or ba < fair + st.gap:  # the walk moved the band over the touch
                self._pull_inside_gap(st, ev)
                self._finish(st, ev)
                return ev
        r = rng.random()
        if bb is None or ba is None:
            self._refill(st, ev, bb, ba)
        elif r < self.cfg.trade_prob:
            # lean the aggressor toward the fair price so the touch follows the walk
            mid = (bb + ba) / 2.0
            lean = max(-0.4, min(0.4, (st.fair - mid) / (4.0 * st.tick)))
            self._take(st, ev, rng.random() < 0.5 + lean)
        elif r < self.cfg.trade_prob + self.cfg.cancel_prob * self._fullness(st):
            self._cancel(st, ev, bb, ba)
        else:
            self._add(st, ev, bb, ba)
        if st.n % 64 == 0:
            self._trim(st, ev)
        self._finish(st, ev)
        return ev

    def _fullness(self, st: _SymState) -> float:
        # Cancels scale with book size so the book settles near depth_levels per side.
        return (len(st.book.bids) + len(st.book.asks)) / (2.0 * self.cfg.depth_levels)

    def _add(self, st: _SymState, ev: GenEvent, bb: int, ba: int) -> None:
        is_bid = self.rng.random() < 0.5
        d = self._dist(0.15) * st.tick
        fair = int(st.fair) - int(st.fair) % st.tick
        gap = self._gap(st) if st.gap else 0
        if is_bid:
            px = min(fair - d - gap, ba - st.tick)
            qty = st.book.bids.get(px, 0) + self._qty(st, st.mean_lots)
            ev.bids.append((px, qty))
        else:
            px = max(fair + st.tick + d + gap, bb + st.tick)
            qty = st.book.asks.get(px, 0) + self._qty(st, st.mean_lots)
            ev.asks.append((px, qty))

    def _cancel(self, st: _SymState, ev: GenEvent, bb: int, ba: int) -> None:
        is_bid = self.rng.random() < 0.5
        side = st.book.bids if is_bid else st.book.asks
        px = (bb - self._dist(0.4) * st.tick) if is_bid else (ba + self._dist(0.4) * st.tick)
        qty = side.get(px)
        if qty is None:
            px = bb if is_bid else ba
            qty = side[px]
        left = 0 if self.rng.random() < 0.4 else qty - self._qty(st, st.mean_lots / 2)
        if len(side) <= 2:
            left = max(left, st.step)  # never cancel a side away entirely
        (ev.bids if is_bid else ev.asks).append((px, max(0, left)))

    def _take(self, st: _SymState, ev: GenEvent, buy: bool) -> None:
        """An aggressive order walks the opposite side best first; one trade per level."""
        want = self._qty(st, st.mean_lots * 1.5)
        side = st.book.asks if buy else st.book.bids
        prices = sorted(side) if buy else sorted(side, reverse=True)
        # never take the whole side: a real book keeps depth, and an empty side has no touch
        walk = prices[: min(4, len(prices) - 1)] if len(prices) > 1 else prices
        for px in walk:
            avail = side[px] if len(prices) > 1 else side[px] - st.step
            fill = min(want, avail)
            if fill <= 0:
                break
            st.trade_id += 1
            ev.trades.append((st.trade_id, px, fill, not buy))
            (ev.asks if buy else ev.bids).append((px, side[px] - fill))
            want -= fill
            if want <= 0:
                break

    def _refill(self, st: _SymState, ev: GenEvent, bb: int | None, ba: int | None) -> None:
        fair = int(st.fair) - int(st.fair) % st.tick
        if bb is None:
            px = (ba if ba is not None else fair + st.tick) - st.tick
            ev.bids.append((px, self._qty(st, st.mean_lots)))
        if ba is None:
            px = (bb if bb is not None else fair - st.tick) + st.tick
            ev.asks.append((px, self._qty(st, st.mean_lots)))

    def _trim(self, st: _SymState, ev: GenEvent) -> None:
        """Remove levels that drifted beyond twice the configured depth from the fair price."""
        lim = 2 * self.cfg.depth_levels * st.tick + (self._gap(st) if st.gap else 0)  # wide_spread's levels stay
        fair = st.fair
        touched_b = {p for p, _ in ev.bids}
        touched_a = {p for p, _ in ev.asks}
        ev.bids.extend((p, 0) for p in st.book.bids if fair - p > lim and p not in touched_b)
        ev.asks.extend((p, 0) for p in st.book.asks if p - fair > lim and p not in touched_a)
