"""``b25 bench exec``: the order path through a real execution process and a real exchange_sim.

Figures (execution's own shm histograms, log-linear buckets, upper bounds):
  * ``intent_to_wire``: intent read from ``orders.strategy`` -> request written to the WS API
    socket (the pre-trade check, client id, journal append, signing and the write);
  * ``wire_to_ack``: request written -> the exchange's answer received (the simulator's work
    and two loopback hops);
  * ``publish_to_wire``: the strategy's ring write (``ts_intent``) -> request written, which adds
    the wake-up of execution: measured for every intake mode (``fd``, the default: the loop
    waits on the ring's wake-up FIFO and polls ~150 us after each wake-up or intent;
    ``thread``: a thread parked on the ring's semaphore wakes the loop; ``poll``: the loop
    polls, then sleeps ~1 ms; ``poll-spin``: the loop never sleeps), with the process's CPU
    use idle and under the paced load. The top-level figures are the default mode's;
  * ``orders_per_s_no_429``: orders acknowledged per second in a burst with zero 429 answers
    (exchange order limits raised so the pipeline, not the venue's quota, is measured);
  * ``modify_to_ack_p50_us``: an amend of a resting order journaled (ORDER_MODIFY_SENT, just
    before its WS API order.modify is written) -> the venue's answer applied (ORDER_MODIFIED);
  * ``batch_cancel_10_ms``: a CANCEL_ALL intent written -> the last of 10 resting orders of one
    symbol canceled (one REST batch request); beside it ``single_cancel_10_ms`` (10 CANCEL_ORDER
    intents, 10 WS API cancels) and the request weight each spent, as the venue counted it
    (``peers.used_weight``; the dead-man switch off, so nothing else spends weight).
Peer baseline: a bare signed WebSocket API client (aiohttp, one request at a time) against the
same simulator gives ``wire_to_ack`` with no b25 in the path; its burst rate is the venue's limit;
its order.modify round trip and REST batch cancel of 10 stand beside b25's amend and batch.
Latency runs are paced (one intent every ``gap_ms``), IOC orders below the bid (they expire
at once, so no open-order limit is reached).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from procs.core import messages as M
from procs.core.registry import EXEC, ORDERS_STRATEGY, build_registry
from procs.exchange_sim.config import write_exchange_info
from procs.tools.stack import dumps_toml
from procs.venue.adapters import venue_at
from procs.venue.binance.peers import bare_amend_and_batch, bare_ws_client, used_weight
from procs.venue.binance.signing import TEST_ACCOUNT
from shm import layout as L
from shm.counters import read_counters, summary_us
from shm.segment import Segment

ROOT = Path(__file__).resolve().parents[3]


def _pctl(ns: list[int]) -> dict[str, float]:
    if not ns:
        return {"count": 0}
    a = np.asarray(ns, dtype=np.float64) / 1000
    return {"count": len(ns), "p50_us": round(float(np.percentile(a, 50)), 1),
            "p99_us": round(float(np.percentile(a, 99)), 1), "p999_us": round(float(np.percentile(a, 99.9)), 1)}


class _Tail:
    def __init__(self, stream: Any) -> None:
        self.lines: list[dict] = []
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def wait(self, event: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.lines:
                if r.get("event") == event:
                    return r
            time.sleep(0.01)
        raise RuntimeError(f"process did not log {event!r} in {timeout}s")


def _spawn(args: list[str]) -> tuple[subprocess.Popen, _Tail]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    return p, _Tail(p.stderr)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _mid(rest: str) -> int:
    with urllib.request.urlopen(f"{rest}/sim/book?symbol=BTCUSDT&limit=5", timeout=5) as r:  # the true book
        d = json.loads(r.read())
    return (round(float(d["bids"][0][0]) * 100) + round(float(d["asks"][0][0]) * 100)) // 2


class _Strategy:
    """The strategy's side: writes intents, drains ``exec`` as both of its named consumers."""

    def __init__(self, instance: str) -> None:
        reg = build_registry()
        self.intents = reg.producer(instance, ORDERS_STRATEGY)
        self.reg = reg
        self.instance = instance
        self.cons: list[Any] = []
        self.n = 0
        self.backlog: list[Any] = []  # events read and not yet waited for (``wait``)

    def attach(self) -> None:
        if not self.cons:
            self.cons = [self.reg.consumer(self.instance, EXEC, c, timeout=20) for c in ("strategy", "risk")]

    def submit(self, price: int, kind: int = M.SUBMIT_ORDER, tif: int = M.IOC, tag: int = 0, qty: int = 1) -> int:
        """Write one intent (a SUBMIT's tag is its intent number); its tag and write time."""
        self.n += 1
        tag = tag or self.n
        vals = (self.n, kind, M.SOURCE_STRATEGY, 1, 0, M.BUY, M.LIMIT, tif, price, qty, 0, tag, 0, 0,
                time.monotonic_ns(), 0, 0, 0)
        while not self.intents.try_publish(*vals):
            time.sleep(0.0001)
        return tag

    def events(self) -> list[Any]:
        """Every event since the last call, as records (both consumers committed)."""
        b = self.cons[0].poll()
        out = [r.copy() for r in b]
        self.cons[0].commit()
        self.cons[1].poll()
        self.cons[1].commit()
        return out

    def wait(self, tags: set[int], kinds: tuple[int, ...], timeout_s: float = 20.0) -> dict[int, Any]:
        """The first event of each tag among ``kinds``; RuntimeError naming what is missing."""
        got: dict[int, Any] = {}
        deadline = time.monotonic() + timeout_s
        while len(got) < len(tags):
            self.backlog += self.events()
            left = []
            for r in self.backlog:  # events waited for later stay (an answer can share a batch with its request's)
                t = int(r["client_tag"])
                if t in tags and t not in got and int(r["kind"]) in kinds:
                    got[t] = r
                else:
                    left.append(r)
            self.backlog = left[-10_000:]
            if len(got) == len(tags):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {[M.EVENT_NAMES[k] for k in kinds]} for tags {sorted(tags - set(got))}")
            time.sleep(0.0002)
        return got

    def drain(self) -> list[tuple]:
        b = self.cons[0].poll()
        out = [(int(r["kind"]), int(r["ts_intent"]), int(r["ts_sent"]), int(r["ts_recv"])) for r in b]
        self.cons[0].commit()
        self.cons[1].poll()
        self.cons[1].commit()
        return out

    def close(self) -> None:
        self.intents.close()
        for c in self.cons:
            c.close()


def _hists(instance: str) -> dict[str, np.ndarray]:
    seg = Segment.attach(instance, "counters.execution", L.KIND_COUNTERS, None, timeout=5)
    try:
        c, h = read_counters(seg)
        h["_counters"] = c  # type: ignore[assignment]
        return h
    finally:
        seg.close()


def _amend_batch(strat: _Strategy, rest: str, price: int, n_amend: int, rounds: int) -> dict[str, Any]:
    """Amends of one resting order, then cancels of 10 resting orders batched and singly."""
    tag = strat.submit(price, tif=M.GTC)
    strat.wait({tag}, (M.ORDER_ACCEPTED,))
    modify: list[int] = []
    for i in range(n_amend):
        strat.submit(price + 1 + i % 2, M.MODIFY_ORDER, tag=tag, qty=0)
        sent = strat.wait({tag}, (M.ORDER_MODIFY_SENT,))[tag]
        done = strat.wait({tag}, (M.ORDER_MODIFIED, M.ORDER_MODIFY_REJECTED))[tag]
        if int(done["kind"]) != M.ORDER_MODIFIED:
            raise RuntimeError(f"amend refused: reason={M.REASON_NAMES.get(int(done['reason']))}")
        modify.append(int(done["ts_recv"]) - int(sent["ts_recv"]))
    strat.submit(0, M.CANCEL_ORDER, tag=tag)
    strat.wait({tag}, (M.ORDER_CANCELED,))
    out: dict[str, Any] = {"modify_to_ack": _pctl(modify)}
    for how in ("batch", "single"):
        ms: list[float] = []
        weight: list[int] = []
        for _ in range(rounds):
            tags = {strat.submit(price - k, tif=M.GTC) for k in range(10)}
            strat.wait(tags, (M.ORDER_ACCEPTED,))
            w0 = used_weight(rest, *TEST_ACCOUNT)
            t0 = time.monotonic_ns()
            if how == "batch":
                strat.submit(0, M.CANCEL_ALL, tag=-1)
            else:
                for t in tags:
                    strat.submit(0, M.CANCEL_ORDER, tag=t)
            done = strat.wait(tags, (M.ORDER_CANCELED,))
            ms.append((max(int(r["ts_recv"]) for r in done.values()) - t0) / 1e6)
            weight.append(used_weight(rest, *TEST_ACCOUNT) - w0 - 1)  # less the asking's own weight
        out[f"{how}_cancel_10"] = {"p50_ms": round(float(np.percentile(ms, 50)), 2),
                                   "p99_ms": round(float(np.percentile(ms, 99)), 2), "rounds": rounds,
                                   "weight": int(np.median(weight))}
    return out


def _run_mode(instance: str, cfg: Path, strat: _Strategy, mode: str, rest: str, n_lat: int, gap_ms: float,
              n_burst: int, n_amend: int = 0, rounds: int = 0) -> dict[str, Any]:
    intent_wait, _, idle = mode.partition("-")
    import tomllib

    from procs.tools.stack import dumps_toml

    doc = tomllib.loads(cfg.read_text())
    doc["execution"]["intent_wait"] = intent_wait
    doc["execution"]["runtime"] = {"idle": idle or "backoff"}
    mcfg = cfg.with_name(f"b25-{mode}.toml")
    mcfg.write_text(dumps_toml(doc))
    p, tail = _spawn(["-m", "procs.execution", "--config", str(mcfg), "--instance", instance])
    try:
        tail.wait("execution_started")
        strat.attach()
        proc = psutil.Process(p.pid)
        time.sleep(0.5)
        c0 = proc.cpu_times()
        t0 = time.monotonic()
        time.sleep(2.0)
        idle_cpu = (sum(proc.cpu_times()[:2]) - sum(c0[:2])) / (time.monotonic() - t0) * 100
        price = _mid(rest) - 200_000
        h0 = _hists(instance)
        pub_to_wire: list[int] = []
        done = 0
        c0 = proc.cpu_times()
        t0 = time.monotonic()
        for i in range(n_lat):
            strat.submit(price - i % 100)
            deadline = time.monotonic() + gap_ms / 1000
            while time.monotonic() < deadline:
                for kind, ts_intent, ts_sent, _ in strat.drain():
                    if kind == M.ORDER_SENT:
                        pub_to_wire.append(ts_sent - ts_intent)
                    elif kind in (M.ORDER_EXPIRED, M.ORDER_REJECTED, M.ORDER_DENIED, M.ORDER_FILLED):
                        done += 1
                time.sleep(0.0002)
        while done < n_lat:
            for kind, ts_intent, ts_sent, _ in strat.drain():
                if kind == M.ORDER_SENT:
                    pub_to_wire.append(ts_sent - ts_intent)
                elif kind in (M.ORDER_EXPIRED, M.ORDER_REJECTED, M.ORDER_DENIED, M.ORDER_FILLED):
                    done += 1
            time.sleep(0.001)
        busy_cpu = (sum(proc.cpu_times()[:2]) - sum(c0[:2])) / (time.monotonic() - t0) * 100
        h1 = _hists(instance)
        out: dict[str, Any] = {
            "intent_to_wire": summary_us(h1["intent_to_wire"] - h0["intent_to_wire"]),
            "wire_to_ack": summary_us(h1["wire_to_ack"] - h0["wire_to_ack"]),
            "publish_to_wire": _pctl(pub_to_wire),
            "idle_cpu_pct": round(idle_cpu, 1),
            "paced_cpu_pct": round(busy_cpu, 1),
        }
        if n_amend:
            out["amend_batch"] = _amend_batch(strat, rest, price, n_amend, rounds)
        if n_burst:
            time.sleep(0.2)
            strat.drain()
            t0 = time.monotonic()
            done = 0
            sent = 0
            while done < n_burst:
                while sent < n_burst and strat.intents.remaining() > 0 and sent - done < 2000:
                    strat.submit(price - sent % 100)
                    sent += 1
                for kind, *_ in strat.drain():
                    if kind in (M.ORDER_EXPIRED, M.ORDER_REJECTED, M.ORDER_DENIED, M.ORDER_FILLED):
                        done += 1
                if time.monotonic() - t0 > 120:
                    raise RuntimeError(f"burst stalled: done={done} of {n_burst}")
            dt = time.monotonic() - t0
            c = _hists(instance)["_counters"]
            out["orders_per_s_no_429"] = round(n_burst / dt, 1) if c["rate_limited"] == 0 else 0.0  # type: ignore[index]
            out["burst"] = {"orders": n_burst, "seconds": round(dt, 3), "rate_limited_429s": c["rate_limited"],  # type: ignore[index]
                            "throttled_by_limiter": c["throttled"], "rejected": c["rejected"]}  # type: ignore[index]
        return out
    finally:
        _stop(p)


def _baseline(ws_api_url: str, price_text: str, n: int, gap_ms: float, n_burst: int) -> dict[str, Any]:
    """A bare signed WS API client, one request in flight at a time (no b25 in the path)."""
    rtts, rate = asyncio.run(bare_ws_client(ws_api_url, *TEST_ACCOUNT, "BTCUSDT", "0.001", price_text, n, gap_ms,
                                            n_burst))
    return {"wire_to_ack": _pctl(rtts), "orders_per_s_one_in_flight": round(rate, 1)}


def run(quick: bool = False) -> dict[str, Any]:
    n_lat, gap_ms, n_burst = (150, 3.0, 400) if quick else (1500, 3.0, 5000)
    n_amend, rounds = (100, 10) if quick else (1000, 50)
    tmp = Path(tempfile.mkdtemp(prefix="b25-bench-exec-"))
    instance = f"bx{os.getpid()}"
    big = 10_000_000
    write_exchange_info(tmp / "info.json", big)
    sim_cfg = tmp / "sim.toml"
    sim_cfg.write_text(f'[sim]\nrest_port = 0\nws_port = 0\nexchange_info = "{tmp / "info.json"}"\n'
                       f'[sim.generator]\nmsg_rate = 20.0\n'
                       f"[sim_trading]\nweight_limit_1m = {big}\norder_limit_10s = {big}\norder_limit_1m = {big}\n")
    sim, stail = _spawn(["-m", "procs.exchange_sim", "--config", str(sim_cfg)])
    strat = None
    try:
        rec = stail.wait("listening")
        rest = f"http://127.0.0.1:{rec['rest_port']}"
        ws = f"ws://127.0.0.1:{rec['ws_port']}"
        cfg = tmp / "b25.toml"
        venue = venue_at(rest, ws)
        cfg.write_text(dumps_toml({  # execution alone
            "venue": venue, "deploy": {"symbols": ["BTCUSDT", "ETHUSDT"]},
            "execution": {"journal": str(tmp / "exec.journal"), "fsync": "batch", "intent_wait": "thread",
                          "risk_required": False, "dead_man_s": 0.0}}))
        strat = _Strategy(instance)
        modes = {}
        for mode in ("fd", "thread", "poll", "poll-spin"):  # fd: execution's default intake
            fd = mode == "fd"
            modes[mode] = _run_mode(instance, cfg, strat, mode, rest, n_lat, gap_ms, n_burst if fd else 0,
                                    n_amend if fd else 0, rounds)
        price_text = f"{(_mid(rest) - 200_000) / 100:.2f}"
        base = _baseline(venue["ws_api_url"], price_text, n_lat, gap_ms, n_burst)
        base.update(asyncio.run(bare_amend_and_batch(venue["ws_api_url"], rest, *TEST_ACCOUNT, "BTCUSDT", "0.001",
                                                     _mid(rest) - 200_000, n_amend, rounds)))
        t = modes["fd"]
        ab = t["amend_batch"]
        return {
            "intent_to_wire": t["intent_to_wire"], "wire_to_ack": t["wire_to_ack"],
            "orders_per_s_no_429": t["orders_per_s_no_429"], "burst": t["burst"],
            "modify_to_ack_p50_us": ab["modify_to_ack"]["p50_us"],
            "batch_cancel_10_ms": ab["batch_cancel_10"]["p50_ms"],
            "single_cancel_10_ms": ab["single_cancel_10"]["p50_ms"],
            "cancel_10_weight": {"batch": ab["batch_cancel_10"]["weight"], "single": ab["single_cancel_10"]["weight"]},
            "amend_batch": ab,
            "modes": modes, "baseline_bare_ws_client": base,
            "setup": {"paced_intents": n_lat, "gap_ms": gap_ms, "burst_orders": n_burst, "cpus": os.cpu_count(),
                      "note": "exchange order limits raised; at the exchange's 1200 orders/min the venue caps at 20/s"},
        }
    finally:
        if strat is not None:
            strat.close()
        _stop(sim)
        from procs.core.control import unlink_queues
        from shm.inspect import clean

        clean(instance, force=True)
        unlink_queues(instance, ("execution",))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
