"""User-data stream conformance over real sockets: every URL form of the protocol doc (section F)
delivers NEW -> TRADE (FILLED) for one order; a connection naming an unknown key is refused with
the reason, never served as market data; an unkept key gets listenKeyExpired from the timer."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import aiohttp
import msgspec
import pytest
import uvloop

from procs.exchange_sim.server import SimServer
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.orderapi import build_trading
from procs.venue.binance.signing import sign
from tests.support.sim import sim_config
from tests.support.trading import KEY, SECRET, SYM

FORMS = ["/ws/{k}", "/ws?listenKey={k}", "/private/ws/{k}", "/private/ws?listenKey={k}",
         "/private/ws?listenKey={k}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE", "/stream?streams={k}"]


async def _server(**trading: object) -> SimServer:
    srv = SimServer(sim_config())
    rest, ws = build_trading(srv.market, TradingConfig(**trading), srv.exchange_info)  # type: ignore[arg-type]
    srv.set_handlers(rest, ws)
    await srv.start()
    return srv


async def _signed(http: aiohttp.ClientSession, srv: SimServer, method: str, path: str, **params: object) -> dict:
    params["timestamp"] = int(time.time() * 1000)
    q = urlencode(params)
    async with http.request(method, f"http://127.0.0.1:{srv.rest_port}{path}?{q}&signature={sign(SECRET, q)}",
                            headers={"X-MBX-APIKEY": KEY}) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


async def _listen_key(http: aiohttp.ClientSession, srv: SimServer) -> str:
    async with http.post(f"http://127.0.0.1:{srv.rest_port}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": KEY}) as r:
        return (await r.json())["listenKey"]


async def _order_events(ws: aiohttp.ClientWebSocketResponse, order_id: int) -> list[tuple[str, str]]:
    """(x, X) of the order's ORDER_TRADE_UPDATEs until it is FILLED (unwrapping /stream frames)."""
    seen: list[tuple[str, str]] = []
    while not seen or seen[-1][1] != "FILLED":
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        event = frame.get("data", frame)
        if event.get("e") == "ORDER_TRADE_UPDATE" and event["o"]["i"] == order_id:
            seen.append((event["o"]["x"], event["o"]["X"]))
    return seen


async def _upgrade_status(srv: SimServer, path: str) -> tuple[int, bytes]:
    """Status line and body of a raw WebSocket upgrade request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.ws_port)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


async def _conformance() -> None:
    srv = await _server()
    try:
        async with aiohttp.ClientSession() as http:
            key = await _listen_key(http, srv)
            conns = [await http.ws_connect(f"http://127.0.0.1:{srv.ws_port}{form.format(k=key)}") for form in FORMS]
            order = await _signed(http, srv, "POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET",
                                  quantity="0.01")
            for form, ws in zip(FORMS, conns, strict=True):
                seen = await _order_events(ws, order["orderId"])
                assert seen[0] == ("NEW", "NEW") and seen[-1] == ("TRADE", "FILLED"), (form, seen)
                assert all(x == "TRADE" for x, _ in seen[1:]), (form, seen)
            # the wrapped form names the key as its stream
            combined = conns[-1]
            await _signed(http, srv, "POST", "/fapi/v1/leverage", symbol=SYM, leverage=7)
            while True:
                frame = msgspec.json.decode((await combined.receive(timeout=10)).data)
                if frame["data"]["e"] == "ACCOUNT_CONFIG_UPDATE":
                    assert frame["stream"] == key and frame["data"]["ac"] == {"s": SYM, "l": 7}
                    break
            for ws in conns:
                await ws.close()
            # an unknown key is refused at the upgrade with the reason, on every form
            for form in FORMS:
                status, body = await _upgrade_status(srv, form.format(k="f" * 64))
                assert status == 400 and json.loads(body) == {"code": -1125, "msg": "This listenKey does not exist."}
            with pytest.raises(aiohttp.WSServerHandshakeError) as ei:
                await http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws?listenKey=nope")
            assert ei.value.status == 400
            # market data still comes on /ws and /stream
            async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/stream?streams=btcusdt@depth@0ms") as m:
                frame = json.loads((await m.receive(timeout=10)).data)
                assert frame["stream"] == "btcusdt@depth@0ms" and frame["data"]["e"] == "depthUpdate"
    finally:
        await srv.stop()


def test_every_user_stream_url_form_delivers_the_order_events_and_unknown_keys_are_refused() -> None:
    uvloop.run(_conformance())


async def _expiry() -> None:
    srv = await _server(listen_key_ttl_ms=400)
    try:
        async with aiohttp.ClientSession() as http:
            key = await _listen_key(http, srv)
            async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/private/ws/{key}") as ws:
                # nothing else happens on the account: the simulator's timer sends the expiry
                msg = json.loads((await ws.receive(timeout=10)).data)
                assert msg["e"] == "listenKeyExpired" and msg["listenKey"] == key
            status, _ = await _upgrade_status(srv, f"/ws/{key}")
            assert status == 400
    finally:
        await srv.stop()


def test_unkept_listen_key_expires_on_the_timer_with_listen_key_expired() -> None:
    uvloop.run(_expiry())
