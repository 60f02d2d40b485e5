"""The seam between the simulator's market side and its trading side.

The market side (``procs/exchange_sim/market/true_book.py``, the servers) owns the true book and the sockets; the
trading side (matching engine, order API, user streams) plugs in through these protocols. All
callbacks run on the one asyncio (uvloop) loop that drives the server, so implementations
need no locks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from procs.core.instruments import Instrument


class MarketListener(Protocol):
    """Told about every change of the true book and every market trade, in order."""

    def on_book_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        """The absolute displayed qty at a level changed (0 = level gone)."""
        ...

    def on_market_trade(
        self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool, ts_ms: int
    ) -> None: ...

    def on_mark_price(self, symbol: str, price_ticks: int, ts_ms: int) -> None:
        """The mark price changed (conditional orders with workingType MARK_PRICE watch it)."""
        ...


class MarketView(Protocol):
    """Read access to the simulator's true book (implemented by ``procs.exchange_sim.market.true_book.Market``)."""

    instruments: dict[str, Instrument]

    def best_bid(self, symbol: str) -> tuple[int, int] | None:
        """(price_ticks, qty_lots) of the best bid, None when the side is empty."""
        ...

    def best_ask(self, symbol: str) -> tuple[int, int] | None: ...

    def levels(self, symbol: str, is_bid: bool, n: int) -> list[tuple[int, int]]:
        """Up to n (price_ticks, qty_lots) levels, best first."""
        ...

    def displayed_qty(self, symbol: str, is_bid: bool, price_ticks: int) -> int: ...

    def mark_price_ticks(self, symbol: str) -> int | None: ...

    def add_listener(self, listener: MarketListener) -> None: ...

    def now_ms(self) -> int:
        """Simulated time in replay (from the recording), wall time otherwise."""
        ...


class RestHandler(Protocol):
    """Serves every REST path the market side does not serve itself (orders, account, listenKey)."""

    async def handle_rest(
        self, method: str, path: str, raw_query: str, raw_body: str, headers: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """-> (HTTP status, body bytes, extra response headers)."""
        ...


class WsSession(Protocol):
    """One WebSocket connection, as the market side's picows server hands it to a WsHandler."""

    def send_text(self, text: str) -> None: ...

    def close(self) -> None: ...


class WsHandler(Protocol):
    """WebSocket API (/ws-fapi/v1) and user-data streams (/ws/<listenKey>, /stream?streams=<listenKey>, ...)."""

    def ws_claims(self, path: str) -> bool:
        """Asked for every new WS connection path that is not a market stream."""
        ...

    def ws_refusal(self, path: str) -> bytes | None:
        """For a claimed path: the body of a 400 refusal (e.g. an unknown listenKey), None to accept."""
        ...

    def ws_open(self, session: WsSession, path: str) -> None: ...

    def ws_message(self, session: WsSession, text: str) -> None: ...

    def ws_closed(self, session: WsSession) -> None: ...
