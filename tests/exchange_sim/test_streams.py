"""WebSocket market streams: paths, framing and live control messages, against real sockets."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import picows
import pytest
import uvloop

from procs.exchange_sim.wsserver import parse_market_path
from tests.support.sim import book_from_depth, recv_json, running_sim


def test_parse_market_path_when_routes_then_combined_raw_or_none() -> None:
    assert parse_market_path("/stream?streams=btcusdt@depth@0ms/ethusdt@trade") == (
        True, ["btcusdt@depth@0ms", "ethusdt@trade"])
    assert parse_market_path("/ws/btcusdt@bookTicker/btcusdt@aggTrade") == (
        False, ["btcusdt@bookTicker", "btcusdt@aggTrade"])
    assert parse_market_path("/public/ws/btcusdt@depth") == (False, ["btcusdt@depth"])
    assert parse_market_path("/market/stream?streams=btcusdt@markPrice@1s") == (True, ["btcusdt@markPrice@1s"])
    assert parse_market_path("/ws") == (False, [])
    assert parse_market_path("/ws/SomeListenKey123") is None
    assert parse_market_path("/ws-fapi/v1") is None


async def _combined_and_control() -> None:
    async with running_sim(gen_msg_rate=500) as (srv, http):
        url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=btcusdt@depth@0ms"
        async with http.ws_connect(url) as ws:
            first = await recv_json(ws)
            assert first["stream"] == "btcusdt@depth@0ms"
            d = first["data"]
            assert d["e"] == "depthUpdate" and d["s"] == "BTCUSDT" and {"E", "T", "U", "u", "pu", "b", "a"} <= d.keys()
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade", "btcusdt@bookTicker"], "id": 1}))
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@0ms"], "id": 3}))
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            await ws.send_str(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 5}))
            await ws.send_str(json.dumps({"method": "NOPE", "id": 6}))
            await ws.send_str("{not json")
            replies: dict[int, dict] = {}
            errors = []
            after_unsub: set[str] = set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2.0
            while loop.time() < deadline and (len(replies) < 6 or not errors or len(after_unsub) < 2):
                m = await recv_json(ws)
                if "stream" in m:
                    if 3 in replies:
                        after_unsub.add(m["stream"])
                elif "id" in m and m["id"] is not None:
                    replies[m["id"]] = m
                else:
                    errors.append(m)
            assert replies[1] == {"result": None, "id": 1}
            assert replies[2] == {"result": ["btcusdt@depth@0ms", "ethusdt@trade", "btcusdt@bookTicker"], "id": 2}
            assert replies[3] == {"result": None, "id": 3}
            assert replies[4] == {"result": ["ethusdt@trade", "btcusdt@bookTicker"], "id": 4}
            assert replies[5] == {"result": True, "id": 5}
            assert replies[6]["code"] == 2 and "unknown variant" in replies[6]["msg"]
            assert errors and errors[0]["code"] == 3
            assert after_unsub == {"ethusdt@trade", "btcusdt@bookTicker"}


def test_subscribe_list_unsubscribe_when_combined_then_exact_replies_and_streams() -> None:
    uvloop.run(_combined_and_control())


async def _raw_and_property() -> None:
    async with running_sim(gen_msg_rate=500) as (srv, http):
        url = f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@bookTicker/btcusdt@depth@100ms"
        async with http.ws_connect(url) as ws:
            seen = set()
            while len(seen) < 2:
                m = await recv_json(ws)
                assert "stream" not in m  # raw mode: bare payloads
                seen.add(m["e"])
            assert seen == {"bookTicker", "depthUpdate"}
            await ws.send_str(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 7}))
            while True:
                m = await recv_json(ws)
                if m.get("id") == 7:
                    assert m == {"result": None, "id": 7}
                    break
            m = await recv_json(ws)
            assert m["stream"] in ("btcusdt@bookTicker", "btcusdt@depth@100ms") and "data" in m


def test_raw_path_when_set_property_combined_then_frames_get_wrapped() -> None:
    uvloop.run(_raw_and_property())


async def _interval_chain() -> None:
    async with running_sim(gen_msg_rate=2000) as (srv, http):
        url = f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@100ms"
        async with http.ws_connect(url) as ws:
            events = [await recv_json(ws) for _ in range(5)]
        for prev, ev in zip(events, events[1:], strict=False):
            assert ev["pu"] == prev["u"] and ev["U"] > prev["u"]
        gaps = [(b["E"] - a["E"]) for a, b in zip(events, events[1:], strict=False)]
        assert all(60 <= g <= 300 for g in gaps), gaps


def test_depth_100ms_when_streamed_then_merged_events_chain_by_pu() -> None:
    uvloop.run(_interval_chain())


async def _picows_client() -> None:
    async with running_sim(gen_msg_rate=1000) as (srv, _http):
        got: list[bytes] = []
        done = asyncio.get_running_loop().create_future()

        class Client(picows.WSListener):
            def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
                if frame.msg_type == picows.WSMsgType.TEXT:
                    got.append(frame.get_payload_as_bytes())
                    if len(got) >= 20 and not done.done():
                        done.set_result(None)

        transport, _ = await picows.ws_connect(Client, f"ws://127.0.0.1:{srv.ws_port}/stream?streams=ethusdt@depth@0ms")
        try:
            await asyncio.wait_for(done, 3.0)
        finally:
            transport.disconnect()
        msgs = [json.loads(b) for b in got]
        assert all(m["stream"] == "ethusdt@depth@0ms" and m["data"]["s"] == "ETHUSDT" for m in msgs)
        for a, b in zip(msgs, msgs[1:], strict=False):
            assert b["data"]["pu"] == a["data"]["u"]


def test_picows_client_when_combined_depth_0ms_then_every_event_chains() -> None:
    uvloop.run(_picows_client())


async def _unknown_path() -> None:
    async with running_sim() as (srv, http):
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/notAListenKey"):
                pass
        assert exc.value.status == 404


def test_ws_path_when_unclaimed_then_404() -> None:
    uvloop.run(_unknown_path())


async def _all_kinds() -> None:
    async with running_sim(gen_msg_rate=2000, mark_interval_ms=100) as (srv, http):
        kinds = ["depth", "depth@0ms", "depth@100ms", "depth@500ms", "bookTicker", "aggTrade", "trade",
                 "markPrice@1s", "markPrice", "depth5", "depth10@100ms", "depth20@500ms"]
        url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=" + "/".join(f"btcusdt@{k}" for k in kinds)
        seen: dict[str, str] = {}
        async with http.ws_connect(url) as ws:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3.0
            while len(seen) < len(kinds) and loop.time() < deadline:
                m = await recv_json(ws)
                seen[m["stream"].split("@", 1)[1]] = m["data"]["e"]
        assert seen == {
            "depth": "depthUpdate", "depth@0ms": "depthUpdate", "depth@100ms": "depthUpdate",
            "depth@500ms": "depthUpdate", "bookTicker": "bookTicker", "aggTrade": "aggTrade", "trade": "trade",
            "markPrice@1s": "markPriceUpdate", "markPrice": "markPriceUpdate",
            "depth5": "depthUpdate", "depth10@100ms": "depthUpdate", "depth20@500ms": "depthUpdate",
        }


def test_every_stream_kind_when_subscribed_then_its_event_type_arrives() -> None:
    uvloop.run(_all_kinds())


async def _too_many() -> None:
    async with running_sim() as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws") as ws:
            params = [f"sym{i}usdt@trade" for i in range(1025)]
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
            reply = await recv_json(ws)
            assert reply["code"] == 2 and "too many streams" in reply["msg"] and reply["id"] == 1
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": "x"}))
            reply = await recv_json(ws)
            assert reply["code"] == 2 and "unsigned integer" in reply["msg"]


def test_subscribe_when_over_1024_streams_or_bad_id_then_error_code_2() -> None:
    uvloop.run(_too_many())


async def _msg_rate() -> None:
    async with running_sim() as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws") as ws:
            for i in range(12):  # the exchange allows 10 incoming messages per second
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            replies = 0
            while True:
                msg = await ws.receive(timeout=2)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                replies += 1
            assert replies == 10 and msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_control_messages_when_over_10_per_second_then_disconnected() -> None:
    uvloop.run(_msg_rate())


async def _flat_out() -> None:
    async with running_sim(gen_msg_rate=0) as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as ws:
            evs = [await recv_json(ws) for _ in range(3000)]
        for a, b in zip(evs, evs[1:], strict=False):
            assert b["pu"] == a["u"]
        assert srv.feed.depth_events >= 3000


def test_generator_when_rate_zero_then_flat_out_and_still_chained() -> None:
    uvloop.run(_flat_out())


async def _partial() -> None:
    async with running_sim(gen_msg_rate=1000) as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth5@100ms") as ws:
            first = await recv_json(ws)
            srv.set_running(False)
            while True:  # the first event after the pause shows the frozen book
                ev = await recv_json(ws)
                if ev["u"] == srv.market.books["BTCUSDT"].last_u:
                    break
        book = book_from_depth({"bids": ev["b"], "asks": ev["a"]})
        bids, asks = srv.market.top("BTCUSDT", 5)
        assert (sorted(book[0].items(), reverse=True), sorted(book[1].items())) == (bids, asks)
        assert len(ev["b"]) == 5 and first["e"] == "depthUpdate"


def test_partial_depth_when_subscribed_then_top_n_of_true_book_every_interval() -> None:
    uvloop.run(_partial())
