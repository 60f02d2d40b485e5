"""What the bridge puts on NATS and accepts from it: one msgspec Struct per message, each
carrying ``type`` (its name) and ``v`` (its schema version). docs/bridge.md documents every
field; tests/bridge/test_schema.py fails when the two differ.

Subjects (``<p>`` = ``b25.<instance>``)::

    <p>.md.book.<SYMBOL>   Book         <p>.exec.<strategy>     OrderEvent
    <p>.md.trade.<SYMBOL>  Trade        <p>.alerts.<level>      Alert
    <p>.risk.state         RiskState    <p>.signals.<strategy>  Signal
    <p>.intent.<strategy>  Submit | Modify | Cancel | CancelAll | Heartbeat   (inbound; reply: IntentAck)
    <p>.cmd.<command>      KillSwitch | TradingState | CancelAllOrders | StrategyReload
                                                                 (inbound; reply: CommandReply)

Prices are integer ticks of ``10**-price_scale``, quantities integer lots of ``10**-qty_scale``
(exact, as in the rings); every message that carries one carries the scales. ``ts_recv``,
``ts_pub``, ``ts_intent``, ``ts_sent`` are CLOCK_MONOTONIC ns of the b25 host (comparable on that
host only); ``ts_event`` is the exchange's time and ``ts_wall`` the bridge host's wall clock, ns.

Encoding: msgpack (``[bridge] encoding = "msgpack"``, the default) or JSON. A decoder takes
either (a JSON message starts with ``{``, a msgpack map never does).

A change that removes or re-types a field raises the message's ``v``; adding an optional
field does not (decoders ignore fields they do not know).
"""

from __future__ import annotations

from typing import Literal

import msgspec

VERSION = 1


class Message(msgspec.Struct, tag_field="type", kw_only=True):
    v: int = VERSION


# -- outbound -----------------------------------------------------------------------------------
class Book(Message, tag="book", kw_only=True):
    """Top of the L2 book after an update (or the newest of several, see ``conflated``)."""

    symbol: str
    seq: int  # per-symbol count of applied depth events
    update_id: int  # the exchange's final update id of the event
    ts_event: int
    ts_recv: int
    ts_pub: int
    ts_wall: int
    flags: int  # 1 snapshot (first after a resync), 2 resyncing (levels are the last good book)
    price_scale: int
    qty_scale: int
    bids: list[tuple[int, int]]  # [price, qty] best first
    asks: list[tuple[int, int]]
    conflated: int = 0  # updates of this symbol skipped since the previous Book ([bridge] book_max_hz)


class Trade(Message, tag="trade", kw_only=True):
    symbol: str
    trade_id: int
    price: int
    qty: int
    buyer_maker: bool  # the aggressor sold
    ts_event: int
    ts_recv: int
    ts_pub: int
    ts_wall: int
    price_scale: int
    qty_scale: int


class OrderEvent(Message, tag="order_event", kw_only=True):
    """What happened to an order (execution's ``exec`` ring)."""

    seq: int  # the exec ring's sequence (per ring, see ``ring``): gaps mean lost events
    ring: int  # the exec ring's creation time (ns): a new value restarts ``seq``
    event_seq: int  # execution's event number
    kind: str  # accepted denied rejected partially_filled filled canceled expired cancel_rejected sent
    strategy: str  # the strategy's id ("" for manual and risk orders; the number when unknown)
    strategy_num: int
    source: str  # strategy manual risk remote
    symbol: str
    side: str  # BUY SELL
    order_type: str  # LIMIT MARKET STOP_MARKET TAKE_PROFIT_MARKET TRAILING_STOP_MARKET
    client_tag: int
    client_order_id: str
    order_id: int
    price: int
    qty: int
    cum_qty: int
    last_px: int
    last_qty: int
    fee_e8: int  # fee of this fill, 1e-8 units of the margin asset (negative = rebate)
    reason: int  # a deny code (b25's checks) or the exchange's error code (< 0)
    reason_name: str  # the deny reason's name, "" otherwise
    trade_id: int
    maker: bool
    flags: int  # 1 maker, 2 reduce-only, 4 recovered after a restart, 8 vanished
    intent_id: int
    ts_event: int
    ts_recv: int
    ts_intent: int
    ts_sent: int
    ts_wall: int
    price_scale: int
    qty_scale: int
    trigger_price: int = 0  # ticks: a conditional order's trigger (STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET)


class Alert(Message, tag="alert", kw_only=True):
    seq: int
    ring: int
    proc: str  # the process that raised it
    level: str  # info warn critical
    code: int
    symbol: str
    value: float
    text: str
    ts: int  # wall clock ns when raised


class SymbolRisk(msgspec.Struct, kw_only=True):
    position: int  # lots, signed, across strategies
    mark: int  # ticks; 0 unknown
    max_position: int  # 0 = no limit
    max_order_qty: int
    max_order_notional_e8: int
    price_band_bps: int
    max_open_orders: int
    price_scale: int
    qty_scale: int


class RiskState(Message, tag="risk_state", kw_only=True):
    """risk.state, published when its version changes ([bridge] risk_max_hz)."""

    trading_state: str  # ACTIVE REDUCING HALTED
    halt_reason: int
    version: int
    equity_e8: int
    drawdown_e8: int
    max_open_orders: int
    max_orders_per_s: int
    symbols: dict[str, SymbolRisk]
    ts_wall: int


class Signal(Message, tag="signal", kw_only=True):
    strategy: str
    strategy_num: int
    symbol: str
    ts: int
    value: float
    decision: int  # 0 none, 1 buy, -1 sell, 2 quote both sides, 3 cancel
    position: int
    aux: float
    md_seq: int
    ts_wall: int


# -- inbound: order intents from remote strategies ------------------------------------------------
class Intent(Message, kw_only=True):
    intent_id: int  # grows per strategy (time.time_ns() is a good choice): a repeat is a duplicate
    ts_wall: int = 0  # when the remote sent it (its clock)


class Submit(Intent, tag="submit", kw_only=True):
    symbol: str
    side: Literal["BUY", "SELL"]
    order_type: Literal["LIMIT", "MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"] = "LIMIT"
    tif: Literal["GTC", "IOC", "FOK", "POST_ONLY"] = "GTC"
    price: int = 0  # ticks; 0 for MARKET and the conditional types
    qty: int  # lots
    price_scale: int  # must equal the bridge's (from any Book/Trade): a mismatch is refused
    qty_scale: int
    reduce_only: bool = False
    client_tag: int  # the strategy's own order number; Cancel and Modify name the order by it
    trigger_price: int = 0  # ticks: a STOP_MARKET/TAKE_PROFIT_MARKET's trigger, a trailing stop's activation (0: none)
    callback_bps: int = 0  # a TRAILING_STOP_MARKET's callback: 10..1000, in steps of 10
    working_type: Literal["CONTRACT_PRICE", "MARK_PRICE"] = "CONTRACT_PRICE"  # what a trigger watches


class Modify(Intent, tag="modify", kw_only=True):
    """Amend a resting LIMIT order: a new price and/or quantity (0 keeps it)."""

    symbol: str
    client_tag: int
    price: int = 0  # ticks
    qty: int = 0  # lots, above what has filled
    price_scale: int
    qty_scale: int


class Cancel(Intent, tag="cancel", kw_only=True):
    symbol: str
    client_tag: int


class CancelAll(Intent, tag="cancel_all", kw_only=True):
    symbol: str = ""  # "" = every symbol


class Heartbeat(Message, tag="heartbeat", kw_only=True):
    """Keeps a remote strategy alive: silent for [bridge] remote_dead_s, its orders are cancelled."""

    ts_wall: int = 0


class IntentAck(Message, tag="intent_ack", kw_only=True):
    """The bridge's answer: written to orders.remote (accepted), a duplicate, or refused (error)."""

    intent_id: int
    accepted: bool
    duplicate: bool = False
    error: str = ""
    field: str = ""


AnyIntent = Submit | Modify | Cancel | CancelAll | Heartbeat


# -- inbound: control commands (the ops API's, by the same names) ----------------------------------
class Command(Message, kw_only=True):
    operator: str  # who asks; recorded in the audit log line as nats:<user>/<operator>


class KillSwitch(Command, tag="kill_switch", kw_only=True):
    on: bool


class TradingState(Command, tag="trading_state", kw_only=True):
    state: Literal["ACTIVE", "REDUCING", "HALTED"]


class CancelAllOrders(Command, tag="cancel_all", kw_only=True):
    symbol: str = ""


class StrategyReload(Command, tag="strategy_reload", kw_only=True):
    target: str = ""


class CommandReply(Message, tag="command_reply", kw_only=True):
    ok: bool
    sent: str = ""  # the control command sent (procs.core.control)
    to: str = ""  # the process it went to
    error: str = ""
    field: str = ""


AnyCommand = KillSwitch | TradingState | CancelAllOrders | StrategyReload
COMMANDS = ("kill_switch", "trading_state", "cancel_all", "strategy_reload")

OUTBOUND = (Book, Trade, OrderEvent, Alert, RiskState, Signal)
ALL = (*OUTBOUND, Submit, Modify, Cancel, CancelAll, Heartbeat, IntentAck, KillSwitch, TradingState, CancelAllOrders,
       StrategyReload, CommandReply)
AnyOutbound = Book | Trade | OrderEvent | Alert | RiskState | Signal | IntentAck | CommandReply


def type_name(cls: type[Message]) -> str:
    return str(cls.__struct_config__.tag)


class Codec:
    """Encode as configured; decode either encoding."""

    def __init__(self, encoding: Literal["msgpack", "json"] = "msgpack") -> None:
        self.encoding = encoding
        self._enc = msgspec.json.Encoder() if encoding == "json" else msgspec.msgpack.Encoder()
        self._json: dict[object, msgspec.json.Decoder] = {}
        self._mp: dict[object, msgspec.msgpack.Decoder] = {}

    def encode(self, msg: Message) -> bytes:
        return self._enc.encode(msg)

    def decode(self, data: bytes, typ: object = AnyOutbound) -> Message:
        """``data`` as ``typ``; msgspec.ValidationError/DecodeError name the field and reason."""
        if data[:1] == b"{":
            dec = self._json.get(typ) or self._json.setdefault(typ, msgspec.json.Decoder(typ))
        else:
            dec = self._mp.get(typ) or self._mp.setdefault(typ, msgspec.msgpack.Decoder(typ))
        return dec.decode(data)


def decode_any(data: bytes) -> Message:
    """Any b25 bridge message, in either encoding (for tools and remote clients); the error of
    the outbound union when it is none of them."""
    try:
        return _ANY.decode(data, AnyOutbound)
    except msgspec.ValidationError as first:
        for union in (AnyIntent, AnyCommand):
            try:
                return _ANY.decode(data, union)
            except msgspec.ValidationError:
                continue
        raise first from None


_ANY = Codec()


# -- subjects ---------------------------------------------------------------------------------------
def subject(instance: str, *tokens: str) -> str:
    """``b25.<instance>.<tokens...>``: ``subject(i, "md", "book", "BTCUSDT")``, ``subject(i, "exec", "mm_btc")``."""
    return ".".join(("b25", instance, *tokens))
