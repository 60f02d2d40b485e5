"""Binance market-data frames -> b25's market messages: the wire structs and one reusable decoder.

The wire structs subclass b25's normalised ones (``procs.venue.messages``) with the exchange's
field names as msgspec renames, so a frame decodes straight into a ``DepthDiff`` /
``TradeTick`` / ... in one pass: no second object, no copy. Prices and quantities stay *strings*:
the exchange sends exact decimals, and the book turns them into integer ticks/lots itself.

Every Struct ignores unknown fields (msgspec's default), because field sets differ by product
and era (COIN-M adds ``ps``, spot ``@trade`` has ``M``, 2021 ``aggTrade`` has no ``nq``).

``MarketCodec.decode`` is the hot-path entry: it peeks at the stream name of a combined-stream
frame (``{"stream":"btcusdt@depth@0ms","data":{...}}``) and decodes the whole frame in one pass
with the Struct for that stream. Raw-mode frames (bare payloads) and frames whose keys come in
another order go through a slower generic path. It never raises: garbage returns ``None`` and
bumps ``decode_errors``.
"""

from __future__ import annotations

import msgspec

from procs.venue import messages as V
from procs.venue.messages import Level

from .depth import CHAINED, RULES

_DEPTH = {"symbol": "s", "first_id": "U", "last_id": "u", "bids": "b", "asks": "a", "prev_id": "pu",
          "ts_event_ms": "E"}


class DepthUpdate(V.DepthDiff, rename=_DEPTH, gc=False):
    """``depthUpdate``: a diff (``e == "depthUpdate"``); quantities are absolute, "0" deletes."""

    symbol: str
    first_id: int
    last_id: int
    bids: list[Level]
    asks: list[Level]
    prev_id: int = -1  # USD-M / COIN-M only; spot has none
    ts_event_ms: int = 0


class DepthUpdateRaw(DepthUpdate, gc=False):
    """A diff whose level arrays stay raw JSON (``MarketCodec(raw_levels=True)``) for FastBook:
    no per-level Python objects at all."""

    bids: msgspec.Raw  # type: ignore[assignment]
    asks: msgspec.Raw  # type: ignore[assignment]


class BookTicker(V.TopOfBook, rename={"symbol": "s", "update_id": "u", "bid_px": "b", "bid_qty": "B",
                                      "ask_px": "a", "ask_qty": "A", "ts_event_ms": "E"}, gc=False):
    """``@bookTicker``: best bid/ask; ``u`` is the order-book update id it reflects."""

    symbol: str
    update_id: int
    bid_px: str
    bid_qty: str
    ask_px: str
    ask_qty: str
    ts_event_ms: int = 0


class Trade(V.TradeTick, rename={"symbol": "s", "trade_id": "t", "price": "p", "qty": "q", "ts_event_ms": "T",
                                 "buyer_maker": "m", "event_ms": "E"}, gc=False):
    """``@trade``: ``t`` trade id, ``T`` trade time, ``m`` buyer is maker, ``E`` event time."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    ts_event_ms: int = 0
    buyer_maker: bool = False
    event_ms: int = 0


class AggTrade(V.TradeTick, rename={"symbol": "s", "trade_id": "a", "price": "p", "qty": "q", "ts_event_ms": "T",
                                    "buyer_maker": "m", "event_ms": "E", "first_trade_id": "f",
                                    "last_trade_id": "l"}, gc=False):
    """``@aggTrade``: ``a`` the aggregate trade's id, covering trade ids ``f``..``l``."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    ts_event_ms: int = 0
    buyer_maker: bool = False
    event_ms: int = 0
    first_trade_id: int = 0
    last_trade_id: int = 0


class MarkPrice(V.MarkPriceTick, rename={"symbol": "s", "price": "p", "index_price": "i", "funding_rate": "r",
                                         "next_funding_ms": "T", "ts_event_ms": "E"}, gc=False):
    """``@markPrice`` / ``@markPrice@1s``: ``p`` mark, ``i`` index, ``r`` funding rate, ``T`` next
    funding time (``P``, the estimated settle price, is not kept)."""

    symbol: str
    price: str
    index_price: str = "0"
    funding_rate: str = "0"
    next_funding_ms: int = 0
    ts_event_ms: int = 0


class DepthSnapshot(V.DepthSnapshot, rename={"last_id": "lastUpdateId", "ts_event_ms": "E"}, gc=False):
    """The REST depth snapshot body (``GET /fapi/v1/depth``, ``/dapi``, ``/api/v3``)."""

    last_id: int
    bids: list[Level]
    asks: list[Level]
    ts_event_ms: int = 0
    symbol: str = ""  # COIN-M only


class _Envelope(msgspec.Struct):
    stream: str
    data: msgspec.Raw


class _Peek(msgspec.Struct):
    e: str = ""
    lastUpdateId: int = -1  # noqa: N815 (the exchange's field name)
    u: int = -1


def _env(typ: type) -> type:
    return msgspec.defstruct(f"{typ.__name__}Envelope", [("stream", str), ("data", typ)], gc=False)


# stream name after the '@' -> payload type
_BY_STREAM: dict[str, type] = {
    "depth": DepthUpdate,
    "bookTicker": BookTicker,
    "trade": Trade,
    "aggTrade": AggTrade,
    "markPrice": MarkPrice,
    "depthSnapshot": DepthSnapshot,  # b25's recorder may wrap a REST snapshot this way
}
_BY_EVENT: dict[str, type] = {
    "depthUpdate": DepthUpdate,
    "bookTicker": BookTicker,
    "trade": Trade,
    "aggTrade": AggTrade,
    "markPriceUpdate": MarkPrice,
}
FRAME_PREFIX = b'{"stream":"'  # a combined-stream frame: the stream name follows, up to a quote


def stream_kind(stream: str) -> str:
    """``"btcusdt@depth@0ms"`` -> ``"depth"``; ``"btcusdt@markPrice@1s"`` -> ``"markPrice"``."""
    at = stream.find("@")
    rest = stream[at + 1 :] if at >= 0 else stream
    end = rest.find("@")
    return rest if end < 0 else rest[:end]


class MarketCodec:
    """``procs.venue.protocols.MarketCodec``: frames -> market messages, reusing one msgspec
    decoder per type (they are not free). ``frame_prefix``: the hot path's routing key (the
    stream name) follows it up to a quote; ``depth_rule``: how diffs continue each other."""

    frame_prefix = FRAME_PREFIX

    def __init__(self, raw_levels: bool = False, market: str = "usdm") -> None:
        by_stream = dict(_BY_STREAM, depth=DepthUpdateRaw) if raw_levels else _BY_STREAM
        self._env_dec = {k: msgspec.json.Decoder(_env(t)) for k, t in by_stream.items()}
        self._payload_dec = {t: msgspec.json.Decoder(t) for t in set(by_stream.values())}
        self.depth_type: type = by_stream["depth"]  # DepthUpdate, or DepthUpdateRaw
        self.depth_rule = RULES.get(market, CHAINED)
        self._generic = msgspec.json.Decoder(_Envelope)
        self._peek = msgspec.json.Decoder(_Peek)
        # stream name bytes -> (name, envelope decoder or None): one dict hit per frame instead
        # of decoding and splitting the name every time. Bounded: a feed has few streams.
        self._streams: dict[bytes, tuple[str, msgspec.json.Decoder | None]] = {}
        self.decode_errors = 0
        self.ignored = 0  # well-formed frames of streams the book does not use (kline, ...)

    @staticmethod
    def rule(market: str) -> object:
        """The depth rule of a recording's market (``recordings.KINDS``)."""
        return RULES[market]

    def decode(self, raw: bytes) -> tuple[str, V.MarketMessage | None]:
        """One frame -> ``(stream name or "", message)``; message is None when ignored or bad."""
        if raw.startswith(FRAME_PREFIX):
            name = raw[11 : raw.find(b'"', 11)]
            hit = self._streams.get(name)
            if hit is None:
                hit = self._learn_stream(name)
            stream, dec = hit
            if dec is not None:
                try:
                    return stream, dec.decode(raw).data
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.decode_errors += 1
                    return stream, None
            self._is_json(raw)
            self.ignored += 1
            return stream, None
        return self._decode_slow(raw)

    def _learn_stream(self, name: bytes) -> tuple[str, msgspec.json.Decoder | None]:
        stream = name.decode("ascii", "replace")
        kind = stream_kind(stream)
        dec = self._env_dec.get(kind) or self._env_dec.get(kind.split("_", 1)[0])  # kline_1m -> kline
        if len(self._streams) > 4096:
            self._streams.clear()
        self._streams[name] = (stream, dec)
        return stream, dec

    def decode_snapshot(self, raw: bytes | str) -> V.DepthSnapshot | None:
        """A REST depth snapshot body -> Struct; None (counted) when malformed."""
        try:
            return self._payload_dec[DepthSnapshot].decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.decode_errors += 1
            return None

    @staticmethod
    def snapshot_frame(symbol: str, raw: bytes) -> bytes:
        """A REST snapshot body as ``{"stream":"<sym>@depthSnapshot","data":...}``, one line (the
        frame ``recordings`` syncs a recorded session on)."""
        return b'{"stream":"%s@depthSnapshot","data":%s}' % (symbol.lower().encode(), raw.replace(b"\n", b""))

    def _is_json(self, raw: bytes) -> None:
        # An ignored stream is still checked for being JSON so a truncated frame is counted.
        try:
            self._generic.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.decode_errors += 1
            self.ignored -= 1

    def _decode_slow(self, raw: bytes) -> tuple[str, V.MarketMessage | None]:
        """Raw-mode payloads, or a combined frame whose keys are in another order."""
        try:
            env = self._generic.decode(raw)
            stream, body = env.stream, env.data
            typ: type | None = _BY_STREAM.get(stream_kind(stream).split("_", 1)[0])
            if typ is DepthUpdate:
                typ = self.depth_type
        except (msgspec.DecodeError, msgspec.ValidationError):
            stream, body, typ = "", raw, None
        try:
            if typ is None:
                peek = self._peek.decode(body)
                if peek.lastUpdateId >= 0:
                    typ = DepthSnapshot
                elif peek.e:
                    typ = _BY_EVENT.get(peek.e)
                    if typ is DepthUpdate:
                        typ = self.depth_type
                elif peek.u >= 0:
                    typ = BookTicker  # spot bookTicker carries no "e"
                if typ is None:
                    self.ignored += 1
                    return stream, None
            return stream, self._payload_dec[typ].decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.decode_errors += 1
            return stream, None
