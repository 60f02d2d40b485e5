"""``b25 bench e2e``: tick-to-order through the real processes (issue 5's benchmark).

A ``procs.tools.stack.Stack`` runs exchange_sim (generated market), market_data, strategy, execution
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
    adds execution's wake-up to the ``execution`` stage;
  * ``wire_to_wire``: the simulator wrote the depth frame -> the simulator received the order
    it caused (exact, both stamps the simulator's), with its two loopback legs
    ``frame_to_md`` (frame written -> market_data read it) and ``order_to_sim`` (execution
    wrote the request -> the simulator read it): wire_to_wire = frame_to_md + tick_to_order +
    order_to_sim, order by order.

Histogram figures are the upper bounds of log-linear buckets (<= 3.1% over the true value);
the two exact stages are numpy percentiles. Only the warm part of the run counts (histograms
are read at the start and the end of the window and subtracted).

``wire_to_wire`` is joined order by order, exactly, from data that already exists plus the
simulator's latency trace (``procs.exchange_sim.trace``, switched on for the window by
``POST /sim/trace``): an ``ORDER_SENT`` event on the ``exec`` ring carries the order's
client order id, its symbol and ``ts_md_recv``, the ``ts_recv`` of the BookUpdate that caused
the intent; that BookUpdate, read from the ``md.book`` ring as an observer, carries the
exchange's final update id ``u`` of the frame; the trace gives, per (symbol, ``u``), when the
simulator wrote that frame and, per client order id, when the order request arrived. All
stamps are CLOCK_MONOTONIC on one host. Orders whose frame or request is missing from a side
(a BookUpdate published before the window, a snapshot-caused intent, a lapped observer) are
counted under ``wire_join`` and left out, never guessed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from procs.core import messages as M
from procs.core.registry import EXEC, MD_BOOK, build_registry
from procs.exchange_sim.config import write_exchange_info
from procs.exchange_sim.trace import first_order_arrivals
from procs.tools.stack import PIPELINE, Stack, merge
from shm.counters import summary_us

BIG = 10_000_000


def _exact(ns: list[int]) -> dict[str, float]:
    if not ns:
        return {"count": 0}
    a = np.asarray(ns, dtype=np.float64) / 1000
    return {"count": len(ns), "p50_us": round(float(np.percentile(a, 50)), 1),
            "p99_us": round(float(np.percentile(a, 99)), 1), "p999_us": round(float(np.percentile(a, 99.9)), 1)}


def _sim_trace(stack: Stack, enabled: bool, clear: bool = False) -> dict[str, Any]:
    """Switch the simulator's latency trace (POST /sim/trace); its status."""
    q = f"enabled={'true' if enabled else 'false'}" + ("&clear=true" if clear else "")
    req = urllib.request.Request(f"{stack.rest_url}/sim/trace?{q}", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def join_wire(sent: list[tuple[int, str, int, int]], books: dict[tuple[int, int], int], symbols: list[str],
              trace: dict[str, Any]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Per order: frame written -> order received at the simulator, and its two loopback legs.

    ``sent``: (symbol_id, client order id, ts_md_recv, ts_sent) of ORDER_SENT events;
    ``books``: (symbol_id, ts_recv) -> update_id of the BookUpdates seen (-1 = ambiguous);
    ``trace``: the ``GET /sim/trace`` body. -> ({"wire_to_wire", "frame_to_md", "order_to_sim":
    ns per joined order}, counts of the join: joined, why the others were not, and ``noncausal``:
    joined orders whose stamps are out of causal order, which a correct join never has)."""
    frame_ns: dict[tuple[str, int], int] = {}
    for sym, u, ns in trace.get("frames", []):
        k = (sym, int(u))
        if k not in frame_ns or ns < frame_ns[k]:  # a frame sent to two sessions: the first write
            frame_ns[k] = int(ns)
    order_ns = first_order_arrivals(trace)
    out: dict[str, list[int]] = {"wire_to_wire": [], "frame_to_md": [], "order_to_sim": []}
    counts = {"orders": len(sent), "joined": 0, "no_md_trace": 0, "book_not_seen": 0, "frame_not_traced": 0,
              "order_not_traced": 0, "noncausal_frame_to_md": 0, "noncausal_order_to_sim": 0}
    for sid, cid, ts_md_recv, ts_sent in sent:
        if ts_md_recv <= 0:
            counts["no_md_trace"] += 1
            continue
        u = books.get((sid, ts_md_recv))
        if u is None or u < 0 or not 0 <= sid < len(symbols):
            counts["book_not_seen"] += 1
            continue
        t_frame = frame_ns.get((symbols[sid], u))
        if t_frame is None:
            counts["frame_not_traced"] += 1
            continue
        t_order = order_ns.get(cid)
        if t_order is None:
            counts["order_not_traced"] += 1
            continue
        counts["joined"] += 1
        # one clock, so never skew: a wrong join would show here, and so would a stamp taken on
        # the wrong side of a write (the reader on the other core can beat the writer's stamp)
        if t_frame >= ts_md_recv:
            counts["noncausal_frame_to_md"] += 1
        if ts_sent >= t_order:
            counts["noncausal_order_to_sim"] += 1
        out["wire_to_wire"].append(t_order - t_frame)
        out["frame_to_md"].append(ts_md_recv - t_frame)
        out["order_to_sim"].append(t_order - ts_sent)
    return out, counts


def _hists(stack: Stack) -> dict[str, np.ndarray]:
    return {"md": stack.counters("market_data")[1]["recv_to_publish"],
            "strategy": stack.counters("strategy")[1]["book_to_intent"],
            "execution": stack.counters("execution")[1]["intent_to_wire"],
            "wire_to_ack": stack.counters("execution")[1]["wire_to_ack"]}


def pipeline_deployment(work: Path, rate: float) -> tuple[dict[str, dict], list[dict]]:
    """(config overrides, strategies) of the measured pipeline: the generated market at ``rate``
    depth events/s, exchange and b25 rate limits lifted, one alternating Echo per symbol."""
    write_exchange_info(work / "info.json", BIG)  # b25's own limiter follows the venue's limits
    base = {
        "sim": {"exchange_info": str(work / "info.json"), "generator": {"msg_rate": rate, "seed": 7}},
        "sim_trading": {"weight_limit_1m": BIG, "order_limit_10s": BIG, "order_limit_1m": BIG},
        "risk": {"max_orders_per_s": 0},
        "strategy": {"strategies": [], "runtime": {"idle": "backoff"}},
    }
    # sizes above the exchange's 100 USDT minimum notional, so orders are accepted (and cancelled)
    qty = {"BTCUSDT": "0.002", "ETHUSDT": "0.04"}
    echo = [{"id": f"echo_{s[:3].lower()}", "class": "strategies.echo:Echo", "symbols": [s],
             "params": {"mode": "alternate", "qty": qty[s]}} for s in qty]
    return base, echo


def run(quick: bool = False, rate: float = 200.0, seconds: float | None = None, warmup_s: float = 3.0,
        overrides: dict[str, dict] | None = None, instance: str | None = None,
        procs: tuple[str, ...] = PIPELINE) -> dict[str, Any]:
    """Run the pipeline for ``seconds`` (20, quick: 5) at ``rate`` depth events/s; the figures as a dict.

    ``overrides`` ({section: {field: value}}) change the deployment for an experiment (idle
    strategies, intake mode, cpu pins); they are reported under ``settings.overrides``.
    ``instance`` names the shm instance (default: a fresh one); ``procs`` the processes started
    (``b25 bench bridge`` adds the bridge)."""
    seconds = seconds if seconds is not None else (5.0 if quick else 20.0)
    work = Path(tempfile.mkdtemp(prefix="b25-bench-e2e-"))
    base, echo = pipeline_deployment(work, rate)
    symbols = [e["symbols"][0] for e in echo]
    overrides_used = overrides or {}
    load0 = os.getloadavg()
    stack = Stack(work, procs=procs, overrides=merge(base, overrides_used), strategies=echo, instance=instance)
    try:
        stack.start()
        time.sleep(warmup_s)  # numba, connections, first snapshots and the first orders are not the figure
        # trace first, then the BookUpdates (their exchange update id u, by ts_recv), then the
        # orders: every order seen was sent after its frame was traced, and only an order caused
        # by a BookUpdate published before md_observer attached can miss its link
        _sim_trace(stack, True, clear=True)
        reg = build_registry()
        md_observer = reg.consumer(stack.instance, MD_BOOK, None, timeout=5)
        observer = reg.consumer(stack.instance, EXEC, None, timeout=5)
        h0 = _hists(stack)
        c0 = stack.counters("execution")[0]
        cpu0 = {p: psutil.Process(stack.pid(p)).cpu_times() for p in stack.procs if p != "exchange_sim"}
        cpu0["exchange_sim"] = psutil.Process(stack.popen["exchange_sim"].pid).cpu_times()
        t2o: list[int] = []
        i2w: list[int] = []
        m2i: list[int] = []
        rejects: dict[str, int] = {}
        sent_orders: list[tuple[int, str, int, int]] = []
        books: dict[tuple[int, int], int] = {}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
            _read_books(md_observer, books)
            batch = observer.poll()
            sent = batch[batch["kind"] == M.ORDER_SENT]
            sent_orders.extend(zip(sent["symbol_id"].tolist(), [c.decode() for c in sent["client_order_id"].tolist()],
                                   sent["ts_md_recv"].tolist(), sent["ts_sent"].tolist(), strict=True))
            t2o.extend((sent["ts_sent"] - sent["ts_md_recv"])[sent["ts_md_recv"] > 0].tolist())
            i2w.extend((sent["ts_sent"] - sent["ts_intent"]).tolist())
            m2i.extend((sent["ts_intent"] - sent["ts_md_recv"])[sent["ts_md_recv"] > 0].tolist())
            for r in batch[batch["kind"] == M.ORDER_REJECTED]["reason"].tolist():
                rejects[str(r)] = rejects.get(str(r), 0) + 1
            observer.commit()
        h1 = _hists(stack)
        c1 = stack.counters("execution")[0]
        # the orders sent in the window reach the simulator (and their BookUpdates the ring) after it
        time.sleep(0.2)
        _read_books(md_observer, books)
        trace = stack.sim_get("/sim/trace")
        _sim_trace(stack, False, clear=True)
        symbols_deployed = stack.symbols
        cpu = {}
        for p, t in cpu0.items():
            pid = stack.popen["exchange_sim"].pid if p == "exchange_sim" else stack.pid(p)
            t1 = psutil.Process(pid).cpu_times()
            cpu[p] = round((t1.user + t1.system - t.user - t.system) / seconds * 100, 1)
        lost = observer.lost
        md_lost = md_observer.lost
        observer.close()
        md_observer.close()
    finally:
        codes = stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    stages = {k: summary_us(h1[k] - h0[k]) for k in h0}
    stages["tick_to_order"] = _exact(t2o)
    stages["md_to_intent"] = _exact(m2i)
    stages["intent_to_wire"] = _exact(i2w)
    wire, wire_join = join_wire(sent_orders, books, symbols_deployed, trace)
    for k, v in wire.items():
        stages[k] = _exact(v)
    d = {k: c1.get(k, 0) - c0.get(k, 0) for k in ("intents", "orders_sent", "denied", "cancels_sent",
                                                  "accepted", "rejected", "rate_limited", "throttled")}
    return {
        "stages": stages,
        "orders": d["orders_sent"],
        "execution_counts": d,
        "reject_codes": rejects,
        "observer_lost": int(lost),
        "md_observer_lost": int(md_lost),
        "wire_join": wire_join,
        "settings": {"rate_events_per_s": rate, "seconds": seconds, "warmup_s": warmup_s, "symbols": symbols,
                     "strategy": "strategies.echo:Echo (alternate)", "idle": "backoff",
                     "overrides": overrides_used, "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
                     "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "cpu_percent": cpu,
        "exit_codes": codes,
        "targets": {"tick_to_order_p50_us": 60, "tick_to_order_p99_us": 300},
    }


def _read_books(consumer: Any, books: dict[tuple[int, int], int]) -> None:
    """Drain the md.book observer into (symbol_id, ts_recv) -> update_id (diffs only: a
    snapshot-caused BookUpdate has no frame of its own; -1 marks a key seen twice)."""
    while True:
        batch = consumer.poll()
        if not len(batch):
            return
        diffs = batch[batch["flags"] == 0]
        for sid, ts, u in zip(diffs["symbol_id"].tolist(), diffs["ts_recv"].tolist(), diffs["update_id"].tolist(),
                              strict=True):
            k = (sid, ts)
            books[k] = -1 if k in books else u
        consumer.commit()


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
