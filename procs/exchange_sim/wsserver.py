"""The picows WebSocket side: market stream connections and routing of all other paths.

Market paths: ``/stream?streams=a/b`` (combined: ``{"stream":..,"data":..}``) and
``/ws[/<stream>[/<stream>..]]`` (raw payloads), optionally under the 2026 route prefixes
``/public`` and ``/market``. Live control messages: SUBSCRIBE, UNSUBSCRIBE,
LIST_SUBSCRIPTIONS, SET_PROPERTY / GET_PROPERTY ``combined``, answered in the exchange's shapes.
Any other path is offered to the trading side's ``WsHandler`` (WebSocket API, user streams);
unclaimed paths get 404.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs, urlsplit

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

from procs.core import log
from procs.exchange_sim.api import WsHandler
from procs.exchange_sim.market.feed import Hub

_ROUTE_PREFIXES = ("/public", "/market")
MAX_STREAMS = 1024  # per connection, as on the exchange


def _is_stream(name: str) -> bool:
    sym, at, kind = name.partition("@")
    return bool(at and sym and kind) and sym == sym.lower() and " " not in name


def parse_market_path(raw_path: str) -> tuple[bool, list[str]] | None:
    """-> (combined, initial streams) for a market stream path, None for anything else."""
    parts = urlsplit(raw_path)
    path = parts.path.rstrip("/") or "/"
    for pre in _ROUTE_PREFIXES:
        if path.startswith(pre + "/"):
            path = path[len(pre):]
            break
    if path == "/stream":
        q = parse_qs(parts.query).get("streams", [""])[0]
        streams = [s for s in q.split("/") if s]
        return (True, streams) if all(_is_stream(s) for s in streams) else None
    if path == "/ws":
        # /ws?listenKey=<key> is a user-data stream, never a market connection
        return None if "listenKey" in parse_qs(parts.query) else (False, [])
    if path.startswith("/ws/"):
        streams = [s for s in path[4:].split("/") if s]
        if streams and all(_is_stream(s) for s in streams):
            return False, streams
    return None


class MarketConn(WSListener):
    """One market-stream connection: its subscriptions and the combined flag."""

    def __init__(self, hub: Hub, combined: bool, streams: list[str], max_buffer: int, max_msgs_per_s: int) -> None:
        self.hub = hub
        self.combined = combined
        self.paused = False
        self.streams: dict[str, None] = dict.fromkeys(streams)  # ordered set
        self.transport: WSTransport | None = None
        self._max_buffer = max_buffer
        self._max_msgs = max_msgs_per_s
        self._window = 0
        self._msgs = 0
        self.closed = False
        self._out: list[bytes] = []  # framed messages waiting for this loop iteration's write
        self._raw = None  # the TCP transport under picows

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self._raw = transport.underlying_transport
        self.hub.sessions.add(self)
        for s in self.streams:
            self.hub.subscribe(self, s)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self.hub.sessions.discard(self)
        self.hub.drop_session(self, self.streams)

    def pause_writing(self) -> None:
        self.hub.set_paused(self, True)

    def resume_writing(self) -> None:
        self.hub.set_paused(self, False)

    def send_bytes(self, data: bytes) -> None:
        """Queue one text message; all queued messages go out in one write when the loop next
        turns: one system call per connection and loop turn instead of one per message, at the cost of
        a frame waiting for the end of its turn (docs/decisions/028-simulator-frame-batching.md).
        Server frames are unmasked, so framing here is just the RFC 6455 header."""
        if self.closed or self._raw is None:
            return
        n = len(data)
        if n < 126:
            head = bytes((0x81, n))
        elif n < 65536:
            head = b"\x81\x7e" + n.to_bytes(2, "big")
        else:
            head = b"\x81\x7f" + n.to_bytes(8, "big")
        out = self._out
        if not out:
            asyncio.get_running_loop().call_soon(self.flush)
        out.append(head)
        out.append(data)

    def flush(self) -> None:
        out, raw = self._out, self._raw
        if not out or raw is None:
            return
        self._out = []
        if self.closed or raw.is_closing():
            # the peer is gone but picows has not called on_ws_disconnected yet: writing now
            # would only make asyncio log "write() called after connection lost"
            self.closed = True
            return
        trace = self.hub.trace
        if trace is not None:  # latency trace: stamp the depth events this write carries
            trace.writing(self)
        raw.write(b"".join(out))
        if self.paused and raw.get_write_buffer_size() > self._max_buffer:
            # the exchange drops readers that fall too far behind; so do we
            log.warn("ws_slow_client_dropped", buffered=raw.get_write_buffer_size())
            self.close()

    def close(self, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        if self.transport is not None and not self.closed:
            self.flush()
            self.closed = True
            self.transport.send_close(code)
            self.transport.disconnect()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            now = int(time.monotonic())
            if now != self._window:
                self._window, self._msgs = now, 0
            self._msgs += 1
            if self._max_msgs and self._msgs > self._max_msgs:
                log.warn("ws_client_msg_rate_exceeded", limit=self._max_msgs)
                self.close(WSCloseCode.POLICY_VIOLATION)
                return
            self._control(frame.get_payload_as_utf8_text())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def _reply(self, obj: dict) -> None:
        if self.transport is not None and not self.closed:
            self.flush()  # keep replies behind the data already queued
            self.transport.send(WSMsgType.TEXT, json.dumps(obj, separators=(",", ":")).encode())

    def _control(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError as exc:
            self._reply({"code": 3, "msg": f"Invalid JSON: {exc}"})
            return
        if not isinstance(msg, dict):
            self._reply({"code": 2, "msg": "Invalid request: expected an object"})
            return
        rid = msg.get("id")
        if rid is not None and not (isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0):
            self._reply({"code": 2, "msg": "Invalid request: request ID must be an unsigned integer", "id": rid})
            return
        method = msg.get("method")
        params = msg.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) and _is_stream(p) for p in params):
                self._reply({"code": 2, "msg": "Invalid request: invalid stream name in params", "id": rid})
                return
            if method == "SUBSCRIBE" and len(self.streams.keys() | set(params)) > MAX_STREAMS:
                self._reply({"code": 2, "msg": f"Invalid request: too many streams (max {MAX_STREAMS})", "id": rid})
                return
            for s in params:
                if method == "SUBSCRIBE":
                    if s not in self.streams:
                        self.streams[s] = None
                        self.hub.subscribe(self, s)
                elif s in self.streams:
                    del self.streams[s]
                    self.hub.unsubscribe(self, s)
            self._reply({"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply({"result": list(self.streams), "id": rid})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                self._reply({"code": 0, "msg": "Unknown property", "id": rid})
            elif method == "GET_PROPERTY":
                self._reply({"result": self.combined, "id": rid})
            elif len(params) != 2 or not isinstance(params[1], bool):
                self._reply({"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid})
            else:
                self.combined = params[1]
                self._reply({"result": None, "id": rid})
        else:
            self._reply({
                "code": 2,
                "msg": f"Invalid request: unknown variant {method!r}, expected one of SUBSCRIBE, UNSUBSCRIBE, "
                "LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY",
                "id": rid,
            })


class HandlerConn(WSListener):
    """A connection owned by the trading side's WsHandler; implements ``WsSession``."""

    def __init__(self, handler: WsHandler, path: str, registry: set[HandlerConn]) -> None:
        self.handler, self.path = handler, path
        self.registry = registry
        self.transport: WSTransport | None = None
        self.closed = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.registry.add(self)
        self.handler.ws_open(self, self.path)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.handler.ws_message(self, frame.get_payload_as_utf8_text())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        self.registry.discard(self)
        self.handler.ws_closed(self)

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.closed:
            self.transport.send(WSMsgType.TEXT, text.encode())

    def close(self, code: WSCloseCode = WSCloseCode.GOING_AWAY) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.send_close(code)
            self.transport.disconnect()


class Router:
    """picows listener factory: market paths to MarketConn, claimed paths to the WsHandler."""

    def __init__(self, hub: Hub, ws_handler: WsHandler | None, max_buffer: int, max_msgs_per_s: int) -> None:
        self.hub, self.ws_handler = hub, ws_handler
        self.max_buffer, self.max_msgs = max_buffer, max_msgs_per_s
        self.handler_conns: set[HandlerConn] = set()

    def __call__(self, request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener | None:
        raw = request.path
        path = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
        market = parse_market_path(path)
        if market is not None and len(market[1]) <= MAX_STREAMS:
            return MarketConn(self.hub, market[0], market[1], self.max_buffer, self.max_msgs)
        if self.ws_handler is not None and self.ws_handler.ws_claims(path):
            refusal = self.ws_handler.ws_refusal(path)
            if refusal is not None:
                # refused at the upgrade with the reason in the body (an unknown listenKey)
                log.warn("ws_refused", path=urlsplit(path).path[:64], reason=refusal.decode()[:120])
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(400, refusal), None)
            return HandlerConn(self.ws_handler, path, self.handler_conns)
        return None
