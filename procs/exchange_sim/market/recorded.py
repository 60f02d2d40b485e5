"""A recording as b25 backtest's in-process exchange reads it: every frame decoded once into integer arrays, cached.

The frames come from the recording readers (``procs.book.recordings``) through the simulator's
own replay (``procs.exchange_sim.market.replay.Replay``): its instruments (the exchangeInfo file's,
widened to the decimals the recording writes), its first snapshot of each symbol, each frame's
exchange time, and the same decoders and decimal conversions ``Replay._serve`` applies, so the
exchange side of a backtest sees exactly what a replay's simulator sees.

Arrays, one row per recorded frame (``kind`` says what the row holds)::

    kind     INERT (changes nothing at the exchange: bookTicker, undecodable), DEPTH, TRADE
             (@trade), AGG_TRADE, MARK (markPrice), SNAPSHOT
    sid      symbol index (``symbols``)            recv / exch   receive and exchange time, ns
    e_ms     the event time the exchange clock takes (depth and trades; 0: keeps its time)
    a, b, c  DEPTH: U, u, pu   TRADE/AGG_TRADE: trade id, price ticks, qty lots   MARK: price ticks
    d        DEPTH: T (ms)     TRADE/AGG_TRADE: T (ms), the sign bit the buyer-is-maker flag
    off, nb, na   DEPTH/SNAPSHOT: the levels (bids then asks) at px[off:], qty[off:]

The decoded arrays are cached (``run/cache/backtest/<sha256>.npz``, ``B25_CACHE`` moves it), keyed
by the files' contents, the frame limit and the instruments' scales: a second run of the same
days reads no JSON at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import msgspec
import numpy as np

from procs.core.instruments import Instrument
from procs.exchange_sim.config import SimConfig
from procs.exchange_sim.faults import Faults
from procs.exchange_sim.market.feed import Feed, Hub
from procs.exchange_sim.market.replay import DEPTH, ENVELOPE, MARK, TRADE, Replay, snapshot_of
from procs.exchange_sim.market.true_book import Market
from procs.exchange_sim.rest import served_exchange_info
from procs.venue.binance.exchange_info import instruments as read_instruments
from procs.venue.binance.exchange_info import read_body

INERT, DEPTH_KIND, TRADE_KIND, AGG_TRADE, MARK_KIND, SNAPSHOT = range(6)
FORMAT = 1  # bump when the arrays change meaning
_ROOT = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    return Path(os.environ.get("B25_CACHE", _ROOT / "run" / "cache")) / "backtest"


@dataclass
class Recording:
    """The decoded frames of one or more recordings played as one stream."""

    files: list[str]
    symbols: list[str]
    instruments: dict[str, Instrument]  # the exchange's (replay-widened)
    pipeline_info: dict  # the exchangeInfo body the simulator serves b25's processes
    first_snapshot: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]]  # sym -> bids, asks, last_u
    start_ms: int  # the exchange clock before the first event
    trade_streams: set[str]  # symbols whose @trade stream the recording carries
    frames: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    cached: bool = False
    load_s: float = 0.0

    def __post_init__(self) -> None:
        self.__dict__.update(self.arrays)  # rec.kind, rec.px, ...: plain attributes (the per-frame path reads them)

    @property
    def counts(self) -> dict[str, int]:
        k = self.arrays["kind"]
        names = ("inert", "depth", "trade", "agg_trade", "mark", "snapshot")
        return {n: int((k == i).sum()) for i, n in enumerate(names)}


def _sha(files: list[str], limit: int, exchange_info: str) -> str:
    h = hashlib.sha256(f"b25-backtest-{FORMAT}:{limit}:".encode())
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    h.update(Path(exchange_info).read_bytes())
    return h.hexdigest()


def load(files: list[str], exchange_info: str, limit: int = 0, use_cache: bool = True) -> Recording:
    """The recording, decoded (from the cache when it holds it)."""
    t0 = time.perf_counter()
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"recording not found: {missing}")
    key = _sha(files, limit, exchange_info)
    path = cache_dir() / f"{key}.npz"
    if use_cache and path.exists():
        try:
            rec = _read(path)
            rec.cached, rec.load_s = True, time.perf_counter() - t0
            return rec
        except (OSError, ValueError, KeyError) as exc:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
            del exc
    rec = decode(files, exchange_info, limit)
    if use_cache:
        _write(path, rec)
    rec.load_s = time.perf_counter() - t0
    return rec


def decode(files: list[str], exchange_info: str, limit: int = 0) -> Recording:
    """Read and decode the frames (the simulator's replay prepares them: see the module docstring)."""
    raw_info = read_body(exchange_info)
    market = Market(read_instruments(raw_info))
    faults = Faults()
    hub = Hub(faults)
    replay = Replay(market, Feed(market, hub, faults), hub,
                    SimConfig(source="replay", replay=[str(Path(f).resolve()) for f in files], replay_limit=limit,
                              exchange_info=exchange_info))
    symbols = list(replay.symbols)
    sid = {s: i for i, s in enumerate(symbols)}
    frames = replay.frames
    n = len(frames)
    kind = np.zeros(n, np.uint8)
    sids = np.zeros(n, np.int16)
    recv = np.fromiter((f.ts_recv_ns for f in frames), np.int64, n)
    e_ms = np.zeros(n, np.int64)
    a = np.zeros(n, np.int64)
    b = np.zeros(n, np.int64)
    c = np.zeros(n, np.int64)
    d = np.zeros(n, np.int64)
    off = np.zeros(n, np.int64)
    nb = np.zeros(n, np.int32)
    na = np.zeros(n, np.int32)
    px: list[int] = []
    qty: list[int] = []
    trade_streams: set[str] = set()
    for stream in replay.feed.raw_streams:
        sym, _, k = stream.partition("@")
        if k == "trade":
            trade_streams.add(sym.upper())
    for i, fr in enumerate(frames):
        if fr.snapshot_symbol is not None:
            sym = fr.snapshot_symbol
            if sym not in sid:
                continue
            try:
                snap = snapshot_of(fr)
                ins = market.instruments[sym]
                bids = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in snap.bids]
                asks = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in snap.asks]
            except (ValueError, KeyError, msgspec.DecodeError, msgspec.ValidationError):
                continue
            kind[i], sids[i], b[i], off[i], nb[i], na[i] = SNAPSHOT, sid[sym], snap.lastUpdateId, len(px), len(bids), len(asks)
            px += [p for p, _ in bids] + [p for p, _ in asks]
            qty += [q for _, q in bids] + [q for _, q in asks]
            continue
        try:
            env = ENVELOPE.decode(fr.raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        stream = env.stream
        sym = stream.split("@", 1)[0].upper()
        k = stream[len(sym) + 1:]
        if sym not in sid:
            continue
        ins = market.instruments[sym]
        try:
            if k.startswith("depth"):
                dd = DEPTH.decode(env.data)
                bids = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in dd.b]
                asks = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in dd.a]
                kind[i], e_ms[i], a[i], b[i], c[i], d[i] = DEPTH_KIND, dd.E, dd.U, dd.u, dd.pu, dd.T or dd.E
                off[i], nb[i], na[i] = len(px), len(bids), len(asks)
                px += [p for p, _ in bids] + [p for p, _ in asks]
                qty += [q for _, q in bids] + [q for _, q in asks]
            elif k in ("trade", "aggTrade"):
                t = TRADE.decode(env.data)
                kind[i] = TRADE_KIND if k == "trade" else AGG_TRADE
                e_ms[i], a[i], b[i], c[i] = t.E, t.t, ins.price_to_ticks(t.p), ins.qty_to_lots(t.q)
                tt = t.T or t.E
                d[i] = -tt if t.m else tt  # the buyer-is-maker flag rides on the sign
            elif k.startswith("markPrice"):
                m = MARK.decode(env.data)
                scaled = Decimal(m.p).scaleb(ins.price_scale)
                kind[i], b[i] = MARK_KIND, int(scaled.to_integral_value(ROUND_HALF_EVEN))
            else:
                continue
        except (ValueError, KeyError, msgspec.DecodeError, msgspec.ValidationError):
            kind[i] = INERT  # the simulator counts it a bad frame and skips it
            continue
        sids[i] = sid[sym]
    first = {}
    for sym in symbols:
        book = market.books[sym]
        bp = np.array(sorted(book.bids, reverse=True), np.int64)
        ap = np.array(sorted(book.asks), np.int64)
        first[sym] = (bp, np.array([book.bids[p] for p in bp.tolist()], np.int64), ap,
                      np.array([book.asks[p] for p in ap.tolist()], np.int64), book.last_u)
    return Recording(
        files=[str(f) for f in files], symbols=symbols,
        instruments={s: market.instruments[s] for s in symbols},
        pipeline_info=served_exchange_info(raw_info, market, ""), first_snapshot=first,
        start_ms=int(market.sim_time_ms or 0), trade_streams=trade_streams, frames=n,
        arrays={"kind": kind, "sid": sids, "recv": recv, "exch": replay.exch_ns, "e_ms": e_ms, "a": a, "b": b,
                "c": c, "d": d, "off": off, "nb": nb, "na": na, "px": np.asarray(px, np.int64),
                "qty": np.asarray(qty, np.int64)})


def _write(path: Path, rec: Recording) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"files": rec.files, "symbols": rec.symbols, "frames": rec.frames, "start_ms": rec.start_ms,
            "trade_streams": sorted(rec.trade_streams), "pipeline_info": rec.pipeline_info,
            "instruments": {s: msgspec.to_builtins(i) for s, i in rec.instruments.items()},
            "first_last_u": {s: v[4] for s, v in rec.first_snapshot.items()}}
    arrays = dict(rec.arrays)
    for s, (bp, bq, ap, aq, _u) in rec.first_snapshot.items():
        arrays[f"snap_{s}_bp"], arrays[f"snap_{s}_bq"], arrays[f"snap_{s}_ap"], arrays[f"snap_{s}_aq"] = bp, bq, ap, aq
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    os.replace(tmp, path)


def _read(path: Path) -> Recording:
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes())
        arrays = {k: z[k] for k in z.files if k != "meta" and not k.startswith("snap_")}
        first = {s: (z[f"snap_{s}_bp"], z[f"snap_{s}_bq"], z[f"snap_{s}_ap"], z[f"snap_{s}_aq"], u)
                 for s, u in meta["first_last_u"].items()}
    return Recording(files=meta["files"], symbols=meta["symbols"],
                     instruments={s: msgspec.convert(v, Instrument) for s, v in meta["instruments"].items()},
                     pipeline_info=meta["pipeline_info"], first_snapshot=first, start_ms=meta["start_ms"],
                     trade_streams=set(meta["trade_streams"]), frames=meta["frames"], arrays=arrays)
