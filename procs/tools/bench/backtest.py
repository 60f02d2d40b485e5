"""``b25 bench backtest``: events/s of ``b25 backtest`` beside lockstep replay and hftbacktest.

b25 (one process, ``procs.tools.backtest``), on the four USD-M BTCUSDT days of
``../shared/data/real/hftbacktest-binance/usdm`` played as one stream:

* ``noop``: ``strategies.noop:DoNothing`` (no callback does work; the exchange still applies
  every frame, in compiled runs while nothing reacts);
* ``market_maker``: the shipped ``strategies.market_maker:MarketMaker`` with its b25.toml params.

``events_per_s`` = recorded frames / seconds of the event loop (the best of ``repeats`` passes:
the machine is shared), the recording already decoded (``run/cache/backtest``); ``wall_s`` is
one whole call (imports excepted: decode from cache, build, run, summary). ``first_decode_s``
is the uncached decode of the same files.

``lockstep``: ``b25 replay --lockstep`` (the real processes) and ``b25 backtest`` with the
MarketMaker on btcusdt_20240718 (the golden recording), default latency model: their
events/s and whether the journals agree (``same_journal``).

``peer``: hftbacktest (its own venv, ``procs.tools.bench.replay_peer``) on each of the same
files: its do-nothing strategy and its market-making example, summed over the files.
``frames_per_s`` counts source lines (one per recorded message, as b25's frames);
``rows_per_s`` hftbacktest's own unit (one row per price level). A file its converter cannot
read is named in ``errors``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from procs.tools.bench.replay_peer import ROOT, run_peer

DATA_DIR = ROOT.parent / "shared" / "data" / "real" / "hftbacktest-binance" / "usdm"
DAYS = ("btcusdt_20230404.dat.gz", "btcusdt_20240718.gz", "btcusdt_20240719.gz", "btcusdt_20240808.gz")
GOLDEN_DAY = "btcusdt_20240718.gz"
NOOP = "strategies.noop:DoNothing"
MM = "strategies.market_maker:MarketMaker"
REPEATS = 3
QUICK_EVENTS = 5_000


def _backtest(files: list[str], strategy: str, limit: int, repeats: int) -> dict[str, Any]:
    from procs.tools.backtest.run import BacktestOptions, backtest
    from procs.tools.replay.report import build_summary

    passes, walls = [], []
    s: dict[str, Any] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = backtest(BacktestOptions(data=files, strategy=strategy, limit_events=limit))
        s = build_summary(res)[0]
        walls.append(time.perf_counter() - t0)
        passes.append(res.wall_s)
    best = min(passes)
    return {"strategy": strategy, "events": s["events"], "seconds": round(best, 4),
            "events_per_s": round(s["events"] / best) if best > 0 else None,
            "runs_seconds": [round(p, 4) for p in passes], "wall_s": round(min(walls), 3),
            "md_messages": s["md_messages"], "orders": s["orders"], "fills": s["fills"], "net_pnl": s["net_pnl"],
            "journal_sha256": s["journal_sha256"]}


def _first_decode(files: list[str], limit: int) -> float:
    from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO
    from procs.exchange_sim.market import recorded

    t0 = time.perf_counter()
    recorded.load(files, DEFAULT_EXCHANGE_INFO, limit, use_cache=False)
    return round(time.perf_counter() - t0, 3)


def _lockstep(data: Path, limit: int) -> dict[str, Any]:
    from procs.tools.replay.report import build_summary
    from procs.tools.replay.run import ReplayOptions, replay

    s = build_summary(replay(ReplayOptions(data=[str(data)], strategy=MM, limit_events=limit)))[0]
    fast = _backtest([str(data)], MM, limit, 1)
    return {"data": data.name, "strategy": MM,
            "replay": {"events": s["events"], "seconds": s["wall_s"], "events_per_s": s["events_per_s"],
                       "orders": s["orders"], "fills": s["fills"], "journal_sha256": s["journal_sha256"]},
            "backtest": fast, "same_journal": s["journal_sha256"] == fast["journal_sha256"],
            "speedup": round(fast["events_per_s"] / s["events_per_s"], 1) if s["events_per_s"] else None}


def _peer(files: list[Path], quick: bool) -> dict[str, Any]:
    per_file, errors = [], []
    for f in files:
        r = run_peer(f, quick=quick, market_maker=True)
        (errors if "error" in r else per_file).append({"data": f.name, **r})
    out: dict[str, Any] = {"impl": "hftbacktest", "per_file": per_file, "errors": errors}
    if per_file:
        lines = sum(int(r["source_lines"]) for r in per_file)
        rows = sum(int(r["events"]) for r in per_file)
        noop_s = sum(float(r["seconds"]) for r in per_file)
        mm_s = sum(float(r.get("mm_seconds", 0.0)) for r in per_file)
        out.update(version=per_file[0]["version"], files=[r["data"] for r in per_file], frames=lines, rows=rows,
                   noop={"seconds": round(noop_s, 4), "frames_per_s": round(lines / noop_s) if noop_s else None,
                         "rows_per_s": round(rows / noop_s) if noop_s else None},
                   market_maker={"seconds": round(mm_s, 4), "frames_per_s": round(lines / mm_s) if mm_s else None,
                                 "rows_per_s": round(rows / mm_s) if mm_s else None,
                                 "orders": sum(int(r.get("mm_orders", 0)) for r in per_file),
                                 "fills": sum(int(r.get("mm_fills", 0)) for r in per_file)},
                   method=per_file[0]["method"], mm_method=per_file[0].get("mm_method"))
    return out


def run(quick: bool = False) -> dict[str, Any]:
    data_dir = Path(os.environ.get("B25_BENCH_BACKTEST_DATA", DATA_DIR))
    files = [data_dir / d for d in DAYS if (data_dir / d).is_file()]
    if not files:
        return {"bench": "backtest", "error": f"no recording found: data_dir={data_dir} days={list(DAYS)}"}
    names = [str(f) for f in files]
    limit = QUICK_EVENTS if quick else 0
    repeats = 1 if quick else REPEATS
    out: dict[str, Any] = {"bench": "backtest", "data": [f.name for f in files], "quick": quick,
                           "cpus": os.cpu_count(), "first_decode_s": _first_decode(names, limit)}
    out["b25"] = {"noop": _backtest(names, NOOP, limit, repeats), "market_maker": _backtest(names, MM, limit, repeats)}
    golden = data_dir / GOLDEN_DAY
    out["lockstep"] = _lockstep(golden, limit) if golden.is_file() else {"error": f"not found: {golden}"}
    out["peer"] = _peer(files, quick)
    peer = out["peer"]
    if "noop" in peer:
        for k in ("noop", "market_maker"):
            b, p = out["b25"][k]["events_per_s"], peer[k]["frames_per_s"]
            out["b25"][k]["vs_peer"] = round(b / p, 3) if b and p else None
    return out
