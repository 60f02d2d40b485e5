"""What a venue tells b25, in b25's words: the normalised structs every adapter produces.

An adapter (``procs/venue/<venue>/``) turns its wire messages into these, so the engines that
consume them (market_data's handler, execution's engine, risk's reconciler) never see a wire
field name. Prices and quantities stay decimal *text* as the venue sent them: the consumer
converts them exactly with the symbol's ``Instrument`` (ticks and lots), never through floats.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from procs.core.instruments import Instrument


class VenueError(Exception):
    """The venue did not answer usefully; the message says what it said (never a secret)."""


class RateLimit(msgspec.Struct, frozen=True):
    """One of the venue's request limits: ``limit`` units per window of ``interval_ms``."""

    kind: str  # "weight" (request weight) or "orders" (order count)
    interval_ms: int
    limit: int


class VenueInfo(msgspec.Struct, frozen=True):
    """The venue's instrument list and request limits (fetched at start, or read from a file)."""

    instruments: dict[str, Instrument]
    rate_limits: list[RateLimit] = msgspec.field(default_factory=list)
    # the venue's process, when it names one (the simulator does; a real venue does not: ""):
    # its account starts flat with each, so state saved against another session does not hold
    session: str = ""


class AccountSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The account as the venue sees it: net position per symbol (signed base-asset text) and
    money in the margin asset (text as sent; "" when the venue did not say)."""

    positions: dict[str, str] = msgspec.field(default_factory=dict)
    entry_prices: dict[str, str] = msgspec.field(default_factory=dict)  # of the symbols with a position
    wallet_balance: str = ""
    unrealized: str = ""
    margin_balance: str = ""  # wallet + unrealized
    maint_margin: str = ""  # the venue's maintenance margin of every position
    open_order_margin: str = ""  # initial margin held for open orders
    available_balance: str = ""
    leverage: dict[str, int] = msgspec.field(default_factory=dict)  # the account's leverage setting per symbol


class MarginTier(msgspec.Struct, frozen=True):
    """One notional bracket of a symbol's margin table: a position whose notional is within
    (``floor``, ``cap``] keeps ``maint_rate`` * notional - ``maint_amount`` as maintenance
    margin, and may use at most ``max_leverage``. Decimal text as the venue sent it."""

    floor: str
    cap: str
    maint_rate: str
    maint_amount: str
    max_leverage: int


# -- market data --------------------------------------------------------------------------------
Level = tuple[str, str]  # (price text, quantity text) exactly as sent


class DepthDiff(msgspec.Struct, gc=False):
    """A change to one symbol's book: each level listed replaces the book's (quantity "0"
    deletes it). The venue numbers its book's updates: this diff covers ``first_id`` ..
    ``last_id``; ``prev_id`` is the ``last_id`` of the diff before it where the venue chains
    them (-1 where it does not). The venue's ``DepthRule`` says how diffs continue each other.

    ``bids`` / ``asks`` are (price, quantity) texts, or the raw JSON array text (``msgspec.Raw``)
    when the codec leaves the levels to ``FastBook``'s compiled parser."""

    symbol: str
    first_id: int
    last_id: int
    bids: list[Level]
    asks: list[Level]
    prev_id: int = -1
    ts_event_ms: int = 0


class DepthSnapshot(msgspec.Struct, gc=False):
    """A whole book as the venue's REST API gives it; ``last_id`` is its last update's id."""

    last_id: int
    bids: list[Level]
    asks: list[Level]
    ts_event_ms: int = 0
    symbol: str = ""  # when the venue says (a recording's snapshot may not)


class TradeTick(msgspec.Struct, gc=False):
    """A trade in the market (not necessarily ours); ``buyer_maker``: the aggressor sold."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    ts_event_ms: int = 0
    buyer_maker: bool = False


class TopOfBook(msgspec.Struct, gc=False):
    """The best bid and ask as the venue states them, as of its book update ``update_id``."""

    symbol: str
    update_id: int
    bid_px: str
    bid_qty: str
    ask_px: str
    ask_qty: str
    ts_event_ms: int = 0


class MarkPriceTick(msgspec.Struct, gc=False):
    """The venue's mark price of one symbol (what it values positions and liquidates at), with
    the index price and funding rate it is built from where the venue says them ("0" otherwise)."""

    symbol: str
    price: str
    index_price: str = "0"
    funding_rate: str = "0"
    next_funding_ms: int = 0
    ts_event_ms: int = 0


MarketMessage = DepthDiff | DepthSnapshot | TradeTick | TopOfBook | MarkPriceTick


class RecordedTrade(NamedTuple):
    """One trade as a recording holds it (prices and quantities as the venue's decimal text)."""

    symbol: str
    trade_time_ms: int  # the venue's trade time (its event time when the trade has none)
    trade_id: int  # the trade's id, or an aggregate trade's own id
    first_trade_id: int  # the first trade an aggregate covers (== trade_id for a single trade)
    last_trade_id: int
    price: str
    qty: str
    buyer_is_maker: bool  # the aggressor sold
    source: str  # the venue's name for the stream it came from (``b25 convert`` writes it)
    aggregated: bool  # an aggregate of trades (counted only for a symbol with no single trades)
    event_time_ms: int
    ts_recv_ns: int

    @property
    def count(self) -> int:
        return self.last_trade_id - self.first_trade_id + 1


class Frame(NamedTuple):
    """One recorded market-data frame: receive time (ns), the frame exactly as received, the
    venue's market it comes from (its ``DepthRule``: ``MarketCodec.rule(market)``), and the
    symbol when the frame is a REST depth snapshot (None otherwise)."""

    ts_recv_ns: int
    raw: bytes
    market: str
    snapshot_symbol: str | None = None

# -- orders -------------------------------------------------------------------------------------
# An order's status in b25's words (an adapter maps its venue's onto these). PENDING is b25's
# own: written to the venue, not answered yet; a venue never reports it.
PENDING, NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED = range(7)
STATUS_NAMES = ("pending", "new", "partially_filled", "filled", "canceled", "rejected", "expired")

# Reply.outcome: what a request came to
REPLY_OK = 0  # the venue acted on it (the order is in ``report``)
REPLY_REJECTED = 1  # a business refusal: not acted on (``reason`` says why)
REPLY_RATE_LIMITED = 2  # not acted on: back off (``retry_after_s`` when the venue said how long)
REPLY_FAILED = 3  # the venue was unavailable and did not act on it: counts against the breaker
REPLY_UNKNOWN = 4  # timeout, dropped connection, an ambiguous server error: it may or may not have acted
OUTCOME_NAMES = ("ok", "rejected", "rate_limited", "failed", "unknown")


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One trade of one of the account's orders."""

    trade_id: int
    order_id: int = 0
    qty: str  # this trade's quantity
    price: str
    fee: str = "0"  # in the margin asset; negative = rebate
    maker: bool = False
    ts_event_ms: int = 0


class OrderReport(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the venue reports it: an answer to a request, a query, an open-orders entry
    or a user-stream update. ``status`` is None when the venue's word has no b25 status."""

    client_order_id: str
    order_id: int = 0
    symbol: str = ""
    status: int | None = None
    side: int = 0  # procs.core.messages BUY / SELL
    order_type: int = 0  # LIMIT / MARKET (0: another type)
    tif: int = 0  # GTC / IOC / FOK / POST_ONLY (0: none or another)
    price: str = "0"
    qty: str = "0"
    cum_qty: str = "0"  # filled so far
    reduce_only: bool = False
    ts_event_ms: int = 0  # the venue's time of this state (0 = not given)
    fill: Fill | None = None  # the trade this update reports (user stream), if it is one
    amended: bool = False  # this update reports an amend of the order's price or quantity
    # conditional orders (order_type STOP_MARKET...): ``trigger_price`` as sent; once triggered, the
    # venue's id of the MARKET order it placed (that order's own reports name it by this id)
    conditional: bool = False
    trigger_price: str = "0"
    triggered_order_id: int = 0


class RateUsage(msgspec.Struct, frozen=True):
    """What the venue says it has counted in the current window of one of its limits."""

    kind: str  # RateLimit.kind
    interval_ms: int
    used: int


class Reply(msgspec.Struct, kw_only=True):
    """The answer to one order request (place, cancel, query), normalised by the adapter."""

    outcome: int
    reason: int = 0  # procs.core.messages REJECT_* when REPLY_REJECTED or REPLY_FAILED
    venue_code: int = 0  # the venue's own error code, for the log
    msg: str = ""  # the venue's message (or why there is no answer)
    report: OrderReport | None = None  # the order, when the venue answered with it
    retry_after_s: float | None = None  # RATE_LIMITED: how long the venue asked to wait
    usage: list[RateUsage] = msgspec.field(default_factory=list)
    ts_ack: int = 0  # monotonic ns the answer arrived (or the timeout was declared)
