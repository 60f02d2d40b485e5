"""The live half of ``b25 bench book``: exchange_sim -> market_data over a real WebSocket on
this machine; market_data's own recv->publish histogram (frame received -> BookUpdate
published, the hot path of the live book) read from shared memory at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from shm.counters import read_counters, summary_us
from shm.inspect import clean
from shm.segment import open_raw

ROOT = Path(__file__).resolve().parents[3]


def _start_sim(rate: float, symbols: str) -> tuple[subprocess.Popen, int, int]:
    p = subprocess.Popen([sys.executable, "-m", "procs.exchange_sim", "--port", "0", "--ws-port", "0",
                          "--rate", str(rate), "--symbols", symbols], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line and p.poll() is not None:
            raise RuntimeError(f"exchange_sim exited rc={p.returncode}")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("event") == "listening":
            # keep draining stderr so a full pipe never stalls the simulator
            import threading
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, int(rec["rest_port"]), int(rec["ws_port"])
    p.kill()
    raise RuntimeError("exchange_sim did not report its ports")


def deployed(key: str, default: Any) -> Any:
    """market_data's ``key`` in the shipped b25.toml (``runtime.sched`` for its runtime table's):
    the bench measures the deployed setting."""
    import tomllib

    with open(ROOT / "b25.toml", "rb") as f:
        table = tomllib.load(f).get("market_data", {})
    for part in key.split(".")[:-1]:
        table = table.get(part, {})
    return table.get(key.rsplit(".", 1)[-1], default)


def deployed_sched() -> str:
    return str(deployed("runtime.sched", ""))


def _wait_publishing(instance: str, md: subprocess.Popen, min_samples: int, timeout: float = 60.0) -> Any:
    """market_data's counters segment once it has published ``min_samples`` books, or why not.

    On a fresh checkout the first start compiles and caches the book kernels; a fixed sleep
    would put that start-up inside the measured window, so the window waits for the books."""
    seg = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if md.poll() is not None:
            return f"market_data exited with status {md.returncode} before publishing"
        if seg is None:
            seg = open_raw(f"/b25.{instance}.counters.market_data")
        if seg is not None and int(read_counters(seg)[1]["recv_to_publish"].sum()) >= min_samples:
            return seg
        time.sleep(0.1)
    if seg is not None:
        seg.close()
        return f"market_data published fewer than {min_samples} books in {timeout:.0f} s"
    return f"market_data wrote no counters in {timeout:.0f} s"


def run_live(seconds: float = 10.0, rate: float = 1000.0, quick: bool = False,
             sched: str | None = None, cpu_latency_us: int | None = None) -> dict[str, Any]:
    """Run the pair for ``seconds`` at ``rate`` depth events/s; p50/p99 recv->publish in us.

    ``sched``, ``cpu_latency_us``: market_data's settings (default: b25.toml's)."""
    if quick:
        seconds = 3.0
    sched = deployed_sched() if sched is None else sched
    cpu_latency_us = int(deployed("cpu_latency_us", -1)) if cpu_latency_us is None else cpu_latency_us
    instance = f"bbl{uuid.uuid4().hex[:6]}"
    sim = md = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            sim, rest, ws = _start_sim(rate, "BTCUSDT,ETHUSDT")
            cfg = Path(tmp) / "b25.toml"
            from procs.tools.stack import dumps_toml
            from procs.venue.adapters import venue_at

            cfg.write_text(dumps_toml({
                "venue": venue_at(f"http://127.0.0.1:{rest}", f"ws://127.0.0.1:{ws}"),
                "deploy": {"symbols": ["BTCUSDT", "ETHUSDT"]},
                "market_data": {"runtime": {"sched": sched}, "cpu_latency_us": cpu_latency_us}}))
            md = subprocess.Popen([sys.executable, "-m", "procs.market_data", "--config", str(cfg),
                                   "--instance", instance], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            seg = _wait_publishing(instance, md, min_samples=int(rate))
            if isinstance(seg, str):
                return {"error": seg}
            time.sleep(1.0)  # connect, snapshot, first-call and cache warm-up: not measured
            before = read_counters(seg)[1]["recv_to_publish"]
            time.sleep(seconds)
            counters, hists = read_counters(seg)
            seg.close()
            s = summary_us(hists["recv_to_publish"] - before)
            return {"recv_to_publish_p50_us": s["p50_us"], "recv_to_publish_p99_us": s["p99_us"],
                    "recv_to_publish_p999_us": s["p999_us"], "samples": s["count"], "rate": rate, "sched": sched,
                    "cpu_latency_us": cpu_latency_us,
                    "seconds": seconds, "messages": counters.get("messages", 0),
                    "gaps": counters.get("gaps", 0), "load_avg_1m": round(os.getloadavg()[0], 2)}
        finally:
            for p in (md, sim):
                if p is not None and p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
            clean(instance, force=True)
