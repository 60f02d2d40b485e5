"""The order connection: the exchange's WebSocket API over picows (default) and the REST API
over aiohttp (fallback and the endpoints the WS API lacks), both signed with HMAC-SHA256.

Signing (what the simulator verifies, as Binance does):
  * WS API: ``signature`` = hex HMAC-SHA256(secret, ``k=v`` of every other param incl.
    ``apiKey`` and ``timestamp``, sorted by name, joined with ``&``).
  * REST: every param in the query string, ``timestamp`` and ``recvWindow`` appended,
    ``signature`` = HMAC over that query string, appended last; API key in ``X-MBX-APIKEY``.

``send(method, params, cb)`` writes one request and returns the monotonic ns when it was written
(0 when not connected); the answer comes back as a ``Reply`` to ``cb`` exactly once per
request, or never (the caller owns the timeout). A dropped connection answers every pending
request with an ``unknown`` Reply: the order may or may not have reached the exchange.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from yarl import URL

from procs.core import log

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
_RO_JSON = ',"reduceOnly":"true"'
_BLOCK = 64  # sha256's block size (HMAC key padding)
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def plain(text: str) -> bool:
    """True when ``text`` is the same in JSON and in a signature payload (no escaping, no
    ``&``/``=``): what ``WsApiTransport.place_frame`` may put in its template as it is."""
    return bool(text) and _PLAIN.issuperset(text)

# Reply.outcome
OK = 0  # the exchange answered 2xx
REJECTED = 1  # 4xx business answer: the request was not acted on (code/msg say why)
RATE_LIMITED = 2  # 429/418: not acted on, back off
FAILED = 3  # 503 "Service Unavailable.": not acted on, counts against the breaker
UNKNOWN = 4  # timeout, dropped connection, 503 "Unknown error", 408: may or may not have acted

REST_ROUTES = {"order.place": ("POST", "/fapi/v1/order"), "order.cancel": ("DELETE", "/fapi/v1/order"),
               "order.status": ("GET", "/fapi/v1/order")}


@dataclass(slots=True)
class Reply:
    outcome: int
    http: int = 0
    data: Any = None
    code: int = 0
    msg: str = ""
    retry_after_s: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    rate_limits: list[dict] | None = None
    ts_ack: int = 0


def classify(http: int, body: Any) -> tuple[int, int, str]:
    """(outcome, code, msg) of an HTTP-style answer."""
    code, msg = 0, ""
    if isinstance(body, dict) and "code" in body and http != 200:
        try:
            code = int(body.get("code", 0))
        except (TypeError, ValueError):
            code = 0
        msg = str(body.get("msg", ""))
    if 200 <= http < 300:
        return OK, 0, ""
    if http in (429, 418):
        return RATE_LIMITED, code, msg
    if http == 503 and (code == -1001 or msg.startswith("Service Unavailable")):
        return FAILED, code, msg
    if http >= 500 or http == 408:
        return UNKNOWN, code, msg
    return REJECTED, code, msg


def _retry_after(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if v > 1e12:  # an epoch-ms timestamp (WS API ``retryAfter``)
        return max(0.0, v / 1000 - time.time())
    return v


class Credentials:
    """API key and secret; ``repr`` never shows the secret."""

    __slots__ = ("key", "_inner", "_outer")

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        # HMAC-SHA256 (RFC 2104) as two keyed sha256 states, copied per request: all C calls,
        # half the time of copying an hmac.HMAC (whose copy/update/hexdigest are Python frames)
        k = secret.encode()
        if len(k) > _BLOCK:
            k = hashlib.sha256(k).digest()
        k = k.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))

    def sign(self, payload: str) -> str:
        """hex HMAC-SHA256(secret, payload), as ``hmac.new(secret, payload, sha256).hexdigest()``."""
        i = self._inner.copy()
        i.update(payload.encode())
        o = self._outer.copy()
        o.update(i.digest())
        return o.hexdigest()

    def __repr__(self) -> str:
        return f"Credentials(key={self.key[:4]}***)"


def ws_sign(creds: Credentials, params: dict[str, str]) -> None:
    """Add apiKey and signature to WS API params (which already hold ``timestamp``)."""
    params["apiKey"] = creds.key
    params["signature"] = creds.sign("&".join([f"{k}={params[k]}" for k in sorted(params)]))


def rest_query(creds: Credentials, params: dict[str, str], recv_window_ms: int) -> str:
    q = urlencode(params)
    extra = f"timestamp={int(time.time() * 1000)}&recvWindow={recv_window_ms}"
    q = f"{q}&{extra}" if q else extra
    return f"{q}&signature={creds.sign(q)}"


Callback = Callable[[Reply], None]


class RestTransport:
    """REST client: the order calls as tasks (fallback path) and awaitable calls for the rest."""

    def __init__(self, base_url: str, creds: Credentials, recv_window_ms: int, timeout_s: float) -> None:
        self.base = base_url.rstrip("/")
        self.creds = creds
        self.recv_window_ms = recv_window_ms
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s * 4),
                                             headers={"X-MBX-APIKEY": creds.key})
        self._tasks: set[asyncio.Task] = set()

    async def call(self, method: str, path: str, params: dict[str, str] | None = None,
                   signed: bool = True) -> Reply:
        """One REST request; never raises for network errors (they are UNKNOWN replies)."""
        params = dict(params or {})
        q = rest_query(self.creds, params, self.recv_window_ms) if signed else urlencode(params)
        # encoded=True: the query goes out byte for byte as signed (no re-quoting by yarl)
        url = URL(f"{self.base}{path}" + (f"?{q}" if q else ""), encoded=True)
        try:
            async with self.session.request(method, url) as r:
                raw = await r.read()
                headers = dict(r.headers)
                status = r.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Reply(UNKNOWN, msg=repr(exc), ts_ack=time.monotonic_ns())
        ts = time.monotonic_ns()
        try:
            body = _dec.decode(raw) if raw else None
        except msgspec.DecodeError:
            body = None
        outcome, code, msg = classify(status, body)
        ra = _retry_after(headers.get("Retry-After")) if outcome == RATE_LIMITED else None
        return Reply(outcome, status, body, code, msg, ra, headers, None, ts)

    @property
    def connected(self) -> bool:
        return True

    def send(self, method: str, params: dict[str, str], cb: Callback) -> int:
        verb, path = REST_ROUTES[method]
        t = asyncio.get_running_loop().create_task(self._send(verb, path, params, cb))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return time.monotonic_ns()

    async def _send(self, verb: str, path: str, params: dict[str, str], cb: Callback) -> None:
        cb(await self.call(verb, path, params))

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.session.close()


class _WsListener(WSListener):
    def __init__(self, owner: WsApiTransport) -> None:
        self.owner = owner

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.owner._on_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.owner._on_text(frame.get_payload_as_bytes(), time.monotonic_ns())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.owner._on_disconnected()


class WsApiTransport:
    """One warm WebSocket API connection; reconnects with back-off and jitter until closed."""

    def __init__(self, url: str, creds: Credentials, reconnect_min_s: float = 0.1,
                 reconnect_max_s: float = 5.0, on_state: Callable[[bool], None] | None = None) -> None:
        self.url = url
        self.creds = creds
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
        self._key_json = _enc.encode(creds.key).decode()  # the API key as a JSON string, quoted once

    @property
    def connected(self) -> bool:
        return self.transport is not None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await ws_connect(lambda: _WsListener(self), self.url, websocket_handshake_timeout=5,
                                 enable_auto_pong=True)
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
            cb(Reply(UNKNOWN, msg="connection lost", ts_ack=now))
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
        cb = self.pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
        if cb is None:
            return  # an answer after our timeout, or to nobody
        http = int(msg.get("status", 0) or 0)
        err = msg.get("error")
        body = msg.get("result") if err is None else err
        outcome, code, text = classify(http, body)
        ra = None
        if outcome == RATE_LIMITED and isinstance(err, dict) and isinstance(err.get("data"), dict):
            ra = _retry_after(err["data"].get("retryAfter"))
        cb(Reply(outcome, http, body, code, text, ra, {}, msg.get("rateLimits"), ts))

    def send(self, method: str, params: dict[str, str], cb: Callback) -> int:
        tr = self.transport
        if tr is None:
            return 0
        params["timestamp"] = str(int(time.time() * 1000))
        ws_sign(self.creds, params)
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
                                            str(int(time.time() * 1000))))

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
        sig = self.creds.sign(f"apiKey={self.creds.key}&newClientOrderId={cid}{px_sig}&quantity={quantity}{ro_sig}"
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
        return self._write(self.by_cid_frame(rid, method, symbol, cid, str(int(time.time() * 1000))))

    def by_cid_frame(self, rid: int, method: str, symbol: str, cid: str, timestamp: str) -> bytes:
        """The request ``by_cid`` writes (``method``, ``symbol`` and ``cid`` as for ``place_frame``)."""
        sig = self.creds.sign(f"apiKey={self.creds.key}&origClientOrderId={cid}&symbol={symbol}&timestamp={timestamp}")
        return (f'{{"id":{rid},"method":"{method}","params":{{"symbol":"{symbol}","origClientOrderId":"{cid}",'
                f'"timestamp":"{timestamp}","apiKey":{self._key_json},"signature":"{sig}"}}}}').encode()

    def warm(self, symbol: str) -> int:
        """Build and sign an order.place request as ``place`` does (``place_frame``), and send
        nothing: keeps that code and the HMAC state in cache while no intent comes (execution's
        ``keep_warm_ms``). Returns the request's size."""
        return len(self.place_frame(self._next_id + 1, symbol, "BUY", "0.001", "b25-warm-0", "1.0", "GTC", False,
                                    str(int(time.time() * 1000))))

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
