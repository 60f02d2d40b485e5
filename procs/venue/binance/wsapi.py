"""The WebSocket API over picows: one warm connection for order.place / order.cancel /
order.status, signed by ``signing``; requests built from templates on the hot path.

``send(method, params, cb)`` writes one request and returns the monotonic ns when it was written
(0 when not connected); the answer comes back as a ``WireReply`` to ``cb`` exactly once per
request, or never (the caller owns the timeout). A dropped connection answers every pending
request with an UNKNOWN reply: the order may or may not have reached the exchange.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from procs.core import log
from procs.venue.messages import REPLY_RATE_LIMITED, REPLY_UNKNOWN

from .rest import Callback, WireReply, classify, retry_after
from .signing import Signer, ws_sign

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
_RO_JSON = ',"reduceOnly":"true"'
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def plain(text: str) -> bool:
    """True when ``text`` is the same in JSON and in a signature payload (no escaping, no
    ``&``/``=``): what ``WsApiTransport.place_frame`` may put in its template as it is."""
    return bool(text) and _PLAIN.issuperset(text)


class Listener(WSListener):
    """A picows listener that hands text frames (with their receive time) and the connection's
    ups and downs to its owner's callbacks, and answers a CLOSE by disconnecting."""

    def __init__(self, on_connected: Callable[[WSTransport], None], on_text: Callable[[bytes, int], None],
                 on_disconnected: Callable[[], None]) -> None:
        self.connected = on_connected
        self.text = on_text
        self.disconnected = on_disconnected

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.text(frame.get_payload_as_bytes(), time.monotonic_ns())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected()


class WsApiTransport:
    """One warm WebSocket API connection; reconnects with back-off and jitter until closed."""

    def __init__(self, url: str, signer: Signer, reconnect_min_s: float = 0.1,
                 reconnect_max_s: float = 5.0, on_state: Callable[[bool], None] | None = None) -> None:
        self.url = url
        self.signer = signer
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.transport: WSTransport | None = None
        self.pending: dict[int, Callback] = {}
        self._next_id = 0
        self._closing = False
        self._down = asyncio.Event()
        self.up = asyncio.Event()
        self.connects = 0
        self.on_state = on_state  # (connected) -> None
        self._task: asyncio.Task | None = None
        self._key_json = _enc.encode(signer.key).decode()  # the API key as a JSON string, quoted once

    @property
    def connected(self) -> bool:
        return self.transport is not None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await ws_connect(lambda: Listener(self._on_connected, self._on_text, self._on_disconnected), self.url,
                                 websocket_handshake_timeout=5, enable_auto_pong=True)
                attempt = 0
                await self._down.wait()
            except Exception as exc:  # refused, handshake, timeout: retry with back-off
                log.once(f"ws_api_connect:{type(exc).__name__}", "warn", "ws_api_connect_failed", url=self.url,
                         reason=repr(exc))
            if self._closing:
                break
            attempt += 1
            delay = min(self.reconnect_max_s, self.reconnect_min_s * 2 ** min(attempt - 1, 16))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    def _on_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self._down.clear()
        self.up.set()
        self.connects += 1
        log.info("ws_api_connected", url=self.url, connects=self.connects)
        if self.on_state:
            self.on_state(True)

    def _on_disconnected(self) -> None:
        was = self.transport is not None
        self.transport = None
        self.up.clear()
        self._down.set()
        pending, self.pending = self.pending, {}
        now = time.monotonic_ns()
        for cb in pending.values():
            cb(WireReply(REPLY_UNKNOWN, msg="connection lost", ts_ack=now))
        if was:
            log.warn("ws_api_disconnected", url=self.url, pending=len(pending))
            if self.on_state:
                self.on_state(False)

    def _on_text(self, payload: bytes, ts: int) -> None:
        try:
            msg = _dec.decode(payload)
        except msgspec.DecodeError:
            log.once("ws_api_bad_json", "warn", "ws_api_bad_frame", head=payload[:100].decode("utf-8", "replace"))
            return
        if not isinstance(msg, dict):
            return
        rid = msg.get("id")
        if type(rid) is not int:  # noqa: E721 - an id is an int (not a bool, not a string)
            return
        cb = self.pending.pop(rid, None)
        if cb is None:
            return  # an answer after our timeout, or to nobody
        status = msg.get("status", 0)
        http = status if type(status) is int else 0  # noqa: E721 - no status: answered as unknown
        err = msg.get("error")
        body = msg.get("result") if err is None else err
        outcome, code, text = classify(http, body)
        ra = None
        if outcome == REPLY_RATE_LIMITED and isinstance(err, dict) and isinstance(err.get("data"), dict):
            ra = retry_after(err["data"].get("retryAfter"))
        limits = msg.get("rateLimits")
        cb(WireReply(outcome, http, body, code, text, ra, {}, limits if isinstance(limits, list) else None, ts))

    def send(self, method: str, params: dict[str, str], cb: Callback) -> int:
        tr = self.transport
        if tr is None:
            return 0
        params["timestamp"] = str(self.signer.now_ms())
        ws_sign(self.signer, params)
        self._next_id += 1
        rid = self._next_id
        self.pending[rid] = cb
        data = _enc.encode({"id": rid, "method": method, "params": params})
        # stamped as the request is handed to the socket: after the write, the stamp also held
        # the time the simulator (woken by this write on loopback) ran before we got the CPU
        # back, and the simulator often read the order before the stamp
        t = time.monotonic_ns()
        tr.send(WSMsgType.TEXT, data)
        return t

    def place(self, symbol: str, side: str, quantity: str, cid: str, price: str | None, tif: str,
              reduce_only: bool, cb: Callback) -> int:
        """``send("order.place", ...)`` for a LIMIT (``price`` set) or MARKET order, the request
        built from one template (``place_frame``) instead of a params dict, a sort and a JSON
        encoder: the same bytes and signature as ``send`` gives those params."""
        rid = self._claim(cb)
        if not rid:
            return 0
        return self._write(self.place_frame(rid, symbol, side, quantity, cid, price, tif, reduce_only,
                                            str(self.signer.now_ms())))

    def _claim(self, cb: Callback) -> int:
        """A request id with ``cb`` waiting for its answer; 0 when not connected."""
        if self.transport is None:
            return 0
        self._next_id += 1
        rid = self._next_id
        self.pending[rid] = cb
        return rid

    def _write(self, data: bytes) -> int:
        """Hand a built request to the socket; its stamp, taken as in ``send``."""
        t = time.monotonic_ns()
        self.transport.send(WSMsgType.TEXT, data)  # type: ignore[union-attr]
        return t

    def place_frame(self, rid: int, symbol: str, side: str, quantity: str, cid: str, price: str | None, tif: str,
                    reduce_only: bool, timestamp: str) -> bytes:
        """The order.place request ``place`` writes: params in the order ``send`` would encode
        them, signed over ``k=v`` sorted by name. ``symbol`` and ``cid`` must need no JSON
        escaping (exchange symbols and b25 ids never do; ``plain`` checks)."""
        if price is not None:  # LIMIT: the two fields a MARKET order has not
            typ, px_sig, tif_sig = "LIMIT", f"&price={price}", f"&timeInForce={tif}"
            limit_json = f',"price":"{price}","timeInForce":"{tif}"'
        else:
            typ, px_sig, tif_sig, limit_json = "MARKET", "", "", ""
        ro_sig, ro_json = ("&reduceOnly=true", _RO_JSON) if reduce_only else ("", "")
        sig = self.signer.sign(f"apiKey={self.signer.key}&newClientOrderId={cid}{px_sig}&quantity={quantity}{ro_sig}"
                              f"&side={side}&symbol={symbol}{tif_sig}&timestamp={timestamp}&type={typ}")
        body = (f'{{"id":{rid},"method":"order.place","params":{{"symbol":"{symbol}","side":"{side}",'
                f'"quantity":"{quantity}","newClientOrderId":"{cid}","type":"{typ}"{limit_json}{ro_json},'
                f'"timestamp":"{timestamp}","apiKey":{self._key_json},"signature":"{sig}"}}}}')
        return body.encode()

    def by_cid(self, method: str, symbol: str, cid: str, cb: Callback) -> int:
        """``send(method, {"symbol": symbol, "origClientOrderId": cid}, cb)`` (order.cancel,
        order.status) built from one template (``by_cid_frame``): the same bytes and signature."""
        rid = self._claim(cb)
        if not rid:
            return 0
        return self._write(self.by_cid_frame(rid, method, symbol, cid,
                                             str(self.signer.now_ms())))

    def by_cid_frame(self, rid: int, method: str, symbol: str, cid: str, timestamp: str) -> bytes:
        """The request ``by_cid`` writes (``method``, ``symbol`` and ``cid`` as for ``place_frame``)."""
        sig = self.signer.sign(f"apiKey={self.signer.key}&origClientOrderId={cid}&symbol={symbol}&timestamp={timestamp}")
        return (f'{{"id":{rid},"method":"{method}","params":{{"symbol":"{symbol}","origClientOrderId":"{cid}",'
                f'"timestamp":"{timestamp}","apiKey":{self._key_json},"signature":"{sig}"}}}}').encode()

    def warm(self, symbol: str) -> int:
        """Build and sign an order.place request as ``place`` does (``place_frame``), and send
        nothing: keeps that code and the HMAC state in cache while no intent comes (execution's
        ``keep_warm_ms``). Returns the request's size."""
        return len(self.place_frame(self._next_id + 1, symbol, "BUY", "0.001", "b25-warm-0", "1.0", "GTC", False,
                                    str(self.signer.now_ms())))

    def forget(self, cb_owner_id: int) -> None:
        self.pending.pop(cb_owner_id, None)

    async def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.send_close()
            self.transport.disconnect()
        self._down.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 2)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
