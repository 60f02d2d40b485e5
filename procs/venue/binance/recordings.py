"""Recordings of Binance market data: every format b25 reads, as one ordered stream of frames.

Public API (the simulator's replay, ``b25 book``, the replay harness and the tests use it, the
engines through ``Adapter.recordings``)::

    from procs.venue.binance.recordings import iter_frames

    for frame in iter_frames(["usdm/btcusdt_20240718.gz", "usdm/btcusdt_20240719.gz"]):
        frame.ts_recv_ns       # int, local receive time in ns (recorder's clock)
        frame.raw              # bytes, the frame exactly as received (JSON text)
        frame.market           # "usdm" | "coinm" | "spot": which sync rules apply (depth.RULES)
        frame.snapshot_symbol  # str when raw is a REST depth snapshot body, else None

Decode ``frame.raw`` with ``procs.venue.binance.market.MarketCodec.decode``: it returns a
``DepthSnapshot`` for snapshot frames and the stream's message for the others.

Formats (detected from the content, not the file name):

* **hftbacktest / b25 recorder** (gzip or plain text): ``<local ts> <json>`` per line. The JSON
  is a combined-stream frame, or a REST depth snapshot body (``{"lastUpdateId":..}``) written
  where it was received. The timestamp unit is detected per line by magnitude (ns in the 2024
  files, us in the 2023 file; ms and s also accepted). A bare snapshot body names no symbol
  (USD-M, spot): it is taken from ``symbol`` in the body (COIN-M), else from the last stream seen
  in the chain, else from the file name (``btcusd_perp_20240808.gz`` -> ``BTCUSD_PERP``), else
  from the next stream. b25's recorder may also write ``{"stream":"<sym>@depthSnapshot",
  "data":{<body>}}``, which names it explicitly; that is the only safe form when one file holds
  several symbols.
* **cryptofeed raw**: ``X.ws.1.0`` (first line ``<ws url> <-> <ts>``, then ``<ts>: <frame>``)
  merged by time with its sibling ``X.http.0.0`` (``<rest url> -> <ts>: <body>``; the symbol is
  the url's ``symbol=`` query). Giving either file reads both. Timestamps are float seconds,
  converted to ns exactly from the text.

Several paths given in order continue one chain (a recorder that rotated its file), so a book
kept across them must not be reset between files. Market kind: from the URL (fstream / dstream
/ stream host; fapi / dapi / api paths), else the path (``usdm``, ``cm``/``coinm``, ``spot``
directories), else the first depth event (``ps`` or an ``_PERP``-style symbol -> coinm, ``pu``
-> usdm, neither -> spot); ``kind=`` overrides all of them.
"""

from __future__ import annotations

import gzip
import heapq
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlparse

import msgspec

from procs.core.instruments import Instrument
from procs.venue.messages import Frame, RecordedTrade

from . import exchange_info
from .market import AggTrade, MarketCodec, Trade

KINDS = ("usdm", "coinm", "spot")
REAL_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"
_EXCHANGE_INFO = {"usdm": "BINANCE_FUTURES.0", "coinm": "BINANCE_DELIVERY.0"}  # recorded, in cryptofeed-binance/


class _SnapSymbol(msgspec.Struct):
    symbol: str = ""


_snap_symbol = msgspec.json.Decoder(_SnapSymbol)
_DATE_SUFFIX = re.compile(r"_\d{8}.*$")
_STREAM_PREFIX = b'{"stream":"'


def iter_frames(paths: str | Path | Iterable[str | Path], kind: str | None = None) -> Iterator[Frame]:
    """Every frame of the given recordings, in order; several paths continue one chain."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    plist = [Path(p) for p in paths]
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown market kind: kind={kind!r} (expected one of {KINDS})")
    seen_cryptofeed: set[str] = set()
    last_symbol: list[str] = []  # shared across files: a chain's snapshot may follow its streams
    for p in plist:
        fmt = sniff_format(p)
        if fmt in ("cryptofeed-ws", "cryptofeed-http"):
            stem = _cryptofeed_stem(p)
            if stem in seen_cryptofeed:
                continue
            seen_cryptofeed.add(stem)
            yield from _iter_cryptofeed(stem, kind)
        elif fmt == "lines":
            yield from _iter_lines(p, kind, last_symbol)
        else:
            raise ValueError(f"not a recording b25 can read: path={p} format={fmt}")


# -- format detection ---------------------------------------------------------------------------
def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        # BufferedReader in front of GzipFile makes line iteration several times faster.
        return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 16)  # type: ignore[arg-type]
    return path.open("rb")


def sniff_format(path: str | Path) -> str:
    """``"lines"`` (hftbacktest/b25), ``"cryptofeed-ws"``, ``"cryptofeed-http"``, or ``"unknown"``."""
    with _open(Path(path)) as f:
        first = f.readline(1 << 16)
    if b" <-> " in first[:4096]:
        return "cryptofeed-ws"
    head = first[:4096]
    if b" -> " in head and b": {" in head:
        return "cryptofeed-http" if b"depth" in head.split(b" -> ", 1)[0] else "unknown"
    sp = first.find(b" ")
    if sp > 0 and first[:sp].isdigit() and first[sp + 1 : sp + 2] == b"{":
        return "lines"
    return "unknown"


def kind_from_url(url: str) -> str | None:
    """Market kind from a Binance WebSocket or REST URL; None when it does not say."""
    host = urlparse(url).netloc
    path = urlparse(url).path
    if host.startswith("fstream") or path.startswith("/fapi"):
        return "usdm"
    if host.startswith("dstream") or path.startswith("/dapi"):
        return "coinm"
    if host.startswith("stream.binance") or path.startswith("/api/v3"):
        return "spot"
    return None


def kind_from_path(path: Path) -> str | None:
    for part in reversed(path.parts[:-1]):
        low = part.lower()
        if low in ("usdm", "um", "futures"):
            return "usdm"
        if low in ("cm", "coinm", "delivery"):
            return "coinm"
        if low == "spot":
            return "spot"
    return None


def kind_from_depth(data: bytes) -> str:
    """Market kind from one depthUpdate payload: COIN-M has ``ps``; USD-M has ``pu``; spot neither."""
    if b'"ps":' in data or re.search(rb'"s":"[A-Z0-9]+_[A-Z0-9]+"', data):
        return "coinm"
    return "usdm" if b'"pu":' in data else "spot"


def ts_to_ns(text: bytes | str) -> int:
    """A recorder timestamp -> ns: integers by magnitude (s/ms/us/ns), decimals as seconds."""
    if isinstance(text, str):
        text = text.encode()
    if b"." in text:
        whole, frac = text.split(b".", 1)
        return int(whole) * 1_000_000_000 + int((frac + b"000000000")[:9])
    v = int(text)
    if v >= 10**17:
        return v
    if v >= 10**14:
        return v * 1_000
    if v >= 10**11:
        return v * 1_000_000
    return v * 1_000_000_000


# -- hftbacktest / b25 lines --------------------------------------------------------------------
def _stream_symbol(raw: bytes) -> str | None:
    if raw.startswith(_STREAM_PREFIX):
        at = raw.find(b"@", 11, 80)
        if at > 0:
            return raw[11:at].decode("ascii", "replace").upper()
    return None


def _sniff_lines_kind(path: Path) -> str:
    with _open(path) as f:
        for n, line in enumerate(f):
            if n > 5000:
                break
            if b"depthUpdate" in line:
                return kind_from_depth(line)
    return "usdm"


def _iter_lines(path: Path, kind: str | None, last_symbol: list[str]) -> Iterator[Frame]:
    k = kind or kind_from_path(path) or _sniff_lines_kind(path)
    file_symbol = _DATE_SUFFIX.sub("", path.name.split(".")[0]).upper() or None
    pending: list[tuple[int, bytes]] = []  # snapshots with no symbol known yet (rare)
    with _open(path) as f:
        for line in f:
            sp = line.find(b" ")
            if sp <= 0:
                continue
            raw = line[sp + 1 :].rstrip(b"\r\n")
            ts = ts_to_ns(line[:sp])
            sym = _stream_symbol(raw)
            if sym is not None:
                if raw[11 + len(sym) :].startswith(b"@depthSnapshot"):
                    yield Frame(ts, raw, k, sym)
                    continue
                if not last_symbol or last_symbol[-1] != sym:
                    last_symbol[:] = [sym]
                for pts, praw in pending:
                    yield Frame(pts, praw, k, sym)
                pending.clear()
                yield Frame(ts, raw, k, None)
            elif b'"lastUpdateId"' in raw:
                try:
                    s = _snap_symbol.decode(raw).symbol
                except (msgspec.DecodeError, msgspec.ValidationError):
                    s = ""
                s = s or (last_symbol[-1] if last_symbol else "") or (file_symbol or "")
                if s:
                    yield Frame(ts, raw, k, s)
                else:
                    pending.append((ts, raw))
            else:
                yield Frame(ts, raw, k, None)  # raw-mode payload or garbage: the decoder counts it
    for pts, praw in pending:
        yield Frame(pts, praw, k, file_symbol or "")


# -- cryptofeed raw -----------------------------------------------------------------------------
def _cryptofeed_stem(path: Path) -> str:
    name = path.name
    for marker in (".ws.", ".http."):
        if marker in name:
            return str(path.with_name(name[: name.index(marker)]))
    return str(path)


def _iter_cryptofeed(stem: str, kind: str | None) -> Iterator[Frame]:
    base = Path(stem)
    ws = sorted(base.parent.glob(base.name + ".ws.*"))
    http = sorted(base.parent.glob(base.name + ".http.*"))
    streams = [_iter_cf_ws(p, kind) for p in ws] + [_iter_cf_http(p, kind) for p in http]
    # Both files are in receive order; merging by timestamp puts each snapshot where it arrived.
    yield from heapq.merge(*streams, key=lambda fr: fr.ts_recv_ns)


def _iter_cf_ws(path: Path, kind: str | None) -> Iterator[Frame]:
    with _open(path) as f:
        header = f.readline().decode("utf-8", "replace")
        url = header.split(" <-> ", 1)[0].strip()
        k = kind or kind_from_url(url) or kind_from_path(path) or "usdm"
        for line in f:
            colon = line.find(b": ")
            if colon <= 0:
                continue
            yield Frame(ts_to_ns(line[:colon]), line[colon + 2 :].rstrip(b"\r\n"), k, None)


def _iter_cf_http(path: Path, kind: str | None) -> Iterator[Frame]:
    with _open(path) as f:
        for line in f:
            arrow = line.find(b" -> ")
            colon = line.find(b": ", arrow + 4)
            if arrow <= 0 or colon <= 0:
                continue
            url = line[:arrow].decode("utf-8", "replace")
            if "depth" not in urlparse(url).path:
                continue
            symbol = (parse_qs(urlparse(url).query).get("symbol") or [""])[0].upper()
            k = kind or kind_from_url(url) or "usdm"
            yield Frame(ts_to_ns(line[arrow + 4 : colon]), line[colon + 2 :].rstrip(b"\r\n"), k, symbol)


# -- what a recording holds -----------------------------------------------------------------------
def symbols(paths: str | Path | Iterable[str | Path], sample: int = 5000) -> list[str]:
    """The symbols of a recording's streams (from its first ``sample`` frames)."""
    out: set[str] = set()
    for i, fr in enumerate(iter_frames(paths)):
        if i >= sample:
            break
        if fr.snapshot_symbol is not None:
            out.add(fr.snapshot_symbol.upper())
        else:
            sym = _stream_symbol(fr.raw)
            if sym is not None:
                out.add(sym)
    return sorted(out)


def recorded_instruments(kind: str, path: str | Path | None = None) -> dict[str, Instrument]:
    """exchangeInfo instruments for a market kind: from ``path``, else the recorded one if any."""
    if path is None:
        name = _EXCHANGE_INFO.get(kind)
        if name is None or not (REAL_DATA / "cryptofeed-binance" / name).is_file():
            return {}
        path = REAL_DATA / "cryptofeed-binance" / name
    return exchange_info.instruments(path)


def tolerant(frames: Iterator[Frame], problems: list[str] | None) -> Iterator[Frame]:
    """``frames``, except that a gzip file cut short (the live recorder's current file) ends the
    stream where it is cut, noted in ``problems``, instead of raising."""
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except EOFError as exc:
            if problems is not None:
                problems.append(f"recording cut short (a file still being written?): {exc}")
            return


def trade_of(frame: Frame, decoder: MarketCodec) -> RecordedTrade | None:
    """The trade in one recorded frame, or None (depth, tickers, snapshots, garbage). A trade's
    time is ``T`` (``E`` when ``T`` is absent); an aggTrade covers ids ``f``..``l``."""
    raw = frame.raw
    if frame.snapshot_symbol is not None or (raw.startswith(b'{"stream":"') and b"rade" not in raw[:64]):
        return None  # depth, bookTicker, markPrice: not a trade (saves their decode)
    _, msg = decoder.decode(raw)
    if isinstance(msg, Trade):
        return RecordedTrade(msg.symbol, msg.ts_event_ms or msg.event_ms, msg.trade_id, msg.trade_id, msg.trade_id,
                             msg.price, msg.qty, msg.buyer_maker, "trade", False, msg.event_ms, frame.ts_recv_ns)
    if isinstance(msg, AggTrade):
        f, last = msg.first_trade_id, msg.last_trade_id
        first, last = (f, last) if last >= f > 0 else (msg.trade_id, msg.trade_id)
        return RecordedTrade(msg.symbol, msg.ts_event_ms or msg.event_ms, msg.trade_id, first, last, msg.price, msg.qty,
                             msg.buyer_maker, "aggTrade", True, msg.event_ms, frame.ts_recv_ns)
    return None


class Recordings:
    """``procs.venue.protocols.Recordings`` for Binance recordings (hftbacktest, cryptofeed, b25's own)."""

    markets = KINDS

    def __init__(self) -> None:
        self._decoder = MarketCodec()

    @staticmethod
    def iter_frames(paths: str | Path | Iterable[str | Path], market: str | None = None,
                    problems: list[str] | None = None) -> Iterator[Frame]:
        frames = iter_frames(paths, kind=market)
        return frames if problems is None else tolerant(frames, problems)

    def trade_of(self, frame: Frame) -> RecordedTrade | None:
        return trade_of(frame, self._decoder)

    def trades(self, paths: str | Path | Iterable[str | Path], market: str | None = None,
               problems: list[str] | None = None) -> Iterator[RecordedTrade]:
        for fr in tolerant(iter_frames(paths, kind=market), problems):
            t = trade_of(fr, self._decoder)
            if t is not None:
                yield t

    @staticmethod
    def symbols(paths: str | Path | Iterable[str | Path], sample: int = 5000) -> list[str]:
        return symbols(paths, sample)

    @staticmethod
    def instruments(market: str, path: str | Path | None = None) -> dict[str, Instrument]:
        return recorded_instruments(market, path)
