"""The user-data stream: a listen key over REST, events over WebSocket ``<base>/ws/<listenKey>``,
keepalive PUT, reconnect (a new key when the old one expired). Each event reaches the owner as
an ``OrderReport`` (``orders.stream_report``), or None for an event that reports no order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import msgspec
from picows import WSTransport, ws_connect

from procs.core import log
from procs.venue.messages import REPLY_OK, OrderReport

from .orders import stream_report
from .rest import RestTransport
from .wsapi import Listener

_dec = msgspec.json.Decoder()
class UserStream:
    """Delivers every user-data event to ``on_report(report or None, ts_recv)`` (None: an event
    that reports no order; a replay's barrier still counts it); ``on_connected(n)`` after each
    (re)connect so the owner can catch up on what it may have missed."""

    def __init__(self, rest: RestTransport, base_url: str, on_report: Callable[[OrderReport | None, int], None],
                 on_connected: Callable[[int], None], keepalive_s: float = 1800.0,
                 reconnect_min_s: float = 0.1, reconnect_max_s: float = 5.0) -> None:
        self.rest = rest
        self.base = base_url.rstrip("/")
        self.on_report = on_report
        self.on_connected = on_connected
        self.keepalive_s = keepalive_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.key = ""
        self.transport: WSTransport | None = None
        self.up = asyncio.Event()
        self._down = asyncio.Event()
        self._closing = False
        self.connects = 0
        self.bad_events = 0  # events that were not JSON objects or held a malformed order (logged once)
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._keepalive())]

    async def _new_key(self) -> str:
        r = await self.rest.call("POST", "/fapi/v1/listenKey", signed=False)
        if r.outcome != REPLY_OK or not isinstance(r.data, dict):
            raise ConnectionError(f"listenKey refused: http={r.http} code={r.code} msg={r.msg}")
        return str(r.data["listenKey"])

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                self.key = await self._new_key()
                await ws_connect(lambda: Listener(self._connected, self._text, self._disconnected),
                                 f"{self.base}/ws/{self.key}",
                                 websocket_handshake_timeout=5)
                attempt = 0
                await self._down.wait()
            except Exception as exc:  # refused, handshake, key refused: retry with back-off
                log.once(f"stream_connect:{type(exc).__name__}", "warn", "user_stream_connect_failed",
                         url=self.base, reason=repr(exc))
            if self._closing:
                break
            attempt += 1
            delay = min(self.reconnect_max_s, self.reconnect_min_s * 2 ** min(attempt - 1, 16))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _keepalive(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.keepalive_s)
            if self.key:
                r = await self.rest.call("PUT", "/fapi/v1/listenKey", {"listenKey": self.key}, signed=False)
                if r.outcome != REPLY_OK:
                    log.warn("listen_key_keepalive_failed", http=r.http, code=r.code)
                    if self.transport is not None:
                        self.transport.disconnect()  # reconnect with a fresh key

    def _connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self._down.clear()
        self.up.set()
        self.connects += 1
        log.info("user_stream_connected", connects=self.connects)
        self.on_connected(self.connects)

    def _disconnected(self) -> None:
        self.transport = None
        self.up.clear()
        self._down.set()
        if not self._closing:
            log.warn("user_stream_disconnected")

    def _text(self, payload: bytes, ts: int) -> None:
        try:
            ev = _dec.decode(payload)
        except msgspec.DecodeError as exc:
            self._bad(payload, f"not JSON: {exc}", ts)
            return
        if not isinstance(ev, dict):
            self._bad(payload, "not an object", ts)
            return
        if ev.get("e") == "listenKeyExpired":
            log.warn("listen_key_expired")
            if self.transport is not None:
                self.transport.disconnect()
            return
        try:
            report = stream_report(ev)
        except ValueError as exc:
            self._bad(payload, str(exc), ts)
            return
        self.on_report(report, ts)

    def _bad(self, payload: bytes, reason: str, ts: int) -> None:
        """A malformed event: counted, logged once, and passed on as one that reports no order
        (the order it may have been about is queried when the engine misses its state)."""
        self.bad_events += 1
        log.once("user_stream_bad_event", "warn", "user_stream_bad_event", reason=reason[:200],
                 head=payload[:100].decode("utf-8", "replace"), count="bad_events counts the rest")
        self.on_report(None, ts)

    async def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.send_close()
            self.transport.disconnect()
        self._down.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
