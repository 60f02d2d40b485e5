"""REST side: market endpoints, weights, the sync procedure against the true book, forwarding."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import uvloop

from procs.exchange_sim.server import SimServer
from procs.venue.binance.exchange_info import SIM_SESSION_FIELD
from tests.support.sim import SyncClient, book_from_depth, pump, running_sim, sim_config


async def _market_endpoints() -> None:
    async with running_sim() as (srv, http):
        base = f"http://127.0.0.1:{srv.rest_port}"
        async with http.get(base + "/fapi/v1/ping") as r:
            assert r.status == 200 and await r.json() == {} and r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        async with http.get(base + "/fapi/v1/time") as r:
            assert abs((await r.json())["serverTime"] - srv.market.now_ms()) < 5000
        async with http.get(base + "/fapi/v1/exchangeInfo") as r:
            info = await r.json()
            btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
            pf = next(f for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")
            assert pf["tickSize"] == "0.01" and info["rateLimits"][0]["limit"] == 2400
        for limit, weight in ((5, 2), (100, 5), (500, 10), (1000, 20)):
            before = srv.market.books["BTCUSDT"].last_u
            async with http.get(base + "/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": str(limit)}) as r:
                body = await r.json()
                used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
            assert len(body["bids"]) <= limit and body["lastUpdateId"] >= before
            assert {"lastUpdateId", "E", "T", "bids", "asks"} == body.keys()
            prices = [float(p) for p, _ in body["bids"]]
            assert prices == sorted(prices, reverse=True)
            assert used >= weight
        async with http.get(base + "/fapi/v1/depth", params={"symbol": "NOPE"}) as r:
            assert r.status == 400 and (await r.json())["code"] == -1121
        async with http.get(base + "/fapi/v1/depth") as r:
            assert r.status == 400 and (await r.json())["code"] == -1102
        async with http.get(base + "/fapi/v1/order") as r:  # no trading side plugged in
            assert r.status == 404


def test_market_endpoints_when_called_then_binance_shapes_and_weight_header() -> None:
    uvloop.run(_market_endpoints())


async def _sessions() -> list[str]:
    seen = []
    for _ in range(2):  # two simulators, one after the other: two accounts that start flat
        async with running_sim() as (srv, http):
            for _ in range(2):
                async with http.get(f"http://127.0.0.1:{srv.rest_port}/fapi/v1/exchangeInfo") as r:
                    seen.append((await r.json())[SIM_SESSION_FIELD])
    return seen


def test_exchange_info_names_the_simulator_session_stable_within_one_and_new_with_the_next() -> None:
    a1, a2, b1, b2 = uvloop.run(_sessions())
    assert a1 and a1 == a2 and b1 == b2 and a1 != b1


async def _sync_equals_true_book() -> None:
    async with running_sim(gen_msg_rate=3000) as (srv, http):
        async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as ws:
            client = SyncClient(http, srv.rest_port, "BTCUSDT")
            await pump(client, ws, seconds=0.5)
            assert client.synced and client.applied > 100 and client.breaks == 0
            srv.set_running(False)
            true = srv.market.books["BTCUSDT"]
            await pump(client, ws, until_u=true.last_u, seconds=2.0)
            assert client.last_u == true.last_u
            assert client.bids == true.bids and client.asks == true.asks
            async with http.get(f"http://127.0.0.1:{srv.rest_port}/sim/book", params={"symbol": "BTCUSDT"}) as r:
                assert book_from_depth(await r.json()) == (true.bids, true.asks)


def test_sync_procedure_when_following_depth_0ms_then_book_equals_true_book() -> None:
    uvloop.run(_sync_equals_true_book())


class _Trading:
    """A stand-in trading side: echoes what the market side forwarded to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self.ws_texts: list[str] = []

    async def handle_rest(self, method: str, path: str, raw_query: str, raw_body: str,
                          headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        self.calls.append((method, path, raw_query, raw_body))
        return 200, b'{"ok":true}', {"X-MBX-ORDER-COUNT-1M": "1"}

    def ws_claims(self, path: str) -> bool:
        return path.startswith("/ws-fapi/")

    def ws_refusal(self, path: str) -> bytes | None:
        return None

    def ws_open(self, session, path: str) -> None:  # noqa: ANN001
        session.send_text('{"hello":"' + path + '"}')

    def ws_message(self, session, text: str) -> None:  # noqa: ANN001
        self.ws_texts.append(text)
        session.send_text(text.upper())

    def ws_closed(self, session) -> None:  # noqa: ANN001
        self.ws_texts.append("closed")


async def _forwarding() -> None:
    trading = _Trading()
    srv = SimServer(sim_config(), rest_handler=trading, ws_handler=trading)
    await srv.start()
    try:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{srv.rest_port}"
            async with http.delete(base + "/fapi/v1/order?symbol=BTCUSDT&orderId=1", data="timestamp=5&signature=ab",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
                assert r.status == 200 and await r.json() == {"ok": True}
                assert r.headers["X-MBX-ORDER-COUNT-1M"] == "1" and "X-MBX-USED-WEIGHT-1M" in r.headers
            assert trading.calls == [("DELETE", "/fapi/v1/order", "symbol=BTCUSDT&orderId=1", "timestamp=5&signature=ab")]
            async with http.post(base + "/sim/fault", json={"fault": "rest_429", "count": 1}) as r:
                assert r.status == 200
            async with http.get(base + "/fapi/v2/account") as r:
                assert r.status == 429 and (await r.json())["code"] == -1003
            assert len(trading.calls) == 1  # the fault answered before the trading side saw it
            async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws-fapi/v1") as ws:
                assert (await ws.receive_json(timeout=2)) == {"hello": "/ws-fapi/v1"}
                await ws.send_str('{"id":"a"}')
                assert (await ws.receive(timeout=2)).data == '{"ID":"A"}'
            for _ in range(50):
                if "closed" in trading.ws_texts:
                    break
                await asyncio.sleep(0.01)
            assert trading.ws_texts == ['{"id":"a"}', "closed"]
    finally:
        await srv.stop()


def test_trading_paths_when_handlers_plugged_then_forwarded_with_faults_applied() -> None:
    uvloop.run(_forwarding())


class _Exploding:
    def on_book_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        raise RuntimeError("matching invariant broken")

    def on_market_trade(self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool, ts_ms: int) -> None:
        pass


async def _failing_listener() -> None:
    srv = SimServer(sim_config())
    srv.market.add_listener(_Exploding())
    await srv.start()
    try:
        await asyncio.wait_for(srv.failed.wait(), 5)
        assert srv.failure == "RuntimeError: matching invariant broken"
    finally:
        await srv.stop()


def test_source_when_listener_raises_then_server_reports_failure() -> None:
    uvloop.run(_failing_listener())
