"""``b25 bench e2e``: tick-to-order through the real processes (issue 5's benchmark).

A ``procs.stack.Stack`` runs exchange_sim (generated market), market_data, strategy, execution
and risk with the default idle strategy (``backoff``) and one ``strategies.echo:Echo`` per
symbol, which answers every book update with an intent (alternately a far-from-touch limit
order and its cancel). Exchange and b25 order-rate limits are lifted so the pipeline, not a
quota, is measured. After a warm-up the run measures, per stage:

  * ``md``: frame received -> BookUpdate published (market_data's ``recv_to_publish`` histogram);
  * ``strategy``: BookUpdate published -> intent written (the strategy's ``book_to_intent``);
  * ``execution``: intent read -> request written to the socket (execution's ``intent_to_wire``);
  * ``tick_to_order``: frame received -> request written, exact, from the ``ORDER_SENT``
    events on the ``exec`` ring (``ts_sent - ts_md_recv``, read as an observer);
  * ``wire_to_ack``: request written -> the exchange's answer read (execution's histogram; not
    part of tick-to-order: the simulator's work and two loopback hops);
  * ``md_to_intent``: frame received -> intent written (``ts_intent - ts_md_recv``, exact);
  * ``intent_to_wire``: intent written -> request written (``ts_sent - ts_intent``, exact), which
    adds execution's wake-up to the ``execution`` stage.

Histogram figures are the upper bounds of log-linear buckets (<= 12.5% over the true value);
the two exact stages are numpy percentiles. Only the warm part of the run counts (histograms
are read at the start and the end of the window and subtracted).

``wire_to_wire`` (simulator sent the depth frame -> simulator received the order) is not
reported: the simulator timestamps neither the frames it sends nor the orders it receives
(its order log has only the market clock in ms), so there is nothing honest to compute it from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from procs.core import messages as M
from procs.core.registry import EXEC, build_registry
from procs.sim.config import DEFAULT_EXCHANGE_INFO
from procs.stack import Stack, merge
from shm.counters import summary_us

BIG = 10_000_000


def _exact(ns: list[int]) -> dict[str, float]:
    if not ns:
        return {"count": 0}
    a = np.asarray(ns, dtype=np.float64) / 1000
    return {"count": len(ns), "p50_us": round(float(np.percentile(a, 50)), 1),
            "p99_us": round(float(np.percentile(a, 99)), 1), "p999_us": round(float(np.percentile(a, 99.9)), 1)}


def _hists(stack: Stack) -> dict[str, np.ndarray]:
    return {"md": stack.counters("market_data")[1]["recv_to_publish"],
            "strategy": stack.counters("strategy")[1]["book_to_intent"],
            "execution": stack.counters("execution")[1]["intent_to_wire"],
            "wire_to_ack": stack.counters("execution")[1]["wire_to_ack"]}


def run(quick: bool = False, rate: float = 200.0, seconds: float | None = None, warmup_s: float = 3.0,
        overrides: dict[str, dict] | None = None) -> dict[str, Any]:
    """Run the pipeline for ``seconds`` (20, quick: 5) at ``rate`` depth events/s; the figures as a dict.

    ``overrides`` ({section: {field: value}}) change the deployment for an experiment (idle
    strategies, intake mode, cpu pins); they are reported under ``settings.overrides``."""
    seconds = seconds if seconds is not None else (5.0 if quick else 20.0)
    work = Path(tempfile.mkdtemp(prefix="b25-bench-e2e-"))
    info = json.loads(Path(DEFAULT_EXCHANGE_INFO).read_text())
    for rl in info.get("rateLimits", []):
        rl["limit"] = BIG  # b25's own limiter follows exchangeInfo
    (work / "info.json").write_text(json.dumps(info))
    symbols = ["BTCUSDT", "ETHUSDT"]
    base = {
        "sim": {"exchange_info": str(work / "info.json"), "generator": {"msg_rate": rate, "seed": 7}},
        "sim_trading": {"weight_limit_1m": BIG, "order_limit_10s": BIG, "order_limit_1m": BIG},
        "risk": {"max_orders_per_s": 0},
        "strategy": {"strategies": [], "idle": "backoff"},
    }
    overrides_used = overrides or {}
    # sizes above the exchange's 100 USDT minimum notional, so orders are accepted (and cancelled)
    qty = {"BTCUSDT": "0.002", "ETHUSDT": "0.04"}
    echo = [{"id": f"echo_{s[:3].lower()}", "class": "strategies.echo:Echo", "symbols": [s],
             "params": {"mode": "alternate", "qty": qty[s]}} for s in symbols]
    load0 = os.getloadavg()
    stack = Stack(work, overrides=merge(base, overrides_used), strategies=echo)
    try:
        stack.start()
        time.sleep(warmup_s)  # numba, connections, first snapshots and the first orders are not the figure
        observer = build_registry().consumer(stack.instance, EXEC, None, timeout=5)
        h0 = _hists(stack)
        c0 = stack.counters("execution")[0]
        cpu0 = {p: psutil.Process(stack.pid(p)).cpu_times() for p in stack.procs if p != "exchange_sim"}
        cpu0["exchange_sim"] = psutil.Process(stack.popen["exchange_sim"].pid).cpu_times()
        t2o: list[int] = []
        i2w: list[int] = []
        m2i: list[int] = []
        rejects: dict[str, int] = {}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
            batch = observer.poll()
            sent = batch[batch["kind"] == M.ORDER_SENT]
            t2o.extend((sent["ts_sent"] - sent["ts_md_recv"])[sent["ts_md_recv"] > 0].tolist())
            i2w.extend((sent["ts_sent"] - sent["ts_intent"]).tolist())
            m2i.extend((sent["ts_intent"] - sent["ts_md_recv"])[sent["ts_md_recv"] > 0].tolist())
            for r in batch[batch["kind"] == M.ORDER_REJECTED]["reason"].tolist():
                rejects[str(r)] = rejects.get(str(r), 0) + 1
            observer.commit()
        h1 = _hists(stack)
        c1 = stack.counters("execution")[0]
        cpu = {}
        for p, t in cpu0.items():
            pid = stack.popen["exchange_sim"].pid if p == "exchange_sim" else stack.pid(p)
            t1 = psutil.Process(pid).cpu_times()
            cpu[p] = round((t1.user + t1.system - t.user - t.system) / seconds * 100, 1)
        lost = observer.lost
        observer.close()
    finally:
        codes = stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    stages = {k: summary_us(h1[k] - h0[k]) for k in h0}
    stages["tick_to_order"] = _exact(t2o)
    stages["md_to_intent"] = _exact(m2i)
    stages["intent_to_wire"] = _exact(i2w)
    d = {k: c1.get(k, 0) - c0.get(k, 0) for k in ("intents", "orders_sent", "denied", "cancels_sent",
                                                  "accepted", "rejected", "rate_limited", "throttled")}
    return {
        "stages": stages,
        "orders": d["orders_sent"],
        "execution_counts": d,
        "reject_codes": rejects,
        "observer_lost": int(lost),
        "settings": {"rate_events_per_s": rate, "seconds": seconds, "warmup_s": warmup_s, "symbols": symbols,
                     "strategy": "strategies.echo:Echo (alternate)", "idle": "backoff",
                     "overrides": overrides_used, "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
                     "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "cpu_percent": cpu,
        "exit_codes": codes,
        "targets": {"tick_to_order_p50_us": 60, "tick_to_order_p99_us": 300},
        "not_measured": {"wire_to_wire": "the simulator does not timestamp sent frames or received orders"},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
