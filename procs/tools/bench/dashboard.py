"""``b25 bench dashboard [--clients 100] [--seconds 60] [--json]``: the monitor's ``/ws`` feed under
many dashboard clients, and what they cost the trading pipeline.

One ``Stack`` runs the e2e pipeline (``procs.tools.bench.e2e.pipeline_deployment``: the generated
market at 200 depth events/s, an alternating Echo per symbol) plus the monitor. In the same run:

1. ``without_clients``: ``seconds`` of the pipeline alone;
2. ``with_clients``: ``seconds`` with ``clients`` WebSocket clients (spread over one process per
   CPU, ``procs.tools.bench.dashboard_clients``), each subscribed like a dashboard.

Per phase: e2e tick_to_order (frame received -> request written, exact, from the ``ORDER_SENT``
events on ``exec`` read as an observer), the monitor's CPU% over the first and last 5 s and its
RSS at the start and the end. From the clients: messages/s and the delay from the shm update
(the book's or trade's ``ts_pub``) to the client's receive, p50/p99. Goal: p99 < 50 ms with 100
clients, flat RSS, tick_to_order unchanged within noise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from procs.core import messages as M
from procs.core.registry import EXEC, build_registry
from procs.core.services import PIPELINE
from procs.tools.bench.dashboard_clients import combine
from procs.tools.bench.e2e import _exact, pipeline_deployment
from procs.tools.stack import ROOT, Stack

WINDOW_S = 5.0  # CPU% is taken over the first and the last this many seconds of a phase


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def _phase(observer: Any, monitor: psutil.Process, seconds: float) -> dict[str, Any]:
    """Collect tick_to_order from the exec observer for ``seconds``; the monitor's CPU/RSS at both ends."""
    t2o: list[int] = []
    start = time.monotonic()
    end = start + seconds
    rss0 = monitor.memory_info().rss
    cpu_marks = {"start": (start, _cpu_s(monitor))}
    first_window: float | None = None
    last_window_from: tuple[float, float] | None = None
    while time.monotonic() < end:
        time.sleep(0.05)
        now = time.monotonic()
        if first_window is None and now - start >= WINDOW_S:
            first_window = (_cpu_s(monitor) - cpu_marks["start"][1]) / (now - start) * 100
        if last_window_from is None and end - now <= WINDOW_S:
            last_window_from = (now, _cpu_s(monitor))
        batch = observer.poll()
        sent = batch[batch["kind"] == M.ORDER_SENT]
        t2o.extend((sent["ts_sent"] - sent["ts_md_recv"])[sent["ts_md_recv"] > 0].tolist())
        observer.commit()
    now = time.monotonic()
    last = None
    if last_window_from is not None:
        last = (_cpu_s(monitor) - last_window_from[1]) / max(1e-3, now - last_window_from[0]) * 100
    return {"tick_to_order": _exact(t2o),
            "monitor": {"cpu_percent_start": round(first_window or 0.0, 1), "cpu_percent_end": round(last or 0.0, 1),
                        "cpu_percent_mean": round((_cpu_s(monitor) - cpu_marks["start"][1]) / (now - start) * 100, 1),
                        "rss_mb_start": round(rss0 / 2**20, 1), "rss_mb_end": round(monitor.memory_info().rss / 2**20, 1)}}


def run(quick: bool = False, clients: int = 100, seconds: float | None = None, rate: float = 200.0,
        warmup_s: float = 3.0) -> dict[str, Any]:
    seconds = seconds if seconds is not None else (10.0 if quick else 60.0)
    work = Path(tempfile.mkdtemp(prefix="b25-bench-dashboard-"))
    base, echo = pipeline_deployment(work, rate)
    load0 = os.getloadavg()
    stack = Stack(work, procs=(*PIPELINE, "monitor"), overrides=base, strategies=echo)
    procs: list[subprocess.Popen] = []
    try:
        stack.start()
        time.sleep(warmup_s)
        observer = build_registry().consumer(stack.instance, EXEC, None, timeout=5)
        observer.poll()
        observer.commit()
        monitor = psutil.Process(stack.pid("monitor"))
        without = _phase(observer, monitor, seconds)
        n = max(1, min(os.cpu_count() or 1, clients))
        for i in range(n):
            share = clients // n + (1 if i < clients % n else 0)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "procs.tools.bench.dashboard_clients", "--url",
                 f"ws://127.0.0.1:{stack.monitor_port}/ws", "--clients", str(share), "--seconds", str(seconds)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env=dict(os.environ, PYTHONPATH=str(ROOT))))
        for p in procs:  # every client connected and subscribed before the clock starts
            line = p.stdout.readline() if p.stdout else ""
            if line.strip() != "ready":
                raise RuntimeError(f"dashboard clients did not get ready (rc={p.poll()}): {line!r}")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        observer.poll()
        observer.commit()
        with_clients = _phase(observer, monitor, seconds)
        feed = combine([json.loads(p.communicate(timeout=seconds + 60)[0]) for p in procs])
        observer.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        codes = stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "clients": feed,
        "without_clients": without,
        "with_clients": with_clients,
        "targets": {"delay_p99_ms": 50, "rss": "flat", "tick_to_order": "unchanged within noise"},
        "settings": {"clients": clients, "seconds": seconds, "rate_events_per_s": rate,
                     "subscriptions_per_client": "book BTCUSDT depth 10 @10 Hz, trades BTCUSDT @10 Hz, "
                                                 "positions @4 Hz, risk @4 Hz, alerts",
                     "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
                     "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "exit_codes": codes,
    }
