"""``b25 bench book``: the order-book path per depth message, b25 beside its peers.

One real stream (hftbacktest-binance/usdm/btcusdt_20240808.gz: 6547 BTCUSDT ``@depth@0ms`` diffs,
~68 levels each) and, per message, the full path: decode the raw frame, apply every level,
produce the top-N (N=20) book. Every implementation starts from the same REST snapshot (not
timed) and gets the same diffs (those with ``u >= lastUpdateId``, in arrival order):

* ``b25``: ``FrameDecoder(raw_levels=True)`` (msgspec; level arrays left as raw JSON) ->
  ``BookSync.on_diff`` (sequence checks) -> ``FastBook`` (one numba-compiled call parses the
  levels exactly into int ticks/lots, applies them, checks for a crossed book) ->
  ``fill_top`` into int64 arrays. Compiled once before timing (numba caches it on disk).
* ``b25-python``: the same with the pure-Python ``Book`` (no numba), for reference.
* ``naive``: ``json.loads`` -> float prices/quantities in two ``sortedcontainers.SortedDict``
  -> top-N as lists of (price, qty).
* ``nautilus``: nautilus_trader's ``OrderBook`` (its pyo3 API, the one with a depth-limited
  ``bids(n)``; the Cython book only returns every level) fed through Python the way its Binance
  adapter does: msgspec decode, ``Price``/``Quantity`` from floats, ``update``/``delete`` per
  level, ``bids(N)``/``asks(N)``. nautilus_trader pins an older uvloop than b25's, so it lives
  in its own venv (``.venv-peers/``, see ``PEER_VENV``) and runs in a subprocess
  (``python -m procs.tools.bench.book --peer nautilus``), which imports nothing from b25.

Each figure is the best of ``repeats`` passes (the machine is shared; the best pass is the one
least disturbed), with the garbage collector frozen after setup for every implementation alike.
The ``live`` key is filled by the market_data benchmark (exchange_sim -> market_data).
"""

from __future__ import annotations

import gc
import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "real" / "hftbacktest-binance" / "usdm" / "btcusdt_20240808.gz"
PEER_VENV = ROOT / ".venv-peers" / "nautilus"
PEER_REQUIREMENTS = ("nautilus_trader==1.221.0", "msgspec", "sortedcontainers")
TOP_N = 20
_U = re.compile(rb'"u":(\d+)')


class _PeerDepth(msgspec.Struct):
    """What a nautilus_trader Binance adapter decodes from a depth frame (msgspec, as it does)."""

    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    u: int = 0
    E: int = 0


class _PeerEnvelope(msgspec.Struct):
    data: _PeerDepth


class _PeerSnapshot(msgspec.Struct):
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


def load_stream(path: Path = DATA) -> tuple[bytes, list[bytes], int]:
    """(snapshot body, depth frames with u >= L in arrival order, total level updates)."""
    snap = b""
    depth: list[bytes] = []
    with gzip.open(path, "rb") as f:
        for line in f:
            raw = line.split(b" ", 1)[1].rstrip(b"\n")
            if raw.startswith(b'{"lastUpdateId"'):
                snap = raw
            elif b"@depth" in raw[:40]:
                depth.append(raw)
    last_id = int(json.loads(snap)["lastUpdateId"])
    frames = [r for r in depth if int(_U.search(r).group(1)) >= last_id]  # type: ignore[union-attr]
    levels = 0
    for r in frames:
        d = json.loads(r)["data"]
        levels += len(d["b"]) + len(d["a"])
    return snap, frames, levels


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

    from procs.book.messages import FrameDecoder
    from procs.book.rebuild import recorded_instruments, snapshot_resolver
    from procs.book.sync import BookSync, SyncStatus

    def setup() -> Any:
        dec = FrameDecoder(raw_levels=fast)
        sync = BookSync("BTCUSDT", "usdm", resolve=snapshot_resolver(recorded_instruments("usdm")), fast=fast)
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
            loads = json.loads
            for raw in frames:
                d = loads(raw)["data"]
                for p, q in d["b"]:
                    qty = float(q)
                    if qty:
                        bids[-float(p)] = qty
                    else:
                        bids.pop(-float(p), None)
                for p, q in d["a"]:
                    qty = float(q)
                    if qty:
                        asks[float(p)] = qty
                    else:
                        asks.pop(float(p), None)
                _top = ([(-p, q) for p, q in islice(bids.items(), TOP_N)], list(islice(asks.items(), TOP_N)))

        return body

    return _timed(setup, repeats)


def bench_nautilus(snap: bytes, frames: list[bytes], repeats: int) -> float:
    """Runs inside the peer venv (nautilus_trader installed); imports nothing from b25."""
    from nautilus_trader.core import nautilus_pyo3 as nt

    iid = nt.InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    buy, sell = nt.OrderSide.BUY, nt.OrderSide.SELL
    price, qty, order = nt.Price, nt.Quantity, nt.BookOrder
    pp, qp = 2, 3  # BTCUSDT precisions (exchangeInfo)

    def setup() -> Any:
        book = nt.OrderBook(iid, nt.BookType.L2_MBP)
        s = msgspec.json.decode(snap, type=_PeerSnapshot)
        for side, levels in ((buy, s.bids), (sell, s.asks)):
            for p, q in levels:
                book.update(order(side, price(float(p), pp), qty(float(q), qp), 0), 0, 0, 0)
        dec = msgspec.json.Decoder(_PeerEnvelope)

        def body() -> None:
            update, delete = book.update, book.delete
            for raw in frames:
                d = dec.decode(raw).data
                ts = d.E * 1_000_000
                for side, levels in ((buy, d.b), (sell, d.a)):
                    for p, q in levels:
                        qv = float(q)
                        o = order(side, price(float(p), pp), qty(qv, qp), 0)
                        if qv:
                            update(o, 0, d.u, ts)
                        else:
                            delete(o, 0, d.u, ts)
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
    snap, frames, levels = load_stream()
    if quick:
        frames, repeats = frames[:500], 1
        levels = sum(len(json.loads(r)["data"]["b"]) + len(json.loads(r)["data"]["a"]) for r in frames)
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
    snap, frames, levels = load_stream()
    if a.quick:
        frames = frames[:500]
        levels = sum(len(json.loads(r)["data"]["b"]) + len(json.loads(r)["data"]["a"]) for r in frames)
    import nautilus_trader

    res = _result("nautilus", bench_nautilus(snap, frames, a.repeats), len(frames), levels)
    res["version"] = nautilus_trader.__version__
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    if "--peer" in sys.argv:
        sys.exit(_peer_main(sys.argv[1:]))
    print(json.dumps(run(), indent=2))
