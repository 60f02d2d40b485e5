"""Ring records: one aligned numpy dtype per event, named after it (STYLE.md examples 2-3).

Market data are nouns (``BookUpdate``, ``Trade``). Timestamps are int64 ns: ``ts_event`` from
the exchange (ms * 1e6), ``ts_recv`` when the frame arrived and ``ts_pub`` when the record was
published (both ``time.monotonic_ns()``: one clock for every process). Prices and quantities
are int64 ticks/lots of the symbol's Instrument; ``symbol_id`` indexes the configured symbols.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DEPTH = 20

# BookUpdate.flags
BOOK_SNAPSHOT = 1  # first record after a (re)sync
BOOK_RESYNCING = 2  # the symbol is resyncing: levels are the last good book


def book_update_dtype(depth: int = DEFAULT_DEPTH) -> np.dtype:
    """BookUpdate with ``depth`` levels per side, padded to a multiple of 64 bytes."""
    if not 1 <= depth <= 1000:
        raise ValueError(f"book depth must be 1..1000: depth={depth}")
    fields = [
        ("symbol_id", "<i8"), ("update_id", "<i8"), ("ts_event", "<i8"), ("ts_recv", "<i8"),
        ("ts_pub", "<i8"), ("n_bids", "<i4"), ("n_asks", "<i4"), ("flags", "<i8"),
        ("seq", "<i8"),  # per-symbol count of applied depth events (trace id with ts_recv)
        ("bid_px", "<i8", (depth,)), ("bid_qty", "<i8", (depth,)),
        ("ask_px", "<i8", (depth,)), ("ask_qty", "<i8", (depth,)),
    ]
    size = 64 + 4 * 8 * depth
    pad = (-size) % 64
    if pad:
        fields.append(("_pad", f"V{pad}"))
    dt = np.dtype(fields)
    assert dt.itemsize % 64 == 0
    return dt


BookUpdate = book_update_dtype()

Trade = np.dtype([
    ("symbol_id", "<i8"), ("trade_id", "<i8"), ("price", "<i8"), ("qty", "<i8"),
    ("ts_event", "<i8"), ("ts_recv", "<i8"), ("ts_pub", "<i8"),
    ("flags", "<i8"),  # bit 0: buyer is maker (the aggressor sold)
])
TRADE_BUYER_MAKER = 1

assert Trade.itemsize == 64

MarkPrice = np.dtype([
    ("symbol_id", "<i8"),
    ("mark_px", "<i8"), ("index_px", "<i8"),  # ticks (index 0 = the venue did not say)
    ("funding_rate_e8", "<i8"),  # the current funding rate * 1e8
    ("next_funding_ms", "<i8"),
    ("ts_event", "<i8"), ("ts_recv", "<i8"), ("ts_pub", "<i8"),
])
assert MarkPrice.itemsize == 64

# -- order path -------------------------------------------------------------------------------
# Commands are imperative (the intent kinds), events past tense (OrderEvent kinds).
MAX_SYMBOLS = 16

# OrderIntent.kind
SUBMIT_ORDER = 1
CANCEL_ORDER = 2
CANCEL_ALL = 3
MODIFY_ORDER = 4  # amend a resting LIMIT order named by client_tag: price and/or qty (0 = keep it)
# report the open orders of ``strategy_id`` (-1: of every strategy on this ring): execution
# answers on ``exec`` with one ORDER_OPEN per order, then ORDERS_REPORTED (a restarted
# strategy learns the orders its previous process left working)
REPORT_ORDERS = 5
# OrderIntent.source
SOURCE_STRATEGY = 1
SOURCE_MANUAL = 2
SOURCE_RISK = 3
SOURCE_REMOTE = 4  # a strategy on another host, through the NATS bridge (orders.remote)
SOURCE_NAMES = {SOURCE_STRATEGY: "strategy", SOURCE_MANUAL: "manual", SOURCE_RISK: "risk", SOURCE_REMOTE: "remote"}
STRATEGY_ID_MANUAL = -1  # OrderIntent/OrderEvent.strategy_id of manual orders (the TUI's, the ops API's)
# side
BUY = 1
SELL = -1
# order_type
LIMIT = 1
MARKET = 2
# conditional orders: wait at the venue for the trigger price, then go as a MARKET order.
# STOP_MARKET triggers when the price reaches trigger_price against the position (BUY: at or above,
# SELL: at or below), TAKE_PROFIT_MARKET the other way; TRAILING_STOP_MARKET follows the best
# price since it was placed (from trigger_price, its activation price, when set) and triggers
# when the price comes back callback_bps from it
STOP_MARKET = 3
TAKE_PROFIT_MARKET = 4
TRAILING_STOP_MARKET = 5
CONDITIONAL_TYPES = frozenset((STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET))
ORDER_TYPE_NAMES = {LIMIT: "limit", MARKET: "market", STOP_MARKET: "stop_market",
                    TAKE_PROFIT_MARKET: "take_profit_market", TRAILING_STOP_MARKET: "trailing_stop_market"}


def conditional_terms_fault(order_type: int, price: int, trigger_price: int, callback_bps: int) -> str:
    """The field a conditional order's terms get wrong, or "": no limit price, a trigger above 0
    (a trailing stop's activation may be 0), a trailing stop's callback 10..1000 bps in steps of
    10. One rule for the strategy API, the bridge and execution's pre-trade check."""
    if price != 0:
        return "price"
    if trigger_price < 0 or (order_type != TRAILING_STOP_MARKET and trigger_price == 0):
        return "trigger_price"
    if order_type == TRAILING_STOP_MARKET and not (10 <= callback_bps <= 1000 and callback_bps % 10 == 0):
        return "callback_bps"
    return ""
# tif
GTC = 1
IOC = 2
FOK = 3
POST_ONLY = 4  # a limit order that only rests: the venue rejects it instead of letting it take
TIF_NAMES = {GTC: "gtc", IOC: "ioc", FOK: "fok", POST_ONLY: "post_only"}

OrderIntent = np.dtype([
    ("intent_id", "<i8"),  # per-producer sequence: (source, strategy_id, intent_id) is unique
    ("kind", "<i8"), ("source", "<i8"), ("strategy_id", "<i8"), ("symbol_id", "<i8"),
    ("side", "<i8"), ("order_type", "<i8"), ("tif", "<i8"),
    ("price", "<i8"),  # ticks; 0 for MARKET
    ("qty", "<i8"),  # lots
    ("reduce_only", "<i8"),
    ("client_tag", "<i8"),  # the strategy's own order number; CANCEL_ORDER names the order by it
    ("ts_md_recv", "<i8"),  # trace: ts_recv of the market-data event that caused the intent
    ("md_seq", "<i8"),  # trace: BookUpdate.seq of that event
    ("ts_intent", "<i8"),  # when the intent was written
    ("flags", "<i8"),  # INTENT_*
    ("trigger_price", "<i8"),  # ticks: a conditional order's trigger (a trailing stop's activation; 0 = none)
    ("callback_bps", "<i8"),  # a trailing stop's callback from its best price, in basis points
    ("_pad", "V48"),
])
assert OrderIntent.itemsize == 192
# OrderIntent.flags
INTENT_ON_MARK = 1  # a conditional order triggers on the mark price (default: the last trade price)

# OrderEvent.kind (past tense: what happened to an order)
ORDER_ACCEPTED = 1  # the exchange acknowledged it (NEW)
ORDER_DENIED = 2  # b25's pre-trade check refused it; never sent
ORDER_REJECTED = 3  # the exchange refused it (reason = REJECT_*)
ORDER_PARTIALLY_FILLED = 4
ORDER_FILLED = 5
ORDER_CANCELED = 6
ORDER_EXPIRED = 7
ORDER_CANCEL_REJECTED = 8
ORDER_SENT = 9  # request written to the wire (for latency tracing)
# an amend (MODIFY_ORDER): requested (price/qty: the values asked for; journaled before the wire),
# done (price/qty: the order's new ones), or refused (reason DENY_* by b25, REJECT_* by the venue;
# the order is unchanged: price/qty its current ones)
ORDER_MODIFY_SENT = 10
ORDER_MODIFIED = 11
ORDER_MODIFY_REJECTED = 12
ORDER_TRIGGERED = 13  # a conditional order's trigger was hit: it works as a MARKET order now (order_id its id)
# A report restates what execution holds, it is not a change: not journaled, event_seq 0; its two
# kinds are the highest (a strategy tells them apart with one comparison).
# ORDER_OPEN: this order is open at execution now (FLAG_RECOVERED set); ``reason`` is its status
# there (REPORTED_PENDING: not yet acknowledged, else acknowledged) and ``trade_id`` its tif.
# ORDERS_REPORTED closes a report: ``strategy_id`` the one reported (-1 all), ``qty`` how many
# orders, ``intent_id``/``source`` the request's (0/0: execution's own report after its start).
ORDER_OPEN = 14
ORDERS_REPORTED = 15
REPORTED_PENDING = 0
EVENT_NAMES = {ORDER_ACCEPTED: "accepted", ORDER_DENIED: "denied", ORDER_REJECTED: "rejected",
               ORDER_PARTIALLY_FILLED: "partially_filled", ORDER_FILLED: "filled", ORDER_CANCELED: "canceled",
               ORDER_EXPIRED: "expired", ORDER_CANCEL_REJECTED: "cancel_rejected", ORDER_SENT: "sent",
               ORDER_MODIFY_SENT: "modify_sent", ORDER_MODIFIED: "modified", ORDER_MODIFY_REJECTED: "modify_rejected",
               ORDER_TRIGGERED: "triggered", ORDER_OPEN: "open", ORDERS_REPORTED: "reported"}
# events that leave an open order open and say nothing of its end (observers keep it as it was)
KEEPS_OPEN = frozenset((ORDER_MODIFY_SENT, ORDER_MODIFY_REJECTED, ORDER_TRIGGERED, ORDERS_REPORTED))
# OrderEvent.flags
FLAG_MAKER = 1
FLAG_REDUCE_ONLY = 2
FLAG_RECOVERED = 4  # emitted while reconciling after a restart, or in a report of open orders
FLAG_VANISHED = 8  # the exchange no longer knew an acknowledged order: execution closed it (EXPIRED)
FLAG_NOT_SENT = 16  # canceled before it was ever written to the venue (held by the limiter or a dead link)

# OrderDenied reasons (b25's own pre-trade checks; exchange rejects carry the exchange code, < 0)
DENY_HALTED = 1
DENY_REDUCING = 2
DENY_MAX_ORDER_QTY = 3
DENY_MAX_ORDER_NOTIONAL = 4
DENY_MAX_POSITION = 5
DENY_MAX_OPEN_ORDERS = 6
DENY_ORDER_RATE = 7
DENY_PRICE_BAND = 8
DENY_BREAKER_OPEN = 9
DENY_RATE_LIMIT = 10
DENY_BAD_INTENT = 11
DENY_UNKNOWN_ORDER = 12
DENY_RECOVERING = 13
DENY_RISK_UNAVAILABLE = 14  # risk.state missing, never written, or its producer dead or silent
DENY_JOURNAL_FULL = 15  # the journal's disk is full: nothing new goes out unjournaled
DENY_NAMES = {DENY_HALTED: "halted", DENY_REDUCING: "reducing_only", DENY_MAX_ORDER_QTY: "max_order_qty",
              DENY_MAX_ORDER_NOTIONAL: "max_order_notional", DENY_MAX_POSITION: "max_position",
              DENY_MAX_OPEN_ORDERS: "max_open_orders", DENY_ORDER_RATE: "max_order_rate",
              DENY_PRICE_BAND: "price_band", DENY_BREAKER_OPEN: "breaker_open", DENY_RATE_LIMIT: "rate_limit",
              DENY_BAD_INTENT: "bad_intent", DENY_UNKNOWN_ORDER: "unknown_order", DENY_RECOVERING: "recovering",
              DENY_RISK_UNAVAILABLE: "risk_unavailable", DENY_JOURNAL_FULL: "journal_full"}

# OrderRejected / OrderCancelRejected reasons: the venue refused a request. The adapter names
# its venue's error code with one of these (its own code goes to the log); disjoint from DENY_*.
REJECT_OTHER = 100  # a refusal b25 has no name for
REJECT_UNKNOWN_ORDER = 101  # the venue does not know the order (never arrived, closed, purged)
REJECT_DUPLICATE_ID = 102  # the client order id is in use: an earlier attempt did arrive
REJECT_UNAVAILABLE = 103  # the venue could not take it now (not acted on)
REJECT_POST_ONLY = 104  # a post-only order would have taken
REJECT_MARGIN = 105  # not enough margin
REJECT_FILTER = 106  # price, quantity or notional outside the symbol's filters
REJECT_REDUCE_ONLY = 107  # a reduce-only order would not reduce
REJECT_TIMESTAMP = 108  # the request's time was outside the venue's window (clock skew)
REJECT_AUTH = 109  # key, signature or permissions refused
REJECT_BAD_REQUEST = 110  # a parameter the venue refused (type, side, symbol, id format)
REJECT_NOT_FILLABLE = 111  # a fill-or-kill order could not fill whole
REJECT_WOULD_TRIGGER = 112  # a conditional order's trigger price is already passed
REJECT_NAMES = {REJECT_OTHER: "other", REJECT_UNKNOWN_ORDER: "unknown_order", REJECT_DUPLICATE_ID: "duplicate_id",
                REJECT_UNAVAILABLE: "unavailable", REJECT_POST_ONLY: "post_only", REJECT_MARGIN: "margin",
                REJECT_FILTER: "filter", REJECT_REDUCE_ONLY: "reduce_only", REJECT_TIMESTAMP: "timestamp",
                REJECT_AUTH: "auth", REJECT_BAD_REQUEST: "bad_request", REJECT_NOT_FILLABLE: "not_fillable",
                REJECT_WOULD_TRIGGER: "would_trigger"}
REASON_NAMES = {**DENY_NAMES, **REJECT_NAMES}  # OrderEvent.reason of any kind -> its name

OrderEvent = np.dtype([
    ("event_seq", "<i8"), ("kind", "<i8"), ("strategy_id", "<i8"), ("symbol_id", "<i8"),
    ("side", "<i8"), ("order_type", "<i8"), ("client_tag", "<i8"), ("order_id", "<i8"),
    ("price", "<i8"), ("qty", "<i8"),  # ticks / lots of the order
    ("cum_qty", "<i8"), ("last_px", "<i8"), ("last_qty", "<i8"),
    ("fee_e8", "<i8"),  # fee of this fill in 1e-8 units of the margin asset (negative = rebate)
    ("reason", "<i8"),  # DENY_* for ORDER_DENIED, REJECT_* for ORDER_REJECTED / ORDER_CANCEL_REJECTED
    ("trade_id", "<i8"),
    ("ts_event", "<i8"),  # exchange time (ms * 1e6)
    ("ts_recv", "<i8"),  # when execution received the report
    ("ts_intent", "<i8"), ("ts_md_recv", "<i8"), ("ts_sent", "<i8"),  # trace
    ("intent_id", "<i8"), ("source", "<i8"), ("flags", "<i8"),
    ("client_order_id", "S32"),
    ("trigger_price", "<i8"),  # ticks: a conditional order's trigger (a trailing stop's activation), else 0
    ("_pad", "V24"),
])
assert OrderEvent.itemsize == 256

# -- risk state (SeqLock block written by risk, read in line by execution) ---------------------
ACTIVE = 1
REDUCING = 2
HALTED = 3
TRADING_STATE_NAMES = {ACTIVE: "ACTIVE", REDUCING: "REDUCING", HALTED: "HALTED"}

RiskState = np.dtype([
    ("trading_state", "<i8"), ("updated_ns", "<i8"),
    ("max_open_orders", "<i8"),  # 0 = no limit (global)
    ("max_orders_per_s", "<i8"),  # 0 = no limit
    ("halt_reason", "<i8"), ("version", "<i8"),
    ("equity_e8", "<i8"), ("drawdown_e8", "<i8"),
    # per symbol_id; 0 = no limit
    ("max_order_qty", "<i8", (MAX_SYMBOLS,)),  # lots
    ("max_order_notional_e8", "<i8", (MAX_SYMBOLS,)),  # quote units * 1e8
    ("max_position", "<i8", (MAX_SYMBOLS,)),  # lots, absolute net position
    ("position", "<i8", (MAX_SYMBOLS,)),  # lots, signed net position across strategies
    ("mark", "<i8", (MAX_SYMBOLS,)),  # ticks; 0 = unknown
    ("price_band_bps", "<i8", (MAX_SYMBOLS,)),
    ("sym_max_open_orders", "<i8", (MAX_SYMBOLS,)),
    # -- the account as the exchange margins it (procs/risk/margin.py); execution reads none of
    # what follows (its pre-trade layout stops above), so it costs the order path nothing
    ("wallet_e8", "<i8"), ("unrealized_e8", "<i8"), ("margin_balance_e8", "<i8"),
    ("maint_margin_e8", "<i8"),  # -1: unknown (no margin brackets for a symbol with a position)
    ("available_e8", "<i8"),
    ("margin_ratio_e6", "<i8"),  # maintenance margin / margin balance * 1e6; -1 unknown
    ("leverage_e6", "<i8"),  # gross notional / margin balance * 1e6
    ("max_margin_ratio_e6", "<i8"),  # 0 = no limit
    ("crisis_triggers", "<i8"),  # crisis triggers true now (procs/risk/crisis.py bits)
    ("crisis_entered", "<i8"),  # the triggers behind the crisis hold (0: not in crisis)
    ("drawdown_velocity_e8", "<i8"),  # equity lost from the crisis window's high
    ("account_flags", "<i8"),  # ACCOUNT_* bits
    ("account_updated_ns", "<i8"),  # monotonic ns the figures above were computed
    ("open_order_margin_e8", "<i8"),  # the venue's initial margin for open orders (last reconciliation)
    ("gross_notional_e8", "<i8"),
    ("limit_breach_ns", "<i8"),  # monotonic ns a leverage/margin breach began (0: none); HALTED after limit_halt_after_s
    ("mark_source", "<i8", (MAX_SYMBOLS,)),  # MARK_* : where ``mark`` comes from
    ("leverage_sym_e6", "<i8", (MAX_SYMBOLS,)),  # position notional / margin balance * 1e6
    ("max_leverage_e6", "<i8", (MAX_SYMBOLS,)),  # 0 = no limit
    ("liquidation_px", "<i8", (MAX_SYMBOLS,)),  # ticks; 0 = none
    ("volatility_bps_e2", "<i8", (MAX_SYMBOLS,)),  # crisis mode's measure, bps * 100
    ("spread_bps_e2", "<i8", (MAX_SYMBOLS,)),
])
assert RiskState.itemsize % 64 == 0
# RiskState.mark_source
MARK_UNKNOWN = 0
MARK_VENUE = 1  # the exchange's mark price (md.mark)
MARK_MID = 2  # the book's mid: the exchange's mark is missing or older than [risk] mark_max_age_s
MARK_SOURCE_NAMES = {MARK_UNKNOWN: "unknown", MARK_VENUE: "mark_price", MARK_MID: "mid"}
# RiskState.account_flags
ACCOUNT_WALLET_FROM_VENUE = 1  # the wallet follows the exchange's (else [risk] capital + realized - fees)
ACCOUNT_BRACKETS_FROM_VENUE = 2  # maintenance margin from the exchange's brackets

# -- strategy signals and alerts (for the TUI and the monitor) ---------------------------------
Signal = np.dtype([
    ("strategy_id", "<i8"), ("symbol_id", "<i8"), ("ts", "<i8"),
    ("value", "<f8"),  # the strategy's signal (imbalance, fair-price offset, ...)
    ("decision", "<i8"),  # 0 none, 1 buy, -1 sell, 2 quote both sides, 3 cancel
    ("position", "<i8"), ("aux", "<f8"), ("md_seq", "<i8"),
])
assert Signal.itemsize == 64

ALERT_INFO = 1
ALERT_WARN = 2
ALERT_CRITICAL = 3
Alert = np.dtype([
    ("ts", "<i8"),  # time.time_ns(): alerts are read by people
    ("level", "<i8"), ("code", "<i8"), ("symbol_id", "<i8"),
    ("value", "<f8"), ("text", "S88"),
])
assert Alert.itemsize == 128
