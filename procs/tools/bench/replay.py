"""``b25 bench replay``: events/s of a recording through the full pipeline, beside hftbacktest.

b25: ``b25 replay`` of hftbacktest-binance/usdm/btcusdt_20240808.gz (93,954 recorded frames,
~6 minutes of BTCUSDT) through the real processes (exchange_sim, market_data, strategy,
execution, risk on their own shm instance) with the shipped MarketMaker, twice:

* ``max``: free-running, the simulator serves frames as fast as market_data reads them;
* ``lockstep``: one frame at a time, each only after the pipeline answered the one before
  (the deterministic mode; its per-event barrier is the price of determinism).

``events_per_s`` = recorded frames served / seconds from resume to a quiescent pipeline
(frames nobody subscribes to, such as the best-quote stream here, are served too and count: every frame
is one step of the recording). ``md_messages_per_s`` counts only the frames market_data got.

peer: hftbacktest's own backtest of the same file with a strategy that does nothing
(``procs.tools.bench.replay_peer.run_peer``, its own venv): rows/s of one in-process numba engine,
an upper bound for a single-process backtester rather than a like-for-like multi-process
pipeline. Quick mode replays a 5,000-frame prefix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from procs.tools.bench.replay_peer import DATA, run_peer
from procs.tools.replay.report import build_summary
from procs.tools.replay.run import ReplayOptions, replay

STRATEGY = "strategies.market_maker:MarketMaker"
QUICK_EVENTS = 5_000


def _one(mode: str, data: Path, limit: int) -> dict[str, Any]:
    res = replay(ReplayOptions(data=[str(data)], strategy=STRATEGY, mode=mode, limit_events=limit))
    s, _ = build_summary(res)
    md = s["md_messages"]
    return {
        "mode": mode, "events": s["events"], "seconds": s["wall_s"], "events_per_s": s["events_per_s"],
        "md_messages": md, "md_messages_per_s": round(md / s["wall_s"], 1) if s["wall_s"] else 0.0,
        "orders": s["orders"], "fills": s["fills"], "net_pnl": s["net_pnl"],
        "journal_sha256": s["journal_sha256"], "latency_us": s["latency_us"], "lockstep": s["lockstep"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    data = Path(os.environ.get("B25_BENCH_REPLAY_DATA", DATA))
    limit = QUICK_EVENTS if quick else 0
    out: dict[str, Any] = {"bench": "replay", "data": data.name, "strategy": STRATEGY, "quick": quick,
                           "cpus": os.cpu_count()}
    out["max"] = _one("max", data, limit)
    out["lockstep"] = _one("lockstep", data, limit)
    out["peer"] = run_peer(data, quick=quick)
    return out
