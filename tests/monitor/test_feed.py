"""/ws, the monitor's dashboard feed, in-process over shared memory the test writes: snapshots at
each subscription's rate with the latest state, streams, errors naming the field, the token rule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec
import numpy as np
from aiohttp import web

from procs.core import messages as M
from procs.core.deploy import DEFAULT_EXCHANGE_INFO
from procs.core.registry import alerts_name, book_state_name, build_registry
from procs.monitor.config import MonitorConfig
from procs.monitor.ops import Monitor, make_app
from procs.monitor.shmview import InstanceView
from procs.venue.binance.exchange_info import instruments as load_exchange_info

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
TOKEN = "feed-test-token"


def run_with_monitor(instance: str, body: Callable[[int], Awaitable[Any]], host: str = "127.0.0.1") -> Any:
    """Serve the monitor's app on a free 127.0.0.1 port (``host`` is what its config claims) and run ``body(port)``."""

    async def main() -> Any:
        cfg = MonitorConfig(host=host, required=[], feed_poll_ms=2.0)
        mon = Monitor(cfg, InstanceView(instance), SYMBOLS, TOKEN, None, load_exchange_info(DEFAULT_EXCHANGE_INFO))
        runner = web.AppRunner(make_app(mon))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            return await body(port)
        finally:
            await runner.cleanup()
            mon.view.close()

    return asyncio.run(main())


def write_book(w: Any, i: int) -> None:
    rec = np.zeros(1, M.book_update_dtype())[0]
    rec["symbol_id"], rec["seq"], rec["update_id"], rec["ts_pub"] = 0, i, 1000 + i, time.monotonic_ns()
    rec["n_bids"] = rec["n_asks"] = 5
    rec["bid_px"][:5] = [6_000_000 - i - k for k in range(5)]
    rec["ask_px"][:5] = [6_000_001 + k for k in range(5)]
    rec["bid_qty"][:5] = rec["ask_qty"][:5] = 1500
    w.write(0, rec)


async def recv(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        msg = await asyncio.wait_for(ws.receive(), max(0.01, deadline - asyncio.get_running_loop().time()))
        data = msgspec.json.decode(msg.data)
        if data["type"] == kind:
            return data


def test_feed_book_when_updates_come_faster_than_the_rate_then_the_latest_arrives_at_most_that_often(instance: str):
    w = build_registry().writer(instance, book_state_name("BTCUSDT"))

    async def body(port: int) -> tuple[list[dict], float]:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            welcome = await recv(ws, "welcome")
            assert welcome["symbols"] == SYMBOLS and welcome["topics"]["book"] == 10.0
            await ws.send_json({"type": "subscribe", "topic": "book", "symbol": "BTCUSDT", "depth": 3, "max_hz": 10})
            assert (await recv(ws, "subscribed"))["depth"] == 3
            got, t0 = [], time.monotonic()
            for i in range(1, 201):  # 200 updates over ~1 s
                write_book(w, i)
                await asyncio.sleep(0.005)
            elapsed = time.monotonic() - t0
            while True:
                try:
                    got.append(await recv(ws, "book", timeout=0.5))
                except TimeoutError:
                    break
            return got, elapsed

    try:
        got, elapsed = run_with_monitor(instance, body)
    finally:
        w.close(unlink=True)
    assert 2 <= len(got) <= elapsed * 10 + 2, (len(got), elapsed)  # 10 Hz, conflated
    last = got[-1]
    assert last["seq"] == 200 and last["symbol"] == "BTCUSDT"  # the newest state, not a queued old one
    # prices and quantities as the exchange writes them (the simulator's BTCUSDT: 0.01 ticks, 0.001 lots)
    assert last["bids"] == [["59998", "1.5"], ["59997.99", "1.5"], ["59997.98", "1.5"]]
    assert len(last["asks"]) == 3 and last["asks"][0] == ["60000.01", "1.5"]
    assert [g["seq"] for g in got] == sorted(g["seq"] for g in got)


def test_feed_streams_when_alerts_are_raised_then_a_subscriber_gets_each_one(instance: str):
    ring = build_registry().producer(instance, alerts_name("risk"))

    async def body(port: int) -> list[dict]:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            await ws.send_json({"type": "subscribe", "topic": "alerts"})
            assert (await recv(ws, "subscribed"))["max_hz"] == 0.0  # alerts: as they happen
            await asyncio.sleep(0.05)
            out: list[dict] = []
            for i in range(3):
                assert ring.try_publish(time.time_ns(), M.ALERT_CRITICAL, 2, -1, 0.0, f"kill switch ON {i}".encode())
            while len(out) < 3:
                out += (await recv(ws, "alerts"))["alerts"]
            return out

    try:
        alerts = run_with_monitor(instance, body)
    finally:
        ring.close(unlink=True)
    assert [a["text"] for a in alerts] == ["kill switch ON 0", "kill switch ON 1", "kill switch ON 2"]
    assert alerts[0]["proc"] == "risk" and alerts[0]["level"] == M.ALERT_CRITICAL


def test_feed_when_a_request_is_bad_then_the_error_names_the_field(instance: str):
    async def body(port: int) -> list[dict]:
        out = []
        async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            for req in ({"type": "subscribe", "topic": "gossip"},
                        {"type": "subscribe", "topic": "book", "symbol": "DOGEUSDT"},
                        {"type": "subscribe", "topic": "risk", "max_hz": 1000},
                        {"type": "subscribe", "topic": "book", "symbol": "BTCUSDT", "depth": 0},
                        {"type": "shout"}):
                await ws.send_json(req)
                out.append(await recv(ws, "error"))
            await ws.send_str("not json")
            out.append(await recv(ws, "error"))
            await ws.send_json({"type": "ping", "id": 7})
            out.append(await recv(ws, "pong"))
        return out

    errors = run_with_monitor(instance, body)
    assert [e.get("field") for e in errors[:5]] == ["topic", "symbol", "max_hz", "depth", "type"]
    assert "DOGEUSDT" in errors[1]["error"] and "BTCUSDT" in errors[1]["error"]
    assert errors[5]["type"] == "error" and errors[6] == {"type": "pong", "id": 7, "ts_ns": errors[6]["ts_ns"]}


def test_feed_when_the_monitor_is_off_loopback_then_a_client_needs_the_ops_token(instance: str):
    async def body(port: int) -> list[int | str]:
        out: list[int | str] = []
        async with aiohttp.ClientSession() as http:
            for url, headers in ((f"http://127.0.0.1:{port}/ws", {}),
                                 (f"http://127.0.0.1:{port}/ws?token=wrong", {}),
                                 (f"http://127.0.0.1:{port}/ws?token={TOKEN}", {}),
                                 (f"http://127.0.0.1:{port}/ws", {"Authorization": f"Bearer {TOKEN}"})):
                try:
                    async with http.ws_connect(url, headers=headers) as ws:
                        out.append((await recv(ws, "welcome"))["type"])
                except aiohttp.WSServerHandshakeError as exc:
                    out.append(exc.status)
        return out

    assert run_with_monitor(instance, body, host="0.0.0.0") == [403, 403, "welcome", "welcome"]
    assert run_with_monitor(instance, body, host="127.0.0.1") == ["welcome", "welcome", "welcome", "welcome"]
