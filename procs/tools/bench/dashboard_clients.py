"""The client side of ``b25 bench dashboard``: N WebSocket clients of the monitor's ``/ws`` in one
asyncio process, each subscribed like a dashboard (both books at 10 Hz, BTCUSDT trades at 10 Hz,
positions and risk at 4 Hz, alerts as they happen), for a fixed time.

``python -m procs.tools.bench.dashboard_clients --url ws://127.0.0.1:P/ws --clients N --seconds S``
prints one JSON document: messages by type, per-message delay from the shm update to the
receive (book: ``ts_pub_ns`` of the book; trades: of the newest trade; CLOCK_MONOTONIC, one
host), connect failures and errors. A run is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp
import msgspec
import numpy as np

SUBSCRIPTIONS = (
    {"type": "subscribe", "topic": "book", "symbol": "BTCUSDT", "depth": 10, "max_hz": 10},
    {"type": "subscribe", "topic": "book", "symbol": "ETHUSDT", "depth": 10, "max_hz": 10},
    {"type": "subscribe", "topic": "trades", "symbol": "BTCUSDT", "max_hz": 10},
    {"type": "subscribe", "topic": "positions", "max_hz": 4},
    {"type": "subscribe", "topic": "risk", "max_hz": 4},
    {"type": "subscribe", "topic": "alerts"},
)


class Tally:
    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}
        self.delays_ns: list[int] = []
        self.errors: list[str] = []
        self.connected = 0
        self.failed = 0


async def client(url: str, until: float, tally: Tally, measure_from: float) -> None:
    dec = msgspec.json.Decoder()
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=1 << 22) as ws:
            tally.connected += 1
            for sub in SUBSCRIPTIONS:
                await ws.send_json(sub)
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    return
                try:
                    msg = await asyncio.wait_for(ws.receive(), left)
                except TimeoutError:
                    return
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        tally.errors.append(f"closed: {msg.type.name}")
                        return
                    continue
                now = time.monotonic_ns()
                data = dec.decode(msg.data)
                kind = data["type"]
                if now / 1e9 < measure_from:
                    continue
                tally.by_type[kind] = tally.by_type.get(kind, 0) + 1
                if kind == "book":
                    tally.delays_ns.append(now - data["ts_pub_ns"])
                elif kind == "trades" and data["trades"]:
                    tally.delays_ns.append(now - data["trades"][-1]["ts_pub_ns"])
                elif kind == "error":
                    tally.errors.append(data["error"])
    except (aiohttp.ClientError, OSError) as exc:
        tally.failed += 1
        tally.errors.append(repr(exc))


async def main_async(url: str, clients: int, seconds: float, warmup_s: float) -> dict:
    tally = Tally()
    start = time.monotonic()
    measure_from = start + warmup_s
    until = measure_from + seconds
    await asyncio.gather(*(client(url, until, tally, measure_from) for _ in range(clients)))
    delays = np.asarray(tally.delays_ns, dtype=np.float64) / 1e6
    total = sum(tally.by_type.values())
    return {"clients": clients, "connected": tally.connected, "connect_failures": tally.failed,
            "seconds": seconds, "messages": total, "messages_per_s": round(total / seconds, 1),
            "by_type": tally.by_type,
            "delay_ms": {"count": int(delays.size),
                         **({"p50": round(float(np.percentile(delays, 50)), 2),
                             "p99": round(float(np.percentile(delays, 99)), 2),
                             "max": round(float(delays.max()), 2)} if delays.size else {})},
            "errors": sorted(set(tally.errors))[:10]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dashboard_clients", description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="connected and subscribed, not yet counted")
    a = ap.parse_args(argv)
    if not 1 <= a.clients <= 2000 or not 0 < a.seconds <= 3600:
        print("clients must be 1..2000 and seconds 0..3600", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(main_async(a.url, a.clients, a.seconds, a.warmup))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
