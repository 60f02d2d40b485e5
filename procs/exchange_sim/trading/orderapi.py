"""Binance USD-M order API of the simulator (REST), and ``build_trading`` that wires the trading side.

``build_trading(market, config) -> (rest_handler, ws_handler)``: the market side's server
forwards every REST path it does not serve to ``rest_handler.handle_rest`` and offers every
non-market WebSocket to ``ws_handler`` (``/ws-fapi/v1``, ``/ws/<listenKey>``,
``/private/ws/<listenKey>``, ``/private/ws?listenKey=<k>[&events=A/B]``).

Binance paths (see ``ROUTES``): ``POST/DELETE/GET /fapi/v1/order``, ``POST /fapi/v1/order/test``,
``GET /fapi/v1/openOrder``, ``/openOrders``, ``/allOrders``, ``/userTrades``,
``DELETE /fapi/v1/allOpenOrders``, ``GET /fapi/v2|v3/account``, ``/balance``, ``/positionRisk``,
``GET /fapi/v1/rateLimit/order``, ``POST /fapi/v1/leverage``, ``POST/PUT/DELETE /fapi/v1/listenKey``.
Not supported (answered with the exchange's error): hedge mode (positionSide LONG/SHORT, -4061),
GTD/RPI time in force (-1115), priceMatch (-1106), conditional types (-4120, as on Binance),
batch orders and order modify (404). selfTradePreventionMode is accepted and ignored: orders of
one account never match each other.

Simulator control paths:

* ``POST /sim/trade_fault`` with a JSON body ``{"fault": "slow_ack", "ms": 200, "count": 10}``
  (see ``procs.exchange_sim.trading.gate.Faults`` for the names; ``{"fault": "disconnect"}`` closes every
  WebSocket API connection now; ``{"fault": "clear"}``),
* ``GET /sim/trade_faults`` (armed and fired faults), ``GET /sim/order_log?from=N`` (the
  order log from entry N, the same records as the JSON-lines file).

While the market side's latency trace is on (``procs.exchange_sim.trace``), every order place / cancel
request is stamped with ``time.monotonic_ns()`` on arrival (REST and WebSocket API alike).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from procs.core import log
from procs.exchange_sim.api import MarketView
from procs.exchange_sim.trace import Trace
from procs.exchange_sim.trading import views
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.gate import Faults, RateLimiter, authenticate, too_many_requests
from procs.exchange_sim.trading.signing import ApiError, parse_params, rest_signature_ok
from procs.exchange_sim.trading.userstream import UserStreams
from procs.exchange_sim.trading.venue import Venue, mandatory
from procs.exchange_sim.trading.wsapi import TradingWs, WsApi

_JSON = {"Content-Type": "application/json"}
SIGNED, KEY = "SIGNED", "KEY"

# (method, path) -> (handler, weight, security)
ROUTES: dict[tuple[str, str], tuple[str, int, str]] = {
    ("POST", "/fapi/v1/order"): ("place", 0, SIGNED),
    ("POST", "/fapi/v1/order/test"): ("place_test", 0, SIGNED),
    ("GET", "/fapi/v1/userTrades"): ("user_trades", 5, SIGNED),
    ("DELETE", "/fapi/v1/order"): ("cancel", 1, SIGNED),
    ("GET", "/fapi/v1/order"): ("query", 1, SIGNED),
    ("GET", "/fapi/v1/openOrder"): ("open_order", 1, SIGNED),
    ("GET", "/fapi/v1/openOrders"): ("open_orders", 1, SIGNED),
    ("GET", "/fapi/v1/allOrders"): ("all_orders", 5, SIGNED),
    ("DELETE", "/fapi/v1/allOpenOrders"): ("cancel_all", 1, SIGNED),
    ("GET", "/fapi/v2/account"): ("account2", 5, SIGNED),
    ("GET", "/fapi/v3/account"): ("account3", 5, SIGNED),
    ("GET", "/fapi/v2/balance"): ("balance", 5, SIGNED),
    ("GET", "/fapi/v3/balance"): ("balance", 5, SIGNED),
    ("GET", "/fapi/v2/positionRisk"): ("position2", 5, SIGNED),
    ("GET", "/fapi/v3/positionRisk"): ("position3", 5, SIGNED),
    ("GET", "/fapi/v1/rateLimit/order"): ("rate_limit_order", 1, SIGNED),
    ("POST", "/fapi/v1/leverage"): ("leverage", 1, SIGNED),
    ("POST", "/fapi/v1/listenKey"): ("listen_new", 1, KEY),
    ("PUT", "/fapi/v1/listenKey"): ("listen_keep", 1, KEY),
    ("DELETE", "/fapi/v1/listenKey"): ("listen_close", 1, KEY),
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is not None:
        return v
    low = name.lower()
    for k, val in headers.items():
        if k.lower() == low:
            return val
    return None


def _resp(status: int, body: Any, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return status, data, {**_JSON, **headers}


class TradingRest:
    """The REST order API (a ``RestHandler``); also the handle tests and tools use for faults."""

    def __init__(self, market: MarketView, cfg: TradingConfig, venue: Venue, streams: UserStreams,
                 limiter: RateLimiter, faults: Faults, ws_api: WsApi) -> None:
        self.market = market
        self.cfg = cfg
        self.venue = venue
        self.streams = streams
        self.limiter = limiter
        self.faults = faults
        self.ws_api = ws_api
        self.trace: Trace | None = None

    def attach_trace(self, trace: Trace) -> None:
        """The market side's latency trace: orders are stamped while it is enabled."""
        self.trace = trace
        self.ws_api.trace = trace

    @property
    def order_log(self) -> list[dict[str, Any]]:
        return self.venue.order_log

    def arm_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Arm (or clear) a fault; ``disconnect`` acts at once. Returns the armed set."""
        if spec.get("fault") == "disconnect":
            closed = self.ws_api.disconnect_all()
            log.info("sim_trade_fault", fault="disconnect", closed=closed)
            return {"closed": closed, "armed": self.faults.armed}
        self.faults.arm(spec)
        log.info("sim_trade_fault", **{k: v for k, v in spec.items() if k in ("fault", "count", "ms", "scope")})
        return {"armed": self.faults.armed}

    async def handle_rest(self, method: str, path: str, raw_query: str, raw_body: str,
                          headers: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        trace = self.trace
        t_recv = time.monotonic_ns() if trace is not None and trace.enabled else 0
        method = method.upper()
        if path.startswith("/sim/"):
            return self._sim(method, path, raw_query, raw_body)
        route = ROUTES.get((method, path))
        if route is None:
            return _resp(404, {"code": -1000, "msg": f"Unknown path: {method} {path}"}, {})
        name, weight, security = route
        now = self.market.now_ms()
        params = parse_params(raw_query, raw_body)
        if t_recv and name in ("place", "cancel") and trace is not None:
            trace.order(t_recv, "rest", name, params.get("symbol", ""),
                        params.get("newClientOrderId" if name == "place" else "origClientOrderId", ""))
        if name == "open_orders" and not params.get("symbol"):
            weight = 40
        used = self.limiter.add_weight(now, weight)
        hdrs = {"X-MBX-USED-WEIGHT-1M": str(used)}
        try:
            if used > self.cfg.weight_limit_1m:
                raise too_many_requests(self.cfg)
            verify = None
            if security == SIGNED:
                sig = params.get("signature", "")
                def verify(secret: str) -> bool:
                    return rest_signature_ok(secret, raw_query, raw_body, sig)
            acct = authenticate(self.venue.accounts, self.cfg, now, _header(headers, "X-MBX-APIKEY"),
                                params, verify)
            if name in ("place", "cancel"):
                return await self._order_request(name, acct, params, hdrs, t_recv)
            return _resp(200, self._read(name, acct, params), hdrs)
        except ApiError as e:
            return _resp(e.http, e.body(), hdrs)

    async def _order_request(self, name: str, acct: Any, params: dict[str, str],
                             hdrs: dict[str, str], t_recv: int = 0) -> tuple[int, bytes, dict[str, str]]:
        now = self.market.now_ms()
        hit = self.faults.take("rest")
        if "rate_limit" in hit:
            raise too_many_requests(self.cfg)
        if "unavailable" in hit:
            raise ApiError(-1001, "Service Unavailable.", 503)
        self.venue.recv_ns = t_recv  # the order log's records of this request carry it (trace on)
        try:
            if name == "place":
                n10, n60 = self.limiter.add_order(acct.name, now)
                hdrs["X-MBX-ORDER-COUNT-10S"] = str(n10)
                hdrs["X-MBX-ORDER-COUNT-1M"] = str(n60)
                order, ack = self.venue.place(acct, params)
                body = ack if order.resp_type == "ACK" else self.venue.order_result(order)
            else:
                body = self.venue.order_result(self.venue.cancel(acct, params))
        finally:
            self.venue.recv_ns = 0
        if "error_unknown" in hit:
            raise ApiError(-1000, "Unknown error, please check your request or try again later.", 503)
        if "drop_ack" in hit:
            await asyncio.sleep((hit["drop_ack"] or 30_000) / 1000)
            raise ApiError(-1007, "Timeout waiting for response from backend server. Send status unknown; "
                                  "execution status unknown.", 408)
        if "slow_ack" in hit:
            await asyncio.sleep(hit["slow_ack"] / 1000)
        return _resp(200, body, hdrs)

    def _read(self, name: str, acct: Any, params: dict[str, str]) -> Any:
        v = self.venue
        if name == "query":
            return v.order_result(v.find(acct, params, -2013, "Order does not exist."), with_time=True)
        if name == "open_order":
            o = v.find(acct, params, -2013, "Order does not exist.")
            if not o.is_open:
                raise ApiError(-2013, "Order does not exist.")
            return v.order_result(o, with_time=True)
        if name == "open_orders":
            sym = params.get("symbol")
            if sym:
                v.instrument(sym)
            return [v.order_result(o, with_time=True) for o in v.open_orders(acct, sym)]
        if name == "place_test":
            v.place(acct, params, dry_run=True)
            return {}
        if name == "user_trades":
            return self._user_trades(acct, params)
        if name == "all_orders":
            inst = v.instrument(params.get("symbol"))
            return [v.order_result(o, with_time=True) for (s, _), o in v.orders.items()
                    if s == inst.symbol and o.account == acct.name]
        if name == "cancel_all":
            v.cancel_all(acct, v.instrument(params.get("symbol")).symbol)
            return {"code": 200, "msg": "The operation of cancel all open order is done."}
        if name in ("account2", "account3"):
            return views.account(v, acct, 2 if name == "account2" else 3)
        if name == "balance":
            return views.balance(v, acct)
        if name in ("position2", "position3"):
            return views.position_risk(v, acct, params.get("symbol"), 2 if name == "position2" else 3)
        if name == "rate_limit_order":
            return [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                     "limit": self.cfg.order_limit_10s},
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                     "limit": self.cfg.order_limit_1m}]
        if name == "leverage":
            sym = v.instrument(params.get("symbol")).symbol
            try:
                lev = int(mandatory(params, "leverage"))
            except ValueError:
                raise ApiError(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed."
                               ) from None
            if not 1 <= lev <= 125:
                raise ApiError(-4028, "Leverage is not valid")
            acct.leverage = lev  # one leverage per account in this simple cross-margin model
            return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sym}
        if name == "listen_new":
            return {"listenKey": self.streams.create(acct.name)}
        if name == "listen_keep":
            return {"listenKey": self.streams.keepalive(acct.name, params.get("listenKey"))}
        if name == "listen_close":
            self.streams.delete(acct.name, params.get("listenKey"))
            return {}
        raise ApiError(-1000, f"unrouted {name}")

    def _user_trades(self, acct: Any, params: dict[str, str]) -> list[dict[str, Any]]:
        sym = self.venue.instrument(params.get("symbol")).symbol
        try:
            limit = min(1000, int(params.get("limit", "500")))
            from_id = int(params["fromId"]) if "fromId" in params else None
            start = int(params.get("startTime", "0"))
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            raise ApiError(-1102, "Mandatory parameter 'limit/fromId/startTime/endTime' was not sent, was "
                                  "empty/null, or malformed.") from None
        rows = self.venue.user_trades.get((acct.name, sym), [])
        out = [r for r in rows if (from_id is None or r["id"] >= from_id) and r["time"] >= start
               and (end is None or r["time"] <= end)]
        # Newest `limit` unless paging forward from an id, as the exchange does.
        return out[:limit] if from_id is not None else out[-limit:]

    def _sim(self, method: str, path: str, raw_query: str, raw_body: str) -> tuple[int, bytes, dict[str, str]]:
        try:
            if method == "POST" and path == "/sim/trade_fault":
                try:
                    spec = json.loads(raw_body) if raw_body.strip().startswith("{") else parse_params(raw_query,
                                                                                                   raw_body)
                except ValueError:
                    raise ApiError(-1102, "fault body must be JSON") from None
                return _resp(200, self.arm_fault(spec), {})
            if method == "GET" and path == "/sim/trade_faults":
                return _resp(200, {"armed": self.faults.armed, "fired": self.faults.fired}, {})
            if method == "GET" and path == "/sim/order_log":
                start = int(dict(parse_qsl(raw_query)).get("from", "0"))
                return _resp(200, self.venue.order_log[start:], {})
        except ApiError as e:
            return _resp(e.http, e.body(), {})
        return _resp(404, {"code": -1000, "msg": f"Unknown path: {method} {path}"}, {})


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def build_trading(market: MarketView, config: TradingConfig) -> tuple[TradingRest, TradingWs]:
    """The trading side on top of a market: (REST handler, WebSocket handler)."""
    expiry_clock = market.now_ms if config.listen_key_clock == "market" else _wall_ms
    streams = UserStreams(market.now_ms, config.listen_key_ttl_ms, expiry_clock)
    venue = Venue(market, config, streams.emit, streams.wants)
    limiter = RateLimiter(config)
    faults = Faults()
    ws_api = WsApi(market, config, venue, limiter, faults)
    market.add_listener(venue)
    rest = TradingRest(market, config, venue, streams, limiter, faults, ws_api)
    return rest, TradingWs(ws_api, streams)
