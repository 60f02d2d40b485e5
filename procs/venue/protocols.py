"""The Protocols a venue adapter implements; the engines call nothing else of it.

``Venue`` is the adapter itself (``procs.venue.adapters.open_venue``): instruments, the account
signer, and factories for the parts below: ``OrderGateway`` (execution), ``AccountSource``
(risk), ``MarketStreams`` and ``MarketCodec`` (market_data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from procs.core.instruments import Instrument
from procs.venue.messages import (
    AccountSnapshot,
    DepthSnapshot,
    Fill,
    Frame,
    MarginTier,
    MarketMessage,
    OrderReport,
    RecordedTrade,
    Reply,
    VenueInfo,
)

if TYPE_CHECKING:
    from procs.book.sync import DepthRule


class Venue(Protocol):
    """One venue, configured by its ``[venue]`` section."""

    cfg: Any

    def info(self, should_stop: Callable[[], bool] = ..., attempts: int = 0,
             timeout_s: float = 10.0) -> VenueInfo | None:
        """Instruments and request limits: from ``[venue] exchange_info`` or fetched (each try
        within ``timeout_s``), retried until ``should_stop`` (then None); ``attempts`` > 0 raises
        after that many failures (OSError or ValueError)."""

    def read_info(self, path: str | Path) -> VenueInfo:
        """Instruments and request limits from a file in this venue's format."""

    def signer(self) -> Any:
        """The account's credentials (``key`` and ``sign``); ValueError naming the source that failed."""

    def account_source(self, signer: Any, timeout_s: float) -> AccountSource:
        """The account's positions and orders, asked with ``signer`` (each request within ``timeout_s``)."""

    def market_streams(self) -> MarketStreams:
        """Where market_data connects for depth diffs and trades, and asks for snapshots."""

    def market_codec(self, raw_levels: bool = False) -> MarketCodec:
        """A decoder of the live market's frames (``raw_levels``: level arrays left as raw JSON,
        for FastBook)."""

    def recordings(self) -> Recordings:
        """Readers of the venue's recorded market data."""

    def order_gateway(self, signer: Any, *, prefer_ws: bool, request_timeout_s: float, reconnect_min_s: float,
                      reconnect_max_s: float, on_connection: Callable[[bool], None] | None = None) -> OrderGateway:
        """Execution's orders on the account (created inside the running event loop)."""


class AccountSource(Protocol):
    """The account as the venue sees it (risk's reconciliation). Blocking: call it off any loop."""

    def snapshot(self) -> AccountSnapshot:
        """Net positions, entry prices and money; VenueError when the venue does not answer usefully."""

    def open_orders(self, symbol: str = "") -> list[OrderReport]:
        """The account's open orders (of one symbol, or all); VenueError as ``snapshot``."""

    def margin_tiers(self, symbols: list[str]) -> dict[str, list[MarginTier]]:
        """Each symbol's maintenance-margin brackets, lowest notional first; VenueError as ``snapshot``."""


class MarketStreams(Protocol):
    """Where the market data comes from (market_data's feed connects and asks as these say)."""

    name: str  # where it connects, for the log

    def url(self, symbols: list[str], marks: bool = True) -> str:
        """The WebSocket URL carrying every symbol's depth diffs and trades (and mark prices)."""

    def snapshot_url(self, symbol: str, limit: int) -> str:
        """The REST request of a depth snapshot with ``limit`` levels a side."""

    def resubscribe(self, symbols: list[str], marks: bool = True) -> list[bytes]:
        """Frames that drop and take again ``symbols``' streams on the live connection."""


ReplyCallback = Callable[[Reply], None]


class OrderGateway(Protocol):
    """Orders on the venue for one account: execution's engine calls nothing else of the venue.

    ``place``/``cancel``/``query`` write one request and return the monotonic ns it was written
    (0: nothing written, try again later); its answer reaches ``cb`` as a ``Reply`` exactly once,
    or never (the caller owns the timeout). A lost connection answers REPLY_UNKNOWN."""

    # (request weight, orders) each request spends against the venue's limits (RateLimit.kind)
    place_cost: tuple[int, int]
    cancel_cost: tuple[int, int]
    query_cost: tuple[int, int]
    modify_cost: tuple[int, int]
    open_orders_cost: tuple[int, int]
    # cancels of one symbol's orders in one request: at most ``batch_cancel_max`` (0: the venue
    # has none), each request spending ``batch_cancel_cost`` whatever its size
    batch_cancel_max: int
    batch_cancel_cost: tuple[int, int]
    dead_man_cost: tuple[int, int]
    conditional_cost: tuple[int, int]  # placing a conditional order
    on_fallback: Callable[[], None]  # called for each request sent the slower way (its fast path down)

    def place(self, symbol: str, side: int, order_type: int, tif: int, qty: str, price: str | None, cid: str,
              reduce_only: bool, cb: ReplyCallback) -> int:
        """A new order: LIMIT with ``price`` and ``tif`` (procs.core.messages), MARKET without."""

    def cancel(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        """Cancel an order by its client order id."""

    def query(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        """Ask for an order's state by its client order id."""

    def modify(self, symbol: str, side: int, cid: str, qty: str, price: str, cb: ReplyCallback) -> int:
        """Amend a resting LIMIT order's price and quantity (both sent, the unchanged one as it
        is); the answer's ``report`` is the order as amended."""

    def cancel_batch(self, symbol: str, cids: list[str], cb: Callable[[list[Reply]], None]) -> int:
        """Cancel up to ``batch_cancel_max`` orders of ``symbol`` in one request; ``cb`` gets one
        ``Reply`` per id, in order (all alike when the request as a whole failed)."""

    def place_conditional(self, symbol: str, side: int, order_type: int, qty: str, trigger_price: str | None,
                          callback_bps: int, on_mark: bool, cid: str, reduce_only: bool, cb: ReplyCallback) -> int:
        """A conditional order (procs.core.messages STOP_MARKET, TAKE_PROFIT_MARKET,
        TRAILING_STOP_MARKET) that waits at the venue: ``trigger_price`` (a trailing stop's
        activation, None for none), ``callback_bps`` (trailing), triggered on the mark price with
        ``on_mark`` (else the last trade). Its reports are ``conditional``."""

    def cancel_conditional(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        """Cancel a conditional order that has not triggered."""

    def query_conditional(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        """Ask for a conditional order's state (after its trigger: ``triggered_order_id``)."""

    def arm_dead_man(self, symbol: str, countdown_ms: int, cb: ReplyCallback) -> int:
        """Have the venue cancel every open order of ``symbol`` unless this is called again
        within ``countdown_ms`` (0 disarms it)."""

    def warm(self, symbol: str, qty: str, price: str, cid: str) -> int:
        """Build and sign the requests a buy would send, sending nothing (keep-warm); their size."""

    async def open_orders(self) -> list[OrderReport]:
        """Every open order of the account; VenueError when the venue does not list them."""

    async def user_trades(self, symbol: str) -> list[Fill] | None:
        """The account's recent trades in ``symbol`` (None: they cannot be read now)."""

    async def open_conditionals(self) -> list[OrderReport]:
        """Every conditional order of the account still waiting for its trigger; VenueError as
        ``open_orders``."""

    async def query_conditional_now(self, symbol: str, cid: str) -> Reply:
        """Ask for a conditional order and wait for the answer (recovery)."""

    async def cancel_conditional_now(self, symbol: str, cid: str) -> Reply:
        """Cancel a conditional order and wait for the answer (recovery)."""

    async def cancel_now(self, symbol: str, cid: str) -> Reply:
        """Cancel and wait for the answer (recovery)."""

    async def query_now(self, symbol: str, cid: str) -> Reply:
        """Ask for an order and wait for the answer (recovery)."""

    def start(self, on_report: Callable[[OrderReport | None, int], None], on_connected: Callable[[int], None]) -> None:
        """Connect (reconnecting until closed): ``on_report(report, ts_recv)`` for every event of
        the account's stream (None: one that reports no order), ``on_connected(n)`` on each
        (re)connect of the stream, after which reports may have been missed."""

    async def wait_up(self, ws_timeout_s: float = 2.0, stream_timeout_s: float = 5.0) -> None:
        """Wait (bounded) until the connections are up; log the ones that are not."""

    async def close(self) -> None:
        """Close every connection."""


class MarketCodec(Protocol):
    """Market-data frames -> ``MarketMessage``s (market_data's handler, ``b25 book``, replay).

    ``frame_prefix``: frames the live hot path may take start with it, their routing key (a
    stream name) follows up to the next ``"``; ``depth_rule``: how the live market's diffs
    continue each other (``procs.book.sync.DepthRule``, with its optional frame kernel)."""

    frame_prefix: bytes
    depth_rule: DepthRule
    decode_errors: int  # frames that were not valid (counted, never raised)

    def decode(self, raw: bytes) -> tuple[str, MarketMessage | None]:
        """One frame -> (its routing key or "", the message; None when ignored or bad)."""

    def decode_snapshot(self, raw: bytes) -> DepthSnapshot | None:
        """A REST depth snapshot body (None, counted, when malformed)."""

    def snapshot_frame(self, symbol: str, raw: bytes) -> bytes:
        """A snapshot body as one frame a recording keeps (the venue's ``Recordings`` sync on it)."""

    def rule(self, market: str) -> DepthRule:
        """The depth rule of one of the venue's markets (a recording's ``Frame.market``)."""


class Recordings(Protocol):
    """Recorded market data in this venue's formats (``b25 book``, replay, the book benchmark)."""

    markets: tuple[str, ...]  # the values ``Frame.market`` takes

    def iter_frames(self, paths: str | Path | Iterable[str | Path], market: str | None = None,
                    problems: list[str] | None = None) -> Iterator[Frame]:
        """Every frame of the recordings in order (several paths continue one chain); ``market``
        overrides detection; with ``problems`` a file cut short ends the stream (noted there)
        instead of raising."""

    def trade_of(self, frame: Frame) -> RecordedTrade | None:
        """The trade a frame holds, or None."""

    def trades(self, paths: str | Path | Iterable[str | Path], market: str | None = None,
               problems: list[str] | None = None) -> Iterator[RecordedTrade]:
        """Every trade of the recordings, in file order (duplicates kept), as ``iter_frames``."""

    def symbols(self, paths: str | Path | Iterable[str | Path], sample: int = 5000) -> list[str]:
        """The symbols a recording's first ``sample`` frames carry."""

    def instruments(self, market: str, path: str | Path | None = None) -> dict[str, Instrument]:
        """The instruments of a market (from ``path``, else what the venue's recordings hold)."""
