"""Generator throughput, measured (a benchmark, never a test).

``python -m procs.exchange_sim.bench [--rate R] [--seconds S] [--json]`` prints
``{"generate_only": {...}, "over_socket": {...}}``: events/s of the bare generator with the
``@depth@0ms`` encoding, and depth events plus other frames per second actually received by a
picows client subscribed to every symbol's ``@depth@0ms``, ``@trade`` and ``@bookTicker``
while an exchange_sim process is asked for ``R`` depth events/s (``--rate 0``: flat out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import threading
import time

import msgspec
import picows
import uvloop

from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO, GeneratorConfig
from procs.exchange_sim.faults import Faults
from procs.exchange_sim.market.feed import Feed, Hub
from procs.exchange_sim.market.generator import Generator
from procs.exchange_sim.market.true_book import Market
from procs.venue.binance.exchange_info import instruments


class _Sink:
    combined = True
    paused = False

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0

    def send_bytes(self, data: bytes) -> None:
        self.frames += 1
        self.bytes += len(data)

    def close(self) -> None:
        pass


def generate_only(n: int = 200_000) -> dict:
    market = Market(instruments(DEFAULT_EXCHANGE_INFO))
    faults = Faults()
    hub = Hub(faults)
    feed = Feed(market, hub, faults)
    sink = _Sink()
    for s in ("btcusdt@depth@0ms", "ethusdt@depth@0ms"):
        hub.subscribe(sink, s)
    gen = Generator(market, GeneratorConfig(seed=1), ["BTCUSDT", "ETHUSDT"])
    gen.seed_books()
    t0 = time.perf_counter()
    for _ in range(n):
        ev = gen.step()
        feed.depth_event(ev.symbol, ev.first_u, ev.last_u, ev.prev_u, ev.bids, ev.asks, 0, 0)
    dt = time.perf_counter() - t0
    return {"events": n, "events_per_s": round(n / dt), "frames": sink.frames, "mb_per_s": round(sink.bytes / dt / 1e6, 1)}


async def over_socket(rate: float, seconds: float) -> dict:
    """The simulator as its own process (as deployed), a picows client here counting frames."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "procs.exchange_sim", "--port", "0", "--ws-port", "0", "--rate", str(rate)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        ws_port = 0
        for line in proc.stderr:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "listening":
                ws_port = rec["ws_port"]
                break
        # keep draining the child's log so a full pipe can never block it
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        counts = {"depth": 0, "other": 0}

        class Client(picows.WSListener):
            def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
                if frame.msg_type == picows.WSMsgType.TEXT:
                    counts["depth" if b"@depth" in frame.get_payload_as_bytes()[:40] else "other"] += 1

        kinds = ("depth@0ms", "trade", "bookTicker")
        streams = "/".join(f"{s}@{k}" for s in ("btcusdt", "ethusdt") for k in kinds)
        transport, _ = await picows.ws_connect(Client, f"ws://127.0.0.1:{ws_port}/stream?streams={streams}")
        try:
            await asyncio.sleep(0.5)  # warm up
            d0, o0 = counts["depth"], counts["other"]
            t0 = time.perf_counter()
            await asyncio.sleep(seconds)
            dt = time.perf_counter() - t0
            d, o = counts["depth"] - d0, counts["other"] - o0
        finally:
            transport.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return {"requested_depth_per_s": rate, "depth_per_s": round(d / dt), "all_msgs_per_s": round((d + o) / dt)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="procs.exchange_sim.bench", description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=50_000)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = {"generate_only": generate_only(), "over_socket": uvloop.run(over_socket(args.rate, args.seconds))}
    print(msgspec.json.encode(out).decode() if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
