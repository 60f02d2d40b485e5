"""Fault injection: every fault is observable on the wire and counted in /sim/stats."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiohttp
import uvloop

from procs.exchange_sim.config import FaultSpec
from tests.support.sim import SyncClient, pump, recv_json, running_sim


async def _arm(http: aiohttp.ClientSession, port: int, **body: object) -> dict:
    async with http.post(f"http://127.0.0.1:{port}/sim/fault", json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _stats(http: aiohttp.ClientSession, port: int) -> dict:
    async with http.get(f"http://127.0.0.1:{port}/sim/stats") as r:
        return await r.json()


async def _depth_events(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict]:
    return [await recv_json(ws) for _ in range(n)]


async def _until_anomaly(ws: aiohttp.ClientWebSocketResponse, bad: Callable[[dict, dict], bool],
                         last: dict, limit: int = 2000) -> list[dict]:
    """``last`` and the events after it, up to 20 past the first pair ``bad(a, b)`` flags."""
    evs = [last]
    stop = limit
    while len(evs) < stop:
        evs.append(await recv_json(ws))
        if stop == limit and bad(evs[-2], evs[-1]):
            stop = len(evs) + 20
    return evs


async def _diff_faults() -> None:
    async with running_sim(gen_msg_rate=1000) as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as ws:
            evs = await _depth_events(ws, 3)
            await _arm(http, srv.rest_port, fault="drop_diff", symbol="BTCUSDT")
            evs = await _until_anomaly(ws, lambda a, b: b["pu"] != a["u"], evs[-1])
            breaks = [(a["u"], b["pu"]) for a, b in zip(evs, evs[1:], strict=False) if b["pu"] != a["u"]]
            assert len(breaks) == 1 and breaks[0][1] > breaks[0][0]  # one event missing

            await _arm(http, srv.rest_port, fault="duplicate_diff", symbol="BTCUSDT")
            evs = await _until_anomaly(ws, lambda a, b: a == b, evs[-1])
            dups = [a["u"] for a, b in zip(evs, evs[1:], strict=False) if a == b]
            assert len(dups) == 1

            await _arm(http, srv.rest_port, fault="reorder_diff", symbol="BTCUSDT")
            evs = await _until_anomaly(ws, lambda a, b: b["u"] < a["u"], evs[-1])
            back = [(a["u"], b["u"]) for a, b in zip(evs, evs[1:], strict=False) if b["u"] < a["u"]]
            assert len(back) == 1

            await _arm(http, srv.rest_port, fault="seq_gap", symbol="BTCUSDT")
            evs = await _until_anomaly(ws, lambda a, b: b["pu"] != a["u"], evs[-1])
            gaps = [(a["u"], b["pu"]) for a, b in zip(evs, evs[1:], strict=False) if b["pu"] != a["u"]]
            assert gaps == [(gaps[0][0], gaps[0][0] - 1)]  # content delivered, pu wrong
        st = await _stats(http, srv.rest_port)
        assert st["injected"] == {"drop_diff": 1, "duplicate_diff": 1, "reorder_diff": 1, "seq_gap": 1}
        assert st["armed"] == {}


def test_diff_faults_when_armed_then_each_breaks_the_pu_chain_its_own_way() -> None:
    uvloop.run(_diff_faults())


async def _recovery() -> None:
    async with running_sim(gen_msg_rate=2000) as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as ws:
            client = SyncClient(http, srv.rest_port, "BTCUSDT")
            await pump(client, ws, seconds=0.3)
            for fault in ("drop_diff", "seq_gap", "reorder_diff"):
                await _arm(http, srv.rest_port, fault=fault, symbol="BTCUSDT")
                await pump(client, ws, seconds=0.3)
            # the reordered pair breaks once; its late (older) event is then dropped as stale
            assert client.breaks == 3 and client.resyncs == 4
            srv.set_running(False)
            true = srv.market.books["BTCUSDT"]
            await pump(client, ws, until_u=true.last_u, seconds=2.0)
            assert (client.bids, client.asks, client.last_u) == (true.bids, true.asks, true.last_u)


def test_sync_client_when_diffs_dropped_then_resync_restores_true_book() -> None:
    uvloop.run(_recovery())


async def _session_faults() -> None:
    async with running_sim(gen_msg_rate=1000) as (srv, http):
        url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=btcusdt@depth@0ms"
        async with http.ws_connect(url) as ws:
            await recv_json(ws)
            await _arm(http, srv.rest_port, fault="malformed_frame", symbol="BTCUSDT")
            bad = 0
            for _ in range(50):
                msg = await ws.receive(timeout=2)
                try:
                    json.loads(msg.data)
                except ValueError:
                    bad += 1
                    break
            assert bad == 1

            await _arm(http, srv.rest_port, fault="stall", seconds=0.5)
            while True:  # drain what was in flight before the stall began
                try:
                    await ws.receive(timeout=0.1)
                except TimeoutError:
                    break
            t0 = time.monotonic()
            await recv_json(ws, timeout=3)
            assert time.monotonic() - t0 >= 0.3  # nothing flowed for (most of) the stall
            assert not ws.closed

            ack = await _arm(http, srv.rest_port, fault="disconnect")
            assert ack["sessions"] == 1
            while True:
                msg = await ws.receive(timeout=2)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
        st = await _stats(http, srv.rest_port)
        assert st["injected"] == {"malformed_frame": 1, "stall": 1, "disconnect": 1}
        assert st["stalled_frames"] > 0


def test_session_faults_when_armed_then_malformed_stall_and_disconnect_observed() -> None:
    uvloop.run(_session_faults())


async def _rest_faults() -> None:
    async with running_sim() as (srv, http):
        base = f"http://127.0.0.1:{srv.rest_port}"
        await _arm(http, srv.rest_port, fault="rest_429", count=2)
        for _ in range(2):
            async with http.get(base + "/fapi/v1/ping") as r:
                assert r.status == 429 and (await r.json())["code"] == -1003
                assert "X-MBX-USED-WEIGHT-1M" in r.headers
        async with http.get(base + "/fapi/v1/ping") as r:
            assert r.status == 200
        await _arm(http, srv.rest_port, fault="rest_5xx", count=1)
        async with http.get(base + "/fapi/v1/depth", params={"symbol": "BTCUSDT"}) as r:
            assert r.status == 503
        await _arm(http, srv.rest_port, fault="rest_5xx", count=1, status=500)
        async with http.get(base + "/fapi/v1/time") as r:
            assert r.status == 500 and (await r.json())["code"] == -1000
        await _arm(http, srv.rest_port, fault="slow_snapshot", symbol="BTCUSDT", seconds=0.4)
        t0 = time.monotonic()
        async with http.get(base + "/fapi/v1/depth", params={"symbol": "BTCUSDT"}) as r:
            assert r.status == 200
        assert time.monotonic() - t0 >= 0.4
        t0 = time.monotonic()
        async with http.get(base + "/fapi/v1/depth", params={"symbol": "BTCUSDT"}) as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 0.3
        st = await _stats(http, srv.rest_port)
        assert st["injected"] == {"rest_429": 2, "rest_5xx": 2, "slow_snapshot": 1}
        async with http.post(base + "/sim/fault", json={"fault": "explode"}) as r:
            assert r.status == 400


def test_rest_faults_when_armed_then_429_5xx_and_slow_snapshot_for_next_requests() -> None:
    uvloop.run(_rest_faults())


async def _config_faults() -> None:
    faults = [FaultSpec(fault="drop_diff", symbol="ETHUSDT", after_s=0.2, every_s=0.2)]
    async with running_sim(gen_msg_rate=1000, faults=faults) as (srv, http):
        await asyncio.sleep(0.75)
        st = await _stats(http, srv.rest_port)
        # nobody subscribed, so the armed drops wait for a depth event on a subscribed stream
        assert st["armed"]["drop_diff:ETHUSDT"] >= 3
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/ethusdt@depth@0ms") as ws:
            await _depth_events(ws, 5)
        assert (await _stats(http, srv.rest_port))["injected"]["drop_diff"] >= 3


def test_config_faults_when_scheduled_then_armed_repeatedly() -> None:
    uvloop.run(_config_faults())
