"""The client side of ``b25 bench dashboard``: N WebSocket clients of the monitor's ``/ws`` in one
asyncio process, each subscribed like a dashboard (the BTCUSDT book and trades at 10 Hz, positions
and risk at 4 Hz, alerts as they happen), for a fixed time. The benchmark runs one such process
per CPU, so the clients' own decoding is not what it measures.

``python -m procs.tools.bench.dashboard_clients --url ws://127.0.0.1:P/ws --clients N --seconds S``
prints ``ready`` once every client is connected and subscribed, starts the clock on a line on
stdin, then prints one JSON document: messages by type, every delay from the shm update to the receive (book:
its ``ts_pub_ns``; trades: the newest trade's; CLOCK_MONOTONIC, one host), connect failures and
errors. A run is bounded in count and time and stops by itself.
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
    {"type": "subscribe", "topic": "trades", "symbol": "BTCUSDT", "max_hz": 10},
    {"type": "subscribe", "topic": "positions", "max_hz": 4},
    {"type": "subscribe", "topic": "risk", "max_hz": 4},
    {"type": "subscribe", "topic": "alerts"},
)


class TradeStamp(msgspec.Struct):
    ts_pub_ns: int


class Message(msgspec.Struct):
    """The fields a client measures (the rest of each message is skipped by the decoder)."""

    type: str
    ts_pub_ns: int = 0
    trades: list[TradeStamp] = []
    error: str = ""


class Tally:
    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}
        self.delays_ns: list[int] = []
        self.errors: list[str] = []
        self.connected = 0
        self.failed = 0
        self.ready = 0
        self.clients = 0


async def client(url: str, tally: Tally, ready: asyncio.Event, go: asyncio.Future, seconds: float) -> None:
    dec = msgspec.json.Decoder(Message)
    connected = counted = False
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=1 << 22) as ws:
            connected = True
            tally.connected += 1
            for sub in SUBSCRIPTIONS:
                await ws.send_json(sub)
            answered = 0
            while answered < len(SUBSCRIPTIONS):  # every subscription confirmed: this client is ready
                msg = await ws.receive(timeout=60)
                answered += dec.decode(msg.data).type in ("subscribed", "error")
            tally.ready += 1
            counted = True
            if tally.ready == tally.clients:
                ready.set()
            started = await go
            until = started + seconds
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    return
                try:
                    msg = await ws.receive(timeout=left)
                except TimeoutError:
                    return
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        tally.errors.append(f"closed: {msg.type.name}")
                        return
                    continue
                now = time.monotonic_ns()
                m = dec.decode(msg.data)
                tally.by_type[m.type] = tally.by_type.get(m.type, 0) + 1
                if m.type == "book":
                    tally.delays_ns.append(now - m.ts_pub_ns)
                elif m.type == "trades" and m.trades:
                    tally.delays_ns.append(now - m.trades[-1].ts_pub_ns)
                elif m.type == "error":
                    tally.errors.append(m.error)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        if not connected:
            tally.failed += 1
        tally.errors.append(repr(exc))
    finally:
        if not counted:  # a client that failed before it was ready does not hold the others back
            tally.ready += 1
            if tally.ready >= tally.clients:
                ready.set()


async def main_async(url: str, clients: int, seconds: float) -> dict:
    """Connect and subscribe every client, say ``ready`` on stdout, start measuring on ``go`` from stdin."""
    tally = Tally()
    tally.clients = clients
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    go: asyncio.Future = loop.create_future()
    tasks = [loop.create_task(client(url, tally, ready, go, seconds)) for _ in range(clients)]
    await ready.wait()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    go.set_result(time.monotonic())
    await asyncio.gather(*tasks)
    return {"clients": clients, "connected": tally.connected, "connect_failures": tally.failed,
            "seconds": seconds, "by_type": tally.by_type, "delays_us": [d // 1000 for d in tally.delays_ns],
            "errors": sorted(set(tally.errors))[:10]}


def combine(parts: list[dict]) -> dict:
    """One summary of several client processes' results."""
    by_type: dict[str, int] = {}
    for p in parts:
        for k, v in p["by_type"].items():
            by_type[k] = by_type.get(k, 0) + v
    delays = np.concatenate([np.asarray(p["delays_us"], dtype=np.float64) for p in parts]) / 1000
    seconds = parts[0]["seconds"]
    total = sum(by_type.values())
    return {"clients": sum(p["clients"] for p in parts), "processes": len(parts),
            "connected": sum(p["connected"] for p in parts), "connect_failures": sum(p["connect_failures"] for p in parts),
            "seconds": seconds, "messages": total, "messages_per_s": round(total / seconds, 1), "by_type": by_type,
            "delay_ms": {"count": int(delays.size),
                         **({"p50": round(float(np.percentile(delays, 50)), 2),
                             "p99": round(float(np.percentile(delays, 99)), 2),
                             "max": round(float(delays.max()), 2)} if delays.size else {})},
            "errors": sorted({e for p in parts for e in p["errors"]})[:10]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dashboard_clients", description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args(argv)
    if not 1 <= a.clients <= 2000 or not 0 < a.seconds <= 3600:
        print("clients must be 1..2000 and seconds 0..3600", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(main_async(a.url, a.clients, a.seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
