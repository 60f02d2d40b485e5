"""The REST API over aiohttp: the order calls when the WebSocket API is down, and the calls it
does not have (open orders, user trades, the user-data stream's key). Signed by ``signing``.

``send(method, params, cb)`` writes one order request (``REST_ROUTES``) and returns the
monotonic ns it was handed to the loop; its answer comes back as a ``WireReply`` to ``cb``
exactly once. ``call`` is the awaitable form for everything else. Network errors are never
raised: they are UNKNOWN replies (the request may or may not have reached the exchange).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
from yarl import URL

from procs.core import log
from procs.venue.messages import REPLY_FAILED, REPLY_OK, REPLY_RATE_LIMITED, REPLY_REJECTED, REPLY_UNKNOWN

from .signing import API_KEY_HEADER, CLOCK_REJECTED, TIME_PATH, Signer, clock_offset, rest_query

_dec = msgspec.json.Decoder()

# the WS API's order methods and their REST equivalents
REST_ROUTES = {"order.place": ("POST", "/fapi/v1/order"), "order.cancel": ("DELETE", "/fapi/v1/order"),
               "order.status": ("GET", "/fapi/v1/order"), "order.modify": ("PUT", "/fapi/v1/order"),
               "algoOrder.place": ("POST", "/fapi/v1/algoOrder"), "algoOrder.cancel": ("DELETE", "/fapi/v1/algoOrder"),
               # no WS API method for these
               "algoOrder.status": ("GET", "/fapi/v1/algoOrder"), "countdown": ("POST", "/fapi/v1/countdownCancelAll")}


@dataclass(slots=True)
class WireReply:
    """An answer as it came off the wire, classified (``classify``) but not yet read."""

    outcome: int  # procs.venue.messages REPLY_*
    http: int = 0
    data: Any = None  # the decoded body (the order, a list, or the error object)
    code: int = 0  # the exchange's error code
    msg: str = ""
    retry_after_s: float | None = None
    headers: dict[str, str] = field(default_factory=dict)  # REST: the usage headers are among them
    rate_limits: list[dict] | None = None  # WS API: the usage array
    ts_ack: int = 0


def classify(http: int, body: Any) -> tuple[int, int, str]:
    """(outcome, code, msg) of an HTTP-style answer (docs/binance-usdm-protocol.md "Errors"):
    2xx acted on; 429/418 rate limited; 503 "Service Unavailable." (-1001) not acted on; any
    other 5xx and 408 unknown; 4xx a business refusal."""
    code, msg = 0, ""
    if isinstance(body, dict) and "code" in body and http != 200:
        try:
            code = int(body.get("code", 0))
        except (TypeError, ValueError, OverflowError):
            code = 0
        msg = str(body.get("msg", ""))
    if 200 <= http < 300:
        return REPLY_OK, 0, ""
    if http < 100:  # no status: nothing says whether it was acted on
        return REPLY_UNKNOWN, code, msg
    if http in (429, 418):
        return REPLY_RATE_LIMITED, code, msg
    if http == 503 and (code == -1001 or msg.startswith("Service Unavailable")):
        return REPLY_FAILED, code, msg
    if http >= 500 or http == 408:
        return REPLY_UNKNOWN, code, msg
    return REPLY_REJECTED, code, msg


def retry_after(value: Any) -> float | None:
    """Seconds to wait from a ``Retry-After`` header or a WS API ``retryAfter`` (epoch ms)."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not 0 <= v < float("inf"):  # negative, NaN or infinite: not a wait
        return None
    if v > 1e12:  # an epoch-ms timestamp (WS API ``retryAfter``)
        return max(0.0, v / 1000 - time.time())
    return v


Callback = Callable[[WireReply], None]


class RestTransport:
    """REST client: the order calls as tasks (fallback path) and awaitable calls for the rest."""

    def __init__(self, base_url: str, signer: Signer, recv_window_ms: int, timeout_s: float) -> None:
        self.base = base_url.rstrip("/")
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s * 4),
                                             headers={API_KEY_HEADER: signer.key})
        self._tasks: set[asyncio.Task] = set()
        self._clock_sync: asyncio.Future[bool] | None = None
        self.clock_syncs = 0

    async def call(self, method: str, path: str, params: dict[str, str] | None = None,
                   signed: bool = True) -> WireReply:
        """One REST request; never raises for network errors (they are UNKNOWN replies). A signed
        request refused for its timestamp (-1021: the venue's clock or ours stepped; nothing was
        done) is sent once more after the clock is measured again (``sync_clock``)."""
        r = await self._call(method, path, params, signed)
        if signed and r.outcome == REPLY_REJECTED and r.code == CLOCK_REJECTED and await self.sync_clock():
            r = await self._call(method, path, params, signed)
        return r

    async def sync_clock(self) -> bool:
        """Measure the venue's clock (``GET /fapi/v1/time``) into the signer's offset; concurrent
        callers share one measurement. False when the venue did not tell its time."""
        if self._clock_sync is not None:
            return await asyncio.shield(self._clock_sync)
        self._clock_sync = asyncio.get_running_loop().create_future()
        ok = False
        try:
            sent = time.time()
            r = await self._call("GET", TIME_PATH, None, False)
            received = time.time()
            server = r.data.get("serverTime") if r.outcome == REPLY_OK and isinstance(r.data, dict) else None
            if isinstance(server, int):
                was, self.signer.offset_ms = self.signer.offset_ms, clock_offset(server, sent, received)
                self.clock_syncs += 1
                ok = True
                log.warn("venue_clock_synced", offset_ms=self.signer.offset_ms, was_ms=was,
                         round_trip_ms=round((received - sent) * 1000, 1))
            else:
                log.warn("venue_clock_sync_failed", http=r.http, code=r.code, msg=r.msg)
        finally:
            self._clock_sync.set_result(ok)
            self._clock_sync = None
        return ok

    async def _call(self, method: str, path: str, params: dict[str, str] | None, signed: bool) -> WireReply:
        params = dict(params or {})
        q = rest_query(self.signer, params, self.recv_window_ms) if signed else urlencode(params)
        # encoded=True: the query goes out byte for byte as signed (no re-quoting by yarl)
        url = URL(f"{self.base}{path}" + (f"?{q}" if q else ""), encoded=True)
        try:
            async with self.session.request(method, url) as r:
                raw = await r.read()
                headers = dict(r.headers)
                status = r.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return WireReply(REPLY_UNKNOWN, msg=repr(exc), ts_ack=time.monotonic_ns())
        ts = time.monotonic_ns()
        try:
            body = _dec.decode(raw) if raw else None
        except msgspec.DecodeError:
            body = None
        outcome, code, msg = classify(status, body)
        ra = retry_after(headers.get("Retry-After")) if outcome == REPLY_RATE_LIMITED else None
        return WireReply(outcome, status, body, code, msg, ra, headers, None, ts)

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
