"""``b25 bench bridge``: the NATS bridge's figures, against a real nats-server on loopback.

* ``throughput``: the simulator's generator at 50k depth events/s (trades on top), every book
  update published (``book_max_hz = 0``): the rings' events/s, the bridge's messages/s, what it
  dropped or was lapped by, and the CPU it took. Peer: nats-py publishing the same kind of message
  as fast as it can from one process (``nats_py_publish``), the client's own ceiling.
* ``lag``: ring publish (``ts_pub``) -> a subscriber in another process receives the message over
  TCP loopback, p50/p99/p99.9, in the 50k/s run and at 1k events/s. Peer: nats-py publish ->
  subscriber receive on the same server with no b25 in between (``nats_floor``).
* ``hot_path``: ``b25 bench e2e``'s tick_to_order with the bridge off and on, alternating
  (off, on, off, on, ...) in this one benchmark, and the difference of the medians.
* ``remote_intent``: a remote client's NATS publish of a submit intent -> execution writes the
  order to the exchange's socket (the ORDER_SENT event's ``ts_sent``), p50/p99; one process clock.

The bridge runs at its default ``sched = "nice:10"`` and the server at ``server_nice`` 10, as the
embedded server does. Figures are what they are on a shared machine: the loads before and after
are reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from procs.bridge.config import BridgeConfig
from procs.bridge.server import NatsServer
from procs.core import messages as M
from procs.core.instruments import load_exchange_info
from procs.core.registry import EXEC, MD_BOOK, MD_TRADE, build_registry
from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO
from procs.tools.stack import PIPELINE, Stack
from shm.counters import summary_us

from . import e2e
from .e2e import _exact as _pct  # count, p50/p99/p99.9 in us, exact

BRIDGE = {"enabled": True, "book_max_hz": 0.0, "exec_stream": {"max_bytes": 256 << 20},
          "alerts_stream": {"max_bytes": 16 << 20}}


# -- the subscriber, in its own process ----------------------------------------------------------
async def _subscribe(url: str, subject: str, seconds: float) -> dict[str, Any]:
    import msgspec
    import nats

    class Stamp(msgspec.Struct):  # the one field the lag needs: decoding skips the rest
        ts_pub: int = 0

    nc = await nats.connect(url, pending_size=64 << 20)
    lags: list[int] = []
    dec = msgspec.msgpack.Decoder(Stamp)
    n = 0

    async def cb(msg: Any) -> None:
        nonlocal n
        now = time.monotonic_ns()
        n += 1
        ts = dec.decode(msg.data).ts_pub
        if ts:
            lags.append(now - ts)

    await nc.subscribe(subject, cb=cb, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
    await asyncio.sleep(seconds)
    await nc.close()
    return {"received": n, "lag": _pct(lags)}


def _start_subscriber(url: str, subject: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "procs.tools.bench.bridge", "--subscribe", url, subject,
                             str(seconds)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3])


async def _nats_floor(url: str, n: int = 20_000, rate: float = 5000.0) -> dict[str, Any]:
    """nats-py alone: publish -> receive latency at ``rate``, and the publish ceiling."""
    import msgspec
    import nats

    pub, sub = await nats.connect(url), await nats.connect(url)
    lags: list[int] = []
    done = asyncio.Event()

    async def cb(msg: Any) -> None:
        lags.append(time.monotonic_ns() - msgspec.msgpack.decode(msg.data)["ts_pub"])
        if len(lags) >= n:
            done.set()

    await sub.subscribe("floor.x", cb=cb)
    await sub.flush()
    body = {"type": "book", "bids": [[5999900 + i, 3] for i in range(20)], "asks": [[6000000 + i, 3] for i in range(20)]}
    step = 1.0 / rate
    t0 = time.monotonic()
    for i in range(n):
        body["ts_pub"] = time.monotonic_ns()
        await pub.publish("floor.x", msgspec.msgpack.encode(body))
        delay = t0 + (i + 1) * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    try:
        await asyncio.wait_for(done.wait(), 10)
    except TimeoutError:
        pass
    k = 50_000
    payload = msgspec.msgpack.encode(body)
    t = time.perf_counter()
    for _ in range(k):
        await pub.publish("floor.none", payload)
    await pub.flush()
    ceiling = k / (time.perf_counter() - t)
    await pub.close()
    await sub.close()
    return {"lag": _pct(lags), "rate_per_s": rate, "nats_py_publish_per_s": round(ceiling)}


# -- the runs ----------------------------------------------------------------------------------------
def _bridge_stack(work: Path, url: str, rate: float, extra: dict | None = None, more: dict | None = None) -> Stack:
    over = {"sim": {"generator": {"msg_rate": rate, "seed": 11}}, "bridge": BRIDGE | {"url": url} | (extra or {}),
            "strategy": {"strategies": []}} | (more or {})
    return Stack(work, procs=(*PIPELINE, "bridge"), overrides=over, start_timeout=180)


def _flow(stack: Stack, url: str, rate: float, seconds: float, warmup_s: float) -> dict[str, Any]:
    stack.start()
    try:
        time.sleep(warmup_s)
        sub = _start_subscriber(url, f"b25.{stack.instance}.md.>", seconds)
        time.sleep(1.0)  # the subscriber connects
        reg = build_registry()
        book, trade = reg.consumer(stack.instance, MD_BOOK, None), reg.consumer(stack.instance, MD_TRADE, None)
        c0, h0 = stack.counters("bridge")
        head0 = book.position + book.available(), trade.position + trade.available()
        cpu0 = psutil.Process(stack.pid("bridge")).cpu_times()
        t0 = time.monotonic()
        time.sleep(max(0.0, seconds - 2.0))
        dt = time.monotonic() - t0
        c1, h1 = stack.counters("bridge")
        head1 = book.position + book.available(), trade.position + trade.available()
        cpu1 = psutil.Process(stack.pid("bridge")).cpu_times()
        book.close()
        trade.close()
        out, _ = sub.communicate(timeout=seconds + 30)
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        stack.stop()
    d = {k: c1[k] - c0.get(k, 0) for k in ("published", "published_bytes", "dropped_outage", "dropped_slow",
                                          "lapped", "dropped_durable")}
    return {"generator_events_per_s": rate,
            "ring_events_per_s": {"md.book": round((head1[0] - head0[0]) / dt), "md.trade": round((head1[1] - head0[1]) / dt)},
            "published_per_s": round(d["published"] / dt), "published_mb_per_s": round(d["published_bytes"] / dt / 1e6, 2),
            "dropped": {k: d[k] for k in ("dropped_outage", "dropped_slow", "dropped_durable")}, "lapped": d["lapped"],
            "bridge_cpu_percent": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / dt * 100, 1),
            "ring_to_nats": summary_us(h1["ring_to_nats"] - h0["ring_to_nats"]),
            "subscriber": got}


async def _intents(url: str, instance: str, n: int, every_s: float, scales: tuple[int, int], price: int
                   ) -> dict[int, int]:
    import msgspec
    import nats

    nc = await nats.connect(url, user="bench", password="bench-password")
    subject = f"b25.{instance}.intent.remote_bench"
    sent: dict[int, int] = {}
    for i in range(n):
        iid = time.time_ns()
        body = msgspec.json.encode({"type": "submit", "intent_id": iid, "symbol": "BTCUSDT", "side": "BUY",
                                    "order_type": "LIMIT", "tif": "IOC", "price": price, "qty": 2,
                                    "price_scale": scales[0], "qty_scale": scales[1], "client_tag": i + 1})
        sent[iid] = time.monotonic_ns()
        await nc.publish(subject, body)
        await nc.flush()
        await asyncio.sleep(every_s)
    await nc.close()
    return sent


def _remote_intent(work: Path, n: int) -> dict[str, Any]:
    with NatsServer(work / "nats-intent", user="bench", password="bench-password") as ns:
        extra = {"user": "bench", "password": "bench-password", "intents": True, "remote_strategies": ["remote_bench"],
                 "remote_dead_s": 60.0, "book_max_hz": 10.0}
        # no order-rate limit: the figure is the path, not a quota
        with _bridge_stack(work, ns.url, 200.0, extra, {"risk": {"max_orders_per_s": 0}}) as st:
            time.sleep(3.0)
            top = st.book("BTCUSDT")
            price = int(top["bid_px"][0]) - 500  # an IOC far below the touch: sent, then expired
            exec_ring = build_registry().consumer(st.instance, EXEC, None)
            inst = load_exchange_info(DEFAULT_EXCHANGE_INFO)["BTCUSDT"]  # the simulator's instruments
            sent = asyncio.run(_intents(ns.url, st.instance, n, 0.02, (inst.price_scale, inst.qty_scale), price))
            time.sleep(1.0)
            lat: list[int] = []
            denied: dict[str, int] = {}
            while True:
                batch = exec_ring.poll()
                if not len(batch):
                    break
                for e in batch[batch["source"] == M.SOURCE_REMOTE]:
                    iid = int(e["intent_id"])
                    if int(e["kind"]) == M.ORDER_SENT and iid in sent:
                        lat.append(int(e["ts_sent"]) - sent[iid])
                    elif int(e["kind"]) == M.ORDER_DENIED:
                        name = M.DENY_NAMES.get(int(e["reason"]), str(int(e["reason"])))
                        denied[name] = denied.get(name, 0) + 1
                exec_ring.commit()
            exec_ring.close()
    return {"intents": n, "orders_on_wire": len(lat), "denied": denied, "publish_to_wire": _pct(lat)}


def run(quick: bool = False, rate: float = 50_000.0, seconds: float | None = None, pairs: int | None = None,
        ) -> dict[str, Any]:
    seconds = seconds if seconds is not None else (6.0 if quick else 15.0)
    pairs = pairs if pairs is not None else (1 if quick else 3)
    work = Path(tempfile.mkdtemp(prefix="b25-bench-bridge-"))
    load0 = os.getloadavg()
    result: dict[str, Any] = {}
    try:
        with NatsServer(work / "nats", nice=BridgeConfig().server_nice) as ns:
            result["throughput"] = _flow(_bridge_stack(work, ns.url, rate), ns.url, rate, seconds, 5.0)
            calm = _flow(_bridge_stack(work, ns.url, 1000.0), ns.url, 1000.0, seconds, 3.0)
            result["lag"] = {"at_50k_per_s": result["throughput"]["subscriber"]["lag"],
                             "at_1k_per_s": calm["subscriber"]["lag"], "peer_nats_floor": asyncio.run(_nats_floor(ns.url))}
            runs: list[dict[str, Any]] = []
            for i in range(pairs * 2):
                on = i % 2 == 1
                over = {"bridge": BRIDGE | {"url": ns.url, "book_max_hz": 10.0}} if on else {}
                r = e2e.run(quick=True, seconds=8.0 if quick else 12.0, overrides=over,
                            procs=(*PIPELINE, "bridge") if on else PIPELINE)
                runs.append({"bridge": on, "tick_to_order": r["stages"]["tick_to_order"], "orders": r["orders"]})
        off = [r["tick_to_order"]["p50_us"] for r in runs if not r["bridge"]]
        on_ = [r["tick_to_order"]["p50_us"] for r in runs if r["bridge"]]
        off99 = [r["tick_to_order"]["p99_us"] for r in runs if not r["bridge"]]
        on99 = [r["tick_to_order"]["p99_us"] for r in runs if r["bridge"]]
        result["hot_path"] = {"runs": runs, "tick_to_order_p50_us": {"off": off, "on": on_,
                              "difference_of_medians": round(float(np.median(on_) - np.median(off)), 1)},
                              "tick_to_order_p99_us": {"off": off99, "on": on99,
                              "difference_of_medians": round(float(np.median(on99) - np.median(off99)), 1)}}
        result["remote_intent"] = _remote_intent(work, 60 if quick else 200)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["settings"] = {"generator_events_per_s": rate, "seconds": seconds, "pairs": pairs, "cpus": os.cpu_count(),
                          "loadavg_before": [round(x, 2) for x in load0],
                          "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    return result


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--subscribe":
        print(json.dumps(asyncio.run(_subscribe(sys.argv[2], sys.argv[3], float(sys.argv[4])))))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv)))
