"""A small settable ``MarketView``: a book per symbol that a test or benchmark drives by hand.

It is the same protocol the market side implements, with no generator behind it: ``set_level``
changes a level and tells the listeners, ``trade`` reports a market trade, ``set_mark`` the mark price, ``clock_ms`` is
the simulated time. Used by the trading side's tests and to run the trading side alone.
"""

from __future__ import annotations

from procs.core.instruments import Instrument
from procs.exchange_sim.api import MarketListener


class SettableMarket:
    """Levels per symbol and side as dicts; listeners hear every change, in order."""

    def __init__(self, instruments: dict[str, Instrument], clock_ms: int = 1_700_000_000_000) -> None:
        self.instruments = instruments
        self.clock_ms = clock_ms
        self.books: dict[tuple[str, bool], dict[int, int]] = {}
        self.marks: dict[str, int] = {}
        self.listeners: list[MarketListener] = []

    def _side(self, symbol: str, is_bid: bool) -> dict[int, int]:
        return self.books.setdefault((symbol, is_bid), {})

    # -- driving ---------------------------------------------------------------------------
    def set_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        side = self._side(symbol, is_bid)
        if qty_lots:
            side[price_ticks] = qty_lots
        else:
            side.pop(price_ticks, None)
        for lst in self.listeners:
            lst.on_book_level(symbol, is_bid, price_ticks, qty_lots)

    def trade(self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool) -> None:
        for lst in self.listeners:
            lst.on_market_trade(symbol, price_ticks, qty_lots, buyer_is_maker, self.clock_ms)

    def set_mark(self, symbol: str, price_ticks: int) -> None:
        """Pin the mark price (the mid until then) and tell the listeners."""
        self.marks[symbol] = price_ticks
        for lst in self.listeners:
            if hasattr(lst, "on_mark_price"):
                lst.on_mark_price(symbol, price_ticks, self.clock_ms)

    # -- MarketView ------------------------------------------------------------------------
    def best_bid(self, symbol: str) -> tuple[int, int] | None:
        lv = self.levels(symbol, True, 1)
        return lv[0] if lv else None

    def best_ask(self, symbol: str) -> tuple[int, int] | None:
        lv = self.levels(symbol, False, 1)
        return lv[0] if lv else None

    def levels(self, symbol: str, is_bid: bool, n: int) -> list[tuple[int, int]]:
        side = self._side(symbol, is_bid)
        return sorted(side.items(), key=lambda pq: pq[0], reverse=is_bid)[:n]

    def displayed_qty(self, symbol: str, is_bid: bool, price_ticks: int) -> int:
        return self._side(symbol, is_bid).get(price_ticks, 0)

    def mark_price_ticks(self, symbol: str) -> int | None:
        if symbol in self.marks:
            return self.marks[symbol]
        bb, ba = self.best_bid(symbol), self.best_ask(symbol)
        if bb and ba:
            return (bb[0] + ba[0]) // 2
        return None

    def add_listener(self, listener: MarketListener) -> None:
        self.listeners.append(listener)

    def now_ms(self) -> int:
        return self.clock_ms
