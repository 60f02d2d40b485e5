"""Test helpers for the simulator: an in-loop server and a client that keeps a book the
exchange's way (buffer diffs, snapshot, drop stale, first-event rule, ``pu`` chain)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from procs.core.instruments import decimal_to_int
from procs.exchange_sim.config import GeneratorConfig, SimConfig
from procs.exchange_sim.server import SimServer


def sim_config(**over: Any) -> SimConfig:
    """A config on ephemeral ports; ``gen_*`` keys go to the generator section."""
    gen = {k[4:]: over.pop(k) for k in list(over) if k.startswith("gen_")}
    cfg = SimConfig(rest_port=0, ws_port=0, **over)
    if gen:
        cfg = msgspec.structs.replace(cfg, generator=msgspec.structs.replace(GeneratorConfig(), **gen))
    return cfg


@contextlib.asynccontextmanager
async def running_sim(**over: Any) -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    server = SimServer(sim_config(**over))
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield server, http
    finally:
        await server.stop()


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> Any:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


def book_from_depth(body: dict, ps: int = 2, qs: int = 3) -> tuple[dict[int, int], dict[int, int]]:
    bids = {decimal_to_int(p, ps): decimal_to_int(q, qs) for p, q in body["bids"]}
    asks = {decimal_to_int(p, ps): decimal_to_int(q, qs) for p, q in body["asks"]}
    return bids, asks


class SyncClient:
    """Keeps one symbol's book from ``<sym>@depth@0ms`` + ``GET /fapi/v1/depth``, resyncing on
    a ``pu`` break; counts what it saw."""

    def __init__(self, http: aiohttp.ClientSession, rest_port: int, symbol: str, ps: int = 2, qs: int = 3) -> None:
        self.http, self.rest_port, self.symbol = http, rest_port, symbol
        self.ps, self.qs = ps, qs
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last_u: int | None = None
        self.buffer: list[dict] = []
        self.synced = False
        self.breaks = 0
        self.resyncs = 0
        self.applied = 0
        self.bad_frames = 0
        self._first_pending = False

    async def snapshot(self) -> None:
        async with self.http.get(
            f"http://127.0.0.1:{self.rest_port}/fapi/v1/depth", params={"symbol": self.symbol, "limit": "1000"}
        ) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        self.bids, self.asks = book_from_depth(body, self.ps, self.qs)
        L = body["lastUpdateId"]
        pending = [e for e in self.buffer if e["u"] >= L]
        self.buffer.clear()
        self.last_u = None
        self.synced = True
        self.resyncs += 1
        self._first_pending = False
        first = True
        for ev in pending:
            if first:
                assert ev["U"] <= L <= ev["u"], (ev["U"], L, ev["u"])
                self._apply(ev)
                first = False
            else:
                self.on_event(ev)
        if first:
            self.last_u = L  # nothing buffered past the snapshot yet: first live event bridges
            self._first_pending = True

    def _apply(self, ev: dict) -> None:
        for side, levels in ((self.bids, ev["b"]), (self.asks, ev["a"])):
            for p, q in levels:
                px, qty = decimal_to_int(p, self.ps), decimal_to_int(q, self.qs)
                if qty:
                    side[px] = qty
                else:
                    side.pop(px, None)
        self.last_u = ev["u"]
        self.applied += 1

    def on_event(self, ev: dict) -> bool:
        """Apply one depth event; False when the chain broke (the caller resyncs)."""
        if not self.synced:
            self.buffer.append(ev)
            return True
        if self._first_pending:
            assert self.last_u is not None
            if ev["u"] < self.last_u:
                return True
            if not ev["U"] <= self.last_u <= ev["u"]:
                self._break()
                self.buffer.append(ev)
                return False
            self._first_pending = False
            self._apply(ev)
            return True
        if self.last_u is not None and ev["u"] <= self.last_u:
            return True  # stale (e.g. delivered out of order after a newer event): drop it
        if ev["pu"] != self.last_u:
            self._break()
            self.buffer.append(ev)
            return False
        self._apply(ev)
        return True

    def _break(self) -> None:
        self.breaks += 1
        self.synced = False


async def pump(client: SyncClient, ws: aiohttp.ClientWebSocketResponse, until_u: int | None = None,
               seconds: float = 0.5) -> None:
    """Feed frames to the client (resyncing on breaks) for a while or until it reaches until_u."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if until_u is not None and client.synced and client.last_u == until_u:
            return
        timeout = deadline - loop.time()
        if timeout <= 0:
            return
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        try:
            frame = json.loads(msg.data)
        except ValueError:
            client.bad_frames += 1
            continue
        data = frame.get("data", frame)
        if data.get("e") != "depthUpdate" or data.get("s") != client.symbol:
            continue
        if not client.on_event(data):
            await client.snapshot()
        elif not client.synced:
            await client.snapshot()
