"""The aiohttp REST side: market endpoints, the fault/stats control endpoints, and forwarding.

Served here: ``GET /fapi/v1/ping``, ``/fapi/v1/time``, ``/fapi/v1/exchangeInfo`` (plus
``b25SimSession``: which simulator process, whose account starts flat, answers),
``/fapi/v1/depth`` (from the true book); control: ``POST /sim/fault``, ``GET /sim/stats``,
``GET /sim/book?symbol=S[&limit=N]`` (the whole true book), ``GET /sim/trades[?symbol=S]`` (the market
trades the feed published, newest 200000, as ``@trade`` fields), ``POST /sim/pause``,
``POST /sim/resume`` and ``POST /sim/step?n=K`` (freeze the market source for a checkpoint,
or advance it K events at a time), ``GET /sim/trace`` (the latency trace: depth frames written
and orders received, with their monotonic ns; see ``procs.exchange_sim.trace``) and
``POST /sim/trace?enabled=true|false[&clear=true]`` (switch it; answers its status), ``GET /sim/clock``
and ``POST /sim/clock?step_ms=N`` (step the venue's wall clock, ``procs.exchange_sim.wallclock``). Every other
path goes to the trading side's ``RestHandler`` (404 with the exchange's ``-5000`` body when there
is none). REST faults (429, 5xx) and the request-weight limit apply to every exchange path, forwarded ones included; the
``/sim/*`` control paths are exempt so a test can always disarm and read counters.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from procs.core import log
from procs.core.instruments import Instrument
from procs.exchange_sim import wallclock
from procs.exchange_sim.api import RestHandler
from procs.exchange_sim.config import FaultSpec
from procs.exchange_sim.faults import Faults
from procs.exchange_sim.market.gate import SourceGate
from procs.exchange_sim.market.true_book import Market, fixed
from procs.exchange_sim.trace import Trace
from procs.venue.binance.exchange_info import SIM_SESSION_FIELD

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_JSON = "application/json"


def depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _err(status: int, code: int, msg: str, weight: int | None = None) -> web.Response:
    headers = {WEIGHT_HEADER: str(weight)} if weight is not None else None
    return web.Response(status=status, body=json.dumps({"code": code, "msg": msg}).encode(),
                        content_type=_JSON, headers=headers)


def synth_symbol_entry(ins: Instrument) -> dict:
    """A minimal exchangeInfo entry for a symbol the configured file lacks (a replayed
    recording's symbol), with tick and step at the scales inferred from the recording."""
    tick, step = fixed(1, ins.price_scale), fixed(1, ins.qty_scale)
    return {
        "symbol": ins.symbol, "pair": ins.symbol, "contractType": "PERPETUAL", "status": "TRADING",
        "pricePrecision": ins.price_scale, "quantityPrecision": ins.qty_scale, "marginAsset": "USDT",
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": tick, "minPrice": tick, "maxPrice": "1000000"},
            {"filterType": "LOT_SIZE", "stepSize": step, "minQty": step, "maxQty": "1000000"},
            {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "minQty": step, "maxQty": "1000000"},
        ],
    }


def served_exchange_info(raw: dict, market: Market, session: str) -> dict:
    """The ``GET /fapi/v1/exchangeInfo`` body: the configured one plus an entry for every symbol
    the market has that it lacks (b25 backtest gives its pipeline the same instruments)."""
    body = dict(raw)
    body["serverTime"] = market.now_ms()
    body[SIM_SESSION_FIELD] = session
    listed = {e["symbol"] for e in body.get("symbols", [])}
    extra = [synth_symbol_entry(ins) for sym, ins in market.instruments.items() if sym not in listed]
    if extra:
        body["symbols"] = list(body.get("symbols", [])) + extra
    return body


class WeightMeter:
    """Request weight used by the (single) client IP in the current minute."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.minute = 0
        self.used = 0

    def add(self, weight: int) -> int:
        m = int(time.time() // 60)
        if m != self.minute:
            self.minute, self.used = m, 0
        self.used += weight
        return self.used


class RestApp:
    """Builds the aiohttp application around the market, the faults and an optional handler."""

    def __init__(
        self, market: Market, faults: Faults, exchange_info: dict, weight_limit: int,
        rest_handler: RestHandler | None, stats: Callable[[], dict], gate: SourceGate,
        trace: Trace | None = None,
    ) -> None:
        self.market, self.faults = market, faults
        self.exchange_info = exchange_info
        # the account lives as long as the process (or, with [sim_trading] restore, as the order
        # log): exchangeInfo names the session (SIM_SESSION_FIELD), so a strategy's saved
        # positions from another one are not restored
        self.session = getattr(rest_handler, "session", "") or f"{time.time_ns():x}-{os.getpid()}"
        self.meter = WeightMeter(weight_limit)
        self.rest_handler = rest_handler
        self.stats = stats
        self.gate = gate
        self.trace = trace if trace is not None else Trace()
        self.requests: Counter[str] = Counter()
        self._fault_decoder = msgspec.json.Decoder(FaultSpec)

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/fapi/v1/ping", self.ping)
        r.add_get("/fapi/v1/time", self.time)
        r.add_get("/fapi/v1/exchangeInfo", self.info)
        r.add_get("/fapi/v1/depth", self.depth)
        r.add_post("/sim/fault", self.fault)
        r.add_get("/sim/stats", self.get_stats)
        r.add_get("/sim/book", self.book)
        r.add_get("/sim/trades", self.trades)
        r.add_post("/sim/pause", self.pause)
        r.add_post("/sim/resume", self.resume)
        r.add_post("/sim/step", self.step)
        r.add_get("/sim/clock", self.clock)
        r.add_post("/sim/clock", self.clock)
        r.add_get("/sim/trace", self.get_trace)
        r.add_post("/sim/trace", self.set_trace)
        r.add_route("*", "/{tail:.*}", self.forward)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith("/sim/"):
            return await handler(request)
        self.requests[path] += 1
        fault = self.faults.take_rest_fault()
        if fault == "rest_429":
            return _err(429, -1003, f"Too many requests; current limit is {self.meter.limit} requests per "
                        "minute. Please use the websocket for live updates to avoid polling the API.",
                        self.meter.used)
        if fault == "rest_5xx":
            status = self.faults.rest_5xx_status
            if status == 503:
                return _err(503, -1001, "Service Unavailable.", self.meter.used)
            return _err(status, -1000, "An unknown error occurred while processing the request.", self.meter.used)
        if self.meter.used > self.meter.limit and self.meter.minute == int(time.time() // 60):
            return _err(429, -1003, f"Too many requests; current limit is {self.meter.limit} requests per "
                        "minute.", self.meter.used)
        resp = await handler(request)
        if WEIGHT_HEADER not in resp.headers:
            resp.headers[WEIGHT_HEADER] = str(self.meter.used)
        return resp

    def _ok(self, body: object, weight: int) -> web.Response:
        used = self.meter.add(weight)
        return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), content_type=_JSON,
                            headers={WEIGHT_HEADER: str(used)})

    async def ping(self, request: web.Request) -> web.Response:
        return self._ok({}, 1)

    async def time(self, request: web.Request) -> web.Response:
        return self._ok({"serverTime": self.market.now_ms()}, 1)

    async def info(self, request: web.Request) -> web.Response:
        return self._ok(served_exchange_info(self.exchange_info, self.market, self.session), 1)

    async def depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "").upper()
        if not symbol:
            return _err(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol not in self.market.books:
            return _err(400, -1121, "Invalid symbol.")
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            return _err(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
        limit = next((v for v in DEPTH_LIMITS if v >= limit), 1000)
        delay = self.faults.take_snapshot_delay(symbol)
        if delay > 0:
            # a slow snapshot is taken late, so it is newer than the diffs sent meanwhile
            await asyncio.sleep(delay)
        return self._ok(self.market.depth_snapshot(symbol, limit), depth_weight(limit))

    async def fault(self, request: web.Request) -> web.Response:
        try:
            spec = self._fault_decoder.decode(await request.read())
        except msgspec.ValidationError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except msgspec.DecodeError as exc:
            return web.json_response({"error": f"invalid JSON: {exc}"}, status=400)
        return web.json_response(self.faults.arm(spec))

    async def book(self, request: web.Request) -> web.Response:
        """The true book in the depth shape, exempt from weight and faults (for checkpoints)."""
        symbol = request.query.get("symbol", "")
        if symbol not in self.market.books:
            return _err(400, -1121, "Invalid symbol.")
        limit = int(request.query.get("limit", "1000000"))
        return web.json_response(self.market.depth_snapshot(symbol, limit))

    async def trades(self, request: web.Request) -> web.Response:
        """The trade log: ``[{"s", "t", "p", "q", "m", "T"}]`` in publication order."""
        symbol = request.query.get("symbol", "")
        if symbol and symbol not in self.market.books:
            return _err(400, -1121, "Invalid symbol.")
        ins = self.market.instruments
        return web.json_response([
            {"s": s, "t": t, "p": fixed(px, ins[s].price_scale), "q": fixed(q, ins[s].qty_scale), "m": m, "T": ts}
            for s, t, px, q, m, ts in list(self.market.trade_log) if not symbol or s == symbol])

    async def clock(self, request: web.Request) -> web.Response:
        """``GET /sim/clock``: the venue's wall clock; ``POST /sim/clock?step_ms=N`` steps it by N ms
        (either way; procs/exchange_sim/wallclock.py)."""
        if request.method == "POST":
            try:
                ms = int(request.query.get("step_ms", ""))
            except ValueError:
                return web.json_response({"error": "step_ms must be an integer (ms, + or -)"}, status=400)
            wallclock.step(ms)
            log.warn("clock_stepped", step_ms=ms, offset_ms=wallclock.offset_ms())
        return web.json_response({"offset_ms": wallclock.offset_ms(), "now_ms": wallclock.wall_ms()})

    async def pause(self, request: web.Request) -> web.Response:
        self.gate.pause()
        return web.json_response({"running": False})

    async def resume(self, request: web.Request) -> web.Response:
        self.gate.resume()
        return web.json_response({"running": True})

    async def step(self, request: web.Request) -> web.Response:
        """``POST /sim/step?n=K``: while paused, let K more events through."""
        try:
            n = int(request.query.get("n", "1"))
        except ValueError:
            return web.json_response({"error": "n must be an integer"}, status=400)
        self.gate.step(n)
        return web.json_response({"running": self.gate.running, "step_budget": self.gate.budget,
                                  "stepped": self.gate.stepped})

    async def get_trace(self, request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(self.trace.snapshot(), separators=(",", ":")).encode(),
                            content_type=_JSON)

    async def set_trace(self, request: web.Request) -> web.Response:
        """``POST /sim/trace?enabled=true|false[&clear=true]``."""
        q = request.query
        flags = {}
        for name in ("enabled", "clear"):
            v = q.get(name)
            if v is None:
                continue
            if v.lower() not in ("true", "false", "1", "0"):
                return web.json_response({"error": f"{name} must be true or false"}, status=400)
            flags[name] = v.lower() in ("true", "1")
        if flags.get("clear"):
            self.trace.clear()
        if "enabled" in flags:
            self.trace.set_enabled(flags["enabled"])
        return web.json_response(self.trace.status())

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def forward(self, request: web.Request) -> web.Response:
        if self.rest_handler is None:  # the exchange's body for a route it does not have
            return _err(404, -5000, f"Path {request.path}, Method {request.method} is invalid")
        raw_body = (await request.read()).decode("utf-8", "replace")
        status, body, headers = await self.rest_handler.handle_rest(
            # the raw query as sent: the signature is over the bytes on the wire, not the decoded text
            request.method, request.path, request.raw_path.partition("?")[2], raw_body, request.headers
        )
        headers = dict(headers)
        headers.setdefault("Content-Type", _JSON)
        return web.Response(status=status, body=body, headers=headers)
