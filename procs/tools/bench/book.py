"""``b25 bench book``: the order-book path per depth message, b25 beside its peers.

One real stream (hftbacktest-binance/usdm/btcusdt_20240808.gz: 6547 BTCUSDT depth diffs at
0 ms, ~68 levels each) and, per message, the full path: decode the raw frame, apply every level,
produce the top-N (N=20) book. Every implementation starts from the same REST snapshot (not
timed) and gets the same diffs (those that continue it, in arrival order;
``procs.venue.binance.peers`` reads the recording and holds what each peer decodes):

* ``b25``: the venue's ``MarketCodec(raw_levels=True)`` (msgspec; level arrays left as raw
  JSON) -> ``BookSync.on_diff`` (the venue's sequence rule) -> ``FastBook`` (one numba-compiled
  call parses the levels exactly into int ticks/lots, applies them, checks for a crossed book)
  -> ``fill_top`` into int64 arrays. Compiled once before timing (numba caches it on disk).
* ``b25-python``: the same with the pure-Python ``Book`` (no numba), for reference.
* ``naive``: ``json.loads`` -> float prices/quantities in two ``sortedcontainers.SortedDict``
  -> top-N as lists of (price, qty).
* ``nautilus``: nautilus_trader's ``OrderBook`` (its pyo3 API, the one with a depth-limited
  ``bids(n)``; the Cython book only returns every level) fed through Python the way its
  adapter for this venue does: msgspec decode, ``Price``/``Quantity`` from floats, ``update``/``delete`` per
  level, ``bids(N)``/``asks(N)``. nautilus_trader pins an older uvloop than b25's, so it lives
  in its own venv (``.venv-peers/``, see ``PEER_VENV``) and runs in a subprocess
  (``python -m procs.tools.bench.book --peer nautilus``), which imports no b25 code but the
  peers' wire structs (``procs.venue.binance.peers``: msgspec only).

Each figure is the best of ``repeats`` passes (the machine is shared; the best pass is the one
least disturbed), with the garbage collector frozen after setup for every implementation alike.
The ``live`` key is filled by the market_data benchmark (exchange_sim -> market_data).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from procs.venue.binance.peers import (
    PeerEnvelope,
    PeerSnapshot,
    count_levels,
    load_depth_stream,
    naive_levels,
)

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "real" / "hftbacktest-binance" / "usdm" / "btcusdt_20240808.gz"
PEER_VENV = ROOT / ".venv-peers" / "nautilus"
PEER_REQUIREMENTS = ("nautilus_trader==1.221.0", "msgspec", "sortedcontainers")
TOP_N = 20


def _timed(run_once: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        body = run_once()  # setup outside the timed part; returns the timed callable
        gc.collect()
        gc.freeze()
        t0 = time.perf_counter()
        body()
        best = min(best, time.perf_counter() - t0)
        gc.unfreeze()
    return best


def bench_b25(snap: bytes, frames: list[bytes], repeats: int, fast: bool = True) -> float:
    import numpy as np

    from procs.book.rebuild import snapshot_resolver
    from procs.book.sync import BookSync, SyncStatus
    from procs.venue.adapters import decode_venue, open_venue

    venue = open_venue(decode_venue({}))  # the venue whose recording this is
    market = next(iter(venue.recordings().iter_frames(DATA))).market

    def setup() -> Any:
        dec = venue.market_codec(raw_levels=fast)
        sync = BookSync("BTCUSDT", dec.depth_rule, resolve=snapshot_resolver(venue.recordings().instruments(market)),
                        fast=fast)
        sync.on_snapshot(dec.decode_snapshot(snap))  # type: ignore[arg-type]
        top = [np.zeros(TOP_N, np.int64) for _ in range(4)]

        def body() -> None:
            decode, on_diff, applied = dec.decode, sync.on_diff, SyncStatus.APPLIED
            book = sync.book
            assert book is not None
            fill = book.fill_top
            bp, bq, ap, aq = top
            for raw in frames:
                if on_diff(decode(raw)[1]) == applied:  # type: ignore[arg-type]
                    fill(bp, bq, ap, aq)
            assert sync.counters.applied == len(frames), sync.counters.as_dict()

        return body

    return _timed(setup, repeats)


def bench_naive(snap: bytes, frames: list[bytes], repeats: int) -> float:
    from itertools import islice

    from sortedcontainers import SortedDict

    def setup() -> Any:
        s = json.loads(snap)
        bids: SortedDict = SortedDict({-float(p): float(q) for p, q in s["bids"]})
        asks: SortedDict = SortedDict({float(p): float(q) for p, q in s["asks"]})

        def body() -> None:
            decode = naive_levels  # json.loads and the two level lists
            for raw in frames:
                b, a = decode(raw)
                for p, q in b:
                    qty = float(q)
                    if qty:
                        bids[-float(p)] = qty
                    else:
                        bids.pop(-float(p), None)
                for p, q in a:
                    qty = float(q)
                    if qty:
                        asks[float(p)] = qty
                    else:
                        asks.pop(float(p), None)
                _top = ([(-p, q) for p, q in islice(bids.items(), TOP_N)], list(islice(asks.items(), TOP_N)))

        return body

    return _timed(setup, repeats)


def bench_nautilus(snap: bytes, frames: list[bytes], repeats: int) -> float:
    """Runs inside the peer venv (nautilus_trader installed); imports no b25 code but the peers' structs."""
    from nautilus_trader.core import nautilus_pyo3 as nt

    iid = nt.InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    buy, sell = nt.OrderSide.BUY, nt.OrderSide.SELL
    price, qty, order = nt.Price, nt.Quantity, nt.BookOrder
    pp, qp = 2, 3  # BTCUSDT precisions (the venue's instrument list)

    def setup() -> Any:
        book = nt.OrderBook(iid, nt.BookType.L2_MBP)
        s = msgspec.json.decode(snap, type=PeerSnapshot)
        for side, levels in ((buy, s.bids), (sell, s.asks)):
            for p, q in levels:
                book.update(order(side, price(float(p), pp), qty(float(q), qp), 0), 0, 0, 0)
        dec = msgspec.json.Decoder(PeerEnvelope)

        def body() -> None:
            update, delete = book.update, book.delete
            for raw in frames:
                d = dec.decode(raw).data
                ts = d.ts_ms * 1_000_000
                for side, levels in ((buy, d.bids), (sell, d.asks)):
                    for p, q in levels:
                        qv = float(q)
                        o = order(side, price(float(p), pp), qty(qv, qp), 0)
                        if qv:
                            update(o, 0, d.update_id, ts)
                        else:
                            delete(o, 0, d.update_id, ts)
                _top = (book.bids(TOP_N), book.asks(TOP_N))

        return body

    return _timed(setup, repeats)


def _peer(impl: str, repeats: int, quick: bool) -> dict[str, Any]:
    from procs.tools.bench.replay_peer import PeerError, ensure_venv

    try:
        ensure_venv(PEER_VENV, PEER_REQUIREMENTS)  # created once by the benchmark itself
    except PeerError as exc:
        return {"impl": impl, "error": str(exc)}
    py = PEER_VENV / "bin" / "python"
    cmd = [str(py), "-m", "procs.tools.bench.book", "--peer", impl, "--repeats", str(repeats)]
    if quick:
        cmd.append("--quick")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=1800)
    if r.returncode != 0:
        return {"impl": impl, "error": r.stderr.decode(errors="replace")[-500:]}
    return json.loads(r.stdout)


def _result(impl: str, seconds: float, msgs: int, levels: int) -> dict[str, Any]:
    return {"impl": impl, "msgs_per_s": round(msgs / seconds), "levels_per_s": round(levels / seconds),
            "us_per_msg": round(seconds / msgs * 1e6, 2)}


def run(json_out: bool = True, quick: bool = False, repeats: int = 5) -> dict[str, Any]:
    """Measure every implementation; returns ``{"results": [...], "live": None, ...}``."""
    snap, frames, levels = load_depth_stream(DATA)
    if quick:
        frames, repeats = frames[:500], 1
        levels = count_levels(frames)
    results = [
        _result("b25", bench_b25(snap, frames, repeats, fast=True), len(frames), levels),
        _result("b25-python", bench_b25(snap, frames, repeats, fast=False), len(frames), levels),
        _result("naive", bench_naive(snap, frames, repeats), len(frames), levels),
        _peer("nautilus", repeats, quick),
    ]
    by = {r["impl"]: r for r in results}
    speedup = {f"b25_vs_{k}": round(by["b25"]["msgs_per_s"] / v["msgs_per_s"], 2)
               for k, v in by.items() if not k.startswith("b25") and "msgs_per_s" in v}
    from procs.tools.bench.book_live import run_live

    live = run_live(quick=quick)
    return {"bench": "book", "data": str(DATA.relative_to(ROOT.parent)), "messages": len(frames),
            "levels": levels, "top_n": TOP_N, "repeats": repeats, "results": results,
            "speedup": speedup, "targets": {"b25_vs_naive": 3.0, "b25_vs_nautilus": 1.5,
                                            "recv_to_publish_p50_us": 20, "recv_to_publish_p99_us": 80},
            "live": live}


def _peer_main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, choices=["nautilus"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    snap, frames, levels = load_depth_stream(DATA)
    if a.quick:
        frames = frames[:500]
        levels = count_levels(frames)
    import nautilus_trader

    res = _result("nautilus", bench_nautilus(snap, frames, a.repeats), len(frames), levels)
    res["version"] = nautilus_trader.__version__
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    if "--peer" in sys.argv:
        sys.exit(_peer_main(sys.argv[1:]))
    print(json.dumps(run(), indent=2))
