"""The simulator's latency trace (procs.exchange_sim.trace): depth frames written and orders received,
stamped with the monotonic clock only while the trace is on."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import uvloop

from procs.exchange_sim.server import SimServer
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.orderapi import build_trading
from procs.venue.binance.signing import sign, ws_payload
from tests.support.sim import sim_config
from tests.support.trading import KEY, SECRET

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
         "price": "59000"}


async def _traffic(trace: bool, enable_by_post: bool = False) -> dict[str, Any]:
    """Run a generated market with the trading side, read 20 depth frames, place one order over
    REST and one over the WebSocket API; -> what the client saw and what the simulator traced."""
    srv = SimServer(sim_config(trace=trace, symbols=["BTCUSDT"], gen_msg_rate=400.0))
    rest, ws = build_trading(srv.market, TradingConfig())  # type: ignore[arg-type]
    srv.set_handlers(rest, ws)
    await srv.start()
    base = f"http://127.0.0.1:{srv.rest_port}"
    try:
        async with aiohttp.ClientSession() as http:
            if enable_by_post:
                async with http.post(f"{base}/sim/trace", params={"enabled": "true", "clear": "true"}) as r:
                    assert r.status == 200 and (await r.json())["enabled"] is True
            seen: list[tuple[int, int]] = []  # (u, monotonic ns when the client read it)
            async with http.ws_connect(f"ws://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as md:
                while len(seen) < 20:
                    msg = await md.receive(timeout=5)
                    seen.append((json.loads(msg.data)["u"], time.monotonic_ns()))
            t_before = time.monotonic_ns()
            p = dict(ORDER, newClientOrderId="rest-1", timestamp=int(time.time() * 1000))
            q = urlencode(p)
            async with http.post(f"{base}/fapi/v1/order?{q}&signature={sign(SECRET, q)}",
                                 headers={"X-MBX-APIKEY": KEY}) as r:
                assert r.status == 200, await r.text()
            async with http.ws_connect(f"ws://127.0.0.1:{srv.ws_port}/ws-fapi/v1") as api:
                wp: dict[str, Any] = dict(ORDER, newClientOrderId="ws-1", apiKey=KEY,
                                          timestamp=int(time.time() * 1000))
                wp["signature"] = sign(SECRET, ws_payload(wp))
                await api.send_str(json.dumps({"id": 1, "method": "order.place", "params": wp}))
                reply = json.loads((await api.receive(timeout=5)).data)
                assert reply["status"] == 200, reply
                cp: dict[str, Any] = {"symbol": "BTCUSDT", "origClientOrderId": "ws-1", "apiKey": KEY,
                                      "timestamp": int(time.time() * 1000)}
                cp["signature"] = sign(SECRET, ws_payload(cp))
                await api.send_str(json.dumps({"id": 2, "method": "order.cancel", "params": cp}))
                assert json.loads((await api.receive(timeout=5)).data)["status"] == 200
            t_after = time.monotonic_ns()
            async with http.get(f"{base}/sim/trace") as r:
                traced = await r.json()
            async with http.get(f"{base}/sim/order_log") as r:
                order_log = await r.json()
            async with http.post(f"{base}/sim/trace", params={"enabled": "false"}) as r:
                off = await r.json()
    finally:
        await srv.stop()
    return {"seen": seen, "trace": traced, "order_log": order_log, "t_before": t_before, "t_after": t_after,
            "off": off}


def test_trace_when_enabled_then_frames_and_orders_stamped_on_the_monotonic_clock() -> None:
    out = uvloop.run(_traffic(trace=True))
    tr = out["trace"]
    assert tr["enabled"] is True and out["off"]["enabled"] is False
    sent = {u: ns for sym, u, ns in tr["frames"] if sym == "BTCUSDT"}
    for u, read_ns in out["seen"]:
        # every frame the client read was stamped, and stamped before the client read it
        assert u in sent and 0 < sent[u] <= read_ns
    orders = {(o["api"], o["method"], o["clientOrderId"]): o for o in tr["orders"]}
    assert set(orders) == {("rest", "place", "rest-1"), ("ws", "place", "ws-1"), ("ws", "cancel", "ws-1")}
    assert all(o["symbol"] == "BTCUSDT" and out["t_before"] < o["ts_recv_ns"] < out["t_after"]
               for o in orders.values())
    assert orders[("rest", "place", "rest-1")]["ts_recv_ns"] < orders[("ws", "place", "ws-1")]["ts_recv_ns"]
    # the order log's records of those requests carry the same stamp
    new = {e["clientOrderId"]: e for e in out["order_log"] if e["event"] == "NEW"}
    assert new["rest-1"]["ts_recv_ns"] == orders[("rest", "place", "rest-1")]["ts_recv_ns"]
    assert new["ws-1"]["ts_recv_ns"] == orders[("ws", "place", "ws-1")]["ts_recv_ns"]
    assert tr["frames_seen"] >= len(out["seen"]) and tr["orders_seen"] == 3


def test_trace_when_disabled_then_nothing_recorded_and_order_log_unchanged() -> None:
    out = uvloop.run(_traffic(trace=False))
    tr = out["trace"]
    assert tr["enabled"] is False and tr["frames"] == [] and tr["orders"] == []
    assert tr["frames_seen"] == 0 and tr["orders_seen"] == 0
    assert out["order_log"] and all("ts_recv_ns" not in e for e in out["order_log"])


def test_trace_when_enabled_by_post_then_records_from_then_on() -> None:
    out = uvloop.run(_traffic(trace=False, enable_by_post=True))
    tr = out["trace"]
    assert {u for _, u, _ in tr["frames"]} >= {u for u, _ in out["seen"]}
    assert [o["clientOrderId"] for o in tr["orders"]] == ["rest-1", "ws-1", "ws-1"]


def test_trace_when_capacity_reached_then_oldest_dropped_and_seen_counts_all() -> None:
    from procs.exchange_sim.trace import Trace

    class Hub:
        trace = None

    hub = Hub()
    t = Trace(capacity=3)
    t.bind(hub)
    assert hub.trace is None  # off: the hub has nothing to call
    t.set_enabled(True)
    assert hub.trace is t
    s = object()
    for u in range(1, 6):
        t.queued(s, "BTCUSDT", u)
    t.writing(s)
    assert [u for _, u, _ in t.frames] == [3, 4, 5] and t.frames_seen == 5
    t.queued(s, "BTCUSDT", 6)
    t.dropped(s)  # the session closed before its write: nothing stamped
    t.writing(s)
    assert t.frames_seen == 5
    t.set_enabled(False)
    assert hub.trace is None
