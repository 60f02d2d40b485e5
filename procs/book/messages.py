"""Wire messages: msgspec Structs for the Binance market-data JSON, and one reusable frame decoder.

Prices and quantities stay *strings* here: the exchange sends exact decimals, and the book turns
them into integer ticks/lots itself (exactly, with a cache; see ``procs.book.book``). Decoding
them as floats would be faster to write but would make exactness a matter of luck.

Every Struct ignores unknown fields (msgspec's default), because field sets differ by product and
era (COIN-M adds ``ps``, spot ``@trade`` has ``M``, 2021 ``aggTrade`` has no ``nq``).

``FrameDecoder.decode`` is the hot-path entry: it peeks at the stream name of a combined-stream
frame (``{"stream":"btcusdt@depth@0ms","data":{...}}``) and decodes the whole frame in one pass
with the Struct for that stream. Raw-mode frames (bare payloads) and frames whose keys come in
another order go through a slower generic path. It never raises: garbage returns ``None`` and
bumps ``decode_errors``.
"""

from __future__ import annotations

import msgspec

Level = tuple[str, str]  # (price text, quantity text) exactly as sent

# FastBook.apply_frame, the live hot path that applies a raw depth frame without decoding it into
# a DepthUpdate: its "changed nothing, decode it the general way" code and its out[] fields
FRAME_NOT_HANDLED = 3
FRAME_RESIZE = 8  # added to apply_frame's code when the book's table must be rehashed
OUT_FIELDS = ("U", "u", "pu", "E", "T")
OUT_U, OUT_LAST_U, OUT_PU, OUT_E, OUT_T = range(len(OUT_FIELDS))


class DepthUpdate(msgspec.Struct, gc=False):
    """A diff-depth event (``e == "depthUpdate"``); quantities are absolute, "0" deletes."""

    s: str
    U: int
    u: int
    b: list[Level]
    a: list[Level]
    pu: int = -1  # USD-M / COIN-M only; spot has none
    E: int = 0
    T: int = 0


class DepthUpdateRaw(DepthUpdate, gc=False):
    """A diff whose level arrays stay raw JSON (``FrameDecoder(raw_levels=True)``) for FastBook.

    No per-level Python objects are made at all; ``levels(ev.b)`` decodes them when needed.
    """

    b: msgspec.Raw  # type: ignore[assignment]
    a: msgspec.Raw  # type: ignore[assignment]


_levels_dec = msgspec.json.Decoder(list[Level])


def levels(side: list[Level] | msgspec.Raw | bytes) -> list[Level]:
    """A diff side as (price, qty) strings, whichever way it was decoded."""
    return _levels_dec.decode(side) if isinstance(side, (msgspec.Raw, bytes)) else list(side)


class BookTicker(msgspec.Struct, gc=False):
    """Best bid/ask (``@bookTicker``); ``u`` is the order-book update id it reflects."""

    s: str
    u: int
    b: str
    B: str
    a: str
    A: str
    E: int = 0
    T: int = 0


class Trade(msgspec.Struct, gc=False):
    """A trade (``@trade``): ``t`` trade id, ``m`` buyer is maker."""

    s: str
    t: int
    p: str
    q: str
    T: int = 0
    E: int = 0
    m: bool = False


class AggTrade(msgspec.Struct, gc=False):
    """An aggregate trade (``@aggTrade``): ``a`` agg id covering trade ids ``f``..``l``."""

    s: str
    a: int
    p: str
    q: str
    f: int = 0
    l: int = 0  # noqa: E741 - the exchange's field name
    T: int = 0
    E: int = 0
    m: bool = False


class MarkPrice(msgspec.Struct, gc=False):
    """Mark price (``@markPrice``): ``p`` mark, ``i`` index, ``r`` funding rate."""

    s: str
    p: str
    E: int = 0
    i: str = "0"
    P: str = "0"
    r: str = "0"
    T: int = 0


class DepthSnapshot(msgspec.Struct, gc=False):
    """The REST depth snapshot body (``GET /fapi/v1/depth``, ``/dapi``, ``/api/v3``)."""

    lastUpdateId: int
    bids: list[Level]
    asks: list[Level]
    E: int = 0
    T: int = 0
    symbol: str = ""  # COIN-M only


Message = DepthUpdate | BookTicker | Trade | AggTrade | MarkPrice | DepthSnapshot


class _Envelope(msgspec.Struct):
    stream: str
    data: msgspec.Raw


class _Peek(msgspec.Struct):
    e: str = ""
    lastUpdateId: int = -1
    u: int = -1


def _env(typ: type) -> type:
    return msgspec.defstruct(f"{typ.__name__}Envelope", [("stream", str), ("data", typ)], gc=False)


# stream name after the '@' -> (payload type, combined-envelope decoder)
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
_PREFIX = b'{"stream":"'


def stream_kind(stream: str) -> str:
    """``"btcusdt@depth@0ms"`` -> ``"depth"``; ``"btcusdt@markPrice@1s"`` -> ``"markPrice"``."""
    at = stream.find("@")
    rest = stream[at + 1 :] if at >= 0 else stream
    end = rest.find("@")
    return rest if end < 0 else rest[:end]


class FrameDecoder:
    """Decodes raw frames into Structs, reusing one msgspec decoder per type (they are not free)."""

    def __init__(self, raw_levels: bool = False) -> None:
        by_stream = dict(_BY_STREAM, depth=DepthUpdateRaw) if raw_levels else _BY_STREAM
        self._env_dec = {k: msgspec.json.Decoder(_env(t)) for k, t in by_stream.items()}
        self._payload_dec = {t: msgspec.json.Decoder(t) for t in set(by_stream.values())}
        self.depth_type: type = by_stream["depth"]  # DepthUpdate, or DepthUpdateRaw
        self._generic = msgspec.json.Decoder(_Envelope)
        self._peek = msgspec.json.Decoder(_Peek)
        # stream name bytes -> (name, envelope decoder or None): one dict hit per frame instead
        # of decoding and splitting the name every time. Bounded: a feed has few streams.
        self._streams: dict[bytes, tuple[str, msgspec.json.Decoder | None]] = {}
        self.decode_errors = 0
        self.ignored = 0  # well-formed frames of streams the book does not use (kline, ...)

    def decode(self, raw: bytes) -> tuple[str, Message | None]:
        """One frame -> ``(stream name or "", message)``; message is None when ignored or bad."""
        if raw.startswith(_PREFIX):
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

    def decode_snapshot(self, raw: bytes | str) -> DepthSnapshot | None:
        """A REST depth snapshot body -> Struct; None (counted) when malformed."""
        try:
            return self._payload_dec[DepthSnapshot].decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.decode_errors += 1
            return None

    def _is_json(self, raw: bytes) -> None:
        # An ignored stream is still checked for being JSON so a truncated frame is counted.
        try:
            self._generic.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.decode_errors += 1
            self.ignored -= 1

    def _decode_slow(self, raw: bytes) -> tuple[str, Message | None]:
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
