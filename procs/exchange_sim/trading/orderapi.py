"""Binance USD-M REST API of the simulator's trading side, and ``build_trading`` that wires it.

``build_trading(market, config) -> (rest_handler, ws_handler)``: the market side's server
forwards every REST path it does not serve to ``rest_handler.handle_rest`` and offers every
non-market WebSocket to ``ws_handler`` (``/ws-fapi/v1`` and the user-data stream URL forms of
``procs.exchange_sim.trading.userstream``).

Every path in ``ROUTES`` answers with the documented fields, errors and request weight (the
weight is in the table; orders also count on the 10 s / 1 min order counters): orders
(new, test, modify, cancel, query, lists, cancel-all, batches, amendment history,
countdownCancelAll), conditional orders on ``/fapi/v1/order`` and the algo service, account and
positions (v2/v3), account settings (``procs.exchange_sim.trading.settings``) and listen keys.
Hedge mode (positionSide LONG/SHORT) is supported; GTD/RPI time in force (-1115) and priceMatch
(-1106) are not. selfTradePreventionMode is accepted and ignored: orders of one account never
match each other. Any other path answers 404 ``{"code": -5000, "msg": "Path /x, Method GET is
invalid"}``, the exchange's own body for an unknown route, and is logged once (method and path).

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
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from procs.core import log
from procs.exchange_sim.api import MarketView
from procs.exchange_sim.trace import Trace
from procs.exchange_sim.trading import settings, views
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.formats import algo_json
from procs.exchange_sim.trading.gate import Faults, RateLimiter, authenticate, too_many_requests
from procs.exchange_sim.trading.order_log import OrderLog
from procs.exchange_sim.trading.signing import ApiError, parse_params, rest_signature_ok
from procs.exchange_sim.trading.userstream import UserStreams
from procs.exchange_sim.trading.venue import Venue, mandatory, newest
from procs.exchange_sim.trading.wsapi import TradingWs, WsApi
from procs.exchange_sim.wallclock import wall_ms
from procs.venue.binance.signing import ws_param_text

_JSON = {"Content-Type": "application/json"}
SIGNED, KEY = "SIGNED", "KEY"
MAX_BATCH_ORDERS = 5  # batchOrders entries per POST / PUT [D:Place-Multiple-Orders, Modify-Multiple-Orders]
MAX_BATCH_CANCEL = 10  # orderIdList / origClientOrderIdList entries [D:Cancel-Multiple-Orders]

# (method, path) -> (handler, IP weight, security); weights from each endpoint's page
ROUTES: dict[tuple[str, str], tuple[str, int, str]] = {
    ("POST", "/fapi/v1/order"): ("place", 0, SIGNED),
    ("POST", "/fapi/v1/order/test"): ("place_test", 0, SIGNED),
    ("PUT", "/fapi/v1/order"): ("modify", 0, SIGNED),
    ("DELETE", "/fapi/v1/order"): ("cancel", 1, SIGNED),
    ("GET", "/fapi/v1/order"): ("query", 1, SIGNED),
    ("GET", "/fapi/v1/openOrder"): ("open_order", 1, SIGNED),
    ("GET", "/fapi/v1/openOrders"): ("open_orders", 1, SIGNED),  # 40 without symbol
    ("GET", "/fapi/v1/allOrders"): ("all_orders", 5, SIGNED),
    ("DELETE", "/fapi/v1/allOpenOrders"): ("cancel_all", 1, SIGNED),
    ("GET", "/fapi/v1/userTrades"): ("user_trades", 5, SIGNED),
    ("GET", "/fapi/v1/orderAmendment"): ("amendments", 1, SIGNED),
    ("POST", "/fapi/v1/batchOrders"): ("batch_place", 5, SIGNED),
    ("PUT", "/fapi/v1/batchOrders"): ("batch_modify", 5, SIGNED),
    ("DELETE", "/fapi/v1/batchOrders"): ("batch_cancel", 1, SIGNED),
    ("POST", "/fapi/v1/countdownCancelAll"): ("countdown", 10, SIGNED),
    ("POST", "/fapi/v1/algoOrder"): ("algo_place", 0, SIGNED),
    ("DELETE", "/fapi/v1/algoOrder"): ("algo_cancel", 1, SIGNED),
    ("GET", "/fapi/v1/algoOrder"): ("algo_query", 1, SIGNED),
    ("GET", "/fapi/v1/openAlgoOrders"): ("algo_open", 1, SIGNED),  # 40 without symbol
    ("GET", "/fapi/v1/allAlgoOrders"): ("algo_all", 5, SIGNED),
    ("DELETE", "/fapi/v1/algoOpenOrders"): ("algo_cancel_all", 1, SIGNED),
    ("GET", "/fapi/v2/account"): ("account2", 5, SIGNED),
    ("GET", "/fapi/v3/account"): ("account3", 5, SIGNED),
    ("GET", "/fapi/v1/accountConfig"): ("account_config", 5, SIGNED),
    ("GET", "/fapi/v2/balance"): ("balance", 5, SIGNED),
    ("GET", "/fapi/v3/balance"): ("balance", 5, SIGNED),
    ("GET", "/fapi/v2/positionRisk"): ("position2", 5, SIGNED),
    ("GET", "/fapi/v3/positionRisk"): ("position3", 5, SIGNED),
    ("GET", "/fapi/v1/rateLimit/order"): ("rate_limit_order", 1, SIGNED),
    ("GET", "/fapi/v1/symbolConfig"): ("symbol_config", 5, SIGNED),
    ("GET", "/fapi/v1/positionSide/dual"): ("position_mode", 30, SIGNED),
    ("POST", "/fapi/v1/positionSide/dual"): ("set_position_mode", 1, SIGNED),
    ("POST", "/fapi/v1/leverage"): ("leverage", 1, SIGNED),
    ("POST", "/fapi/v1/marginType"): ("margin_type", 1, SIGNED),
    ("GET", "/fapi/v1/commissionRate"): ("commission_rate", 20, SIGNED),
    ("GET", "/fapi/v1/leverageBracket"): ("leverage_bracket", 1, SIGNED),
    ("GET", "/fapi/v1/multiAssetsMargin"): ("multi_assets", 30, SIGNED),
    ("POST", "/fapi/v1/multiAssetsMargin"): ("set_multi_assets", 1, SIGNED),
    ("GET", "/fapi/v1/income"): ("income", 30, SIGNED),
    ("POST", "/fapi/v1/listenKey"): ("listen_new", 1, KEY),
    ("PUT", "/fapi/v1/listenKey"): ("listen_keep", 1, KEY),
    ("DELETE", "/fapi/v1/listenKey"): ("listen_close", 1, KEY),
}
# Requests that count on the account's order counters: (10 s count, 1 min count) [D:New-Order,
# Modify-Order, Place-Multiple-Orders, New-Algo-Order]
ORDER_COUNTS = {"place": (1, 1), "modify": (1, 1), "batch_place": (5, 1), "batch_modify": (5, 1),
                "algo_place": (1, 1)}
# Requests that go through the order-request faults (slow_ack, drop_ack, ...)
FAULTED = ("place", "cancel", "modify", "algo_place", "algo_cancel")


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


def unknown_path_body(method: str, path: str) -> dict[str, Any]:
    """The exchange's answer (HTTP 404) for a route it does not have."""
    return {"code": -5000, "msg": f"Path {path}, Method {method} is invalid"}


def _json_list(params: dict[str, str], name: str) -> list[Any]:
    try:
        value = json.loads(mandatory(params, name))
    except ValueError:
        value = None
    if not isinstance(value, list):
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                       ) from None


Row = TypeVar("Row")


def history_page(rows: list[Row], params: dict[str, str], id_param: str, id_of: Callable[[Row], int],
                 time_of: Callable[[Row], int]) -> list[Row]:
    """A history query's page (allOrders, userTrades, allAlgoOrders): the rows (oldest first)
    within ``startTime``..``endTime``; from the id ``id_param`` on, the first ``limit``; without
    it, the newest ``limit``. ``limit`` is 500 by default, at most 1000 [D:All-Orders]."""
    limit = _int(params, "limit", 500)
    if limit is None or limit < 1:
        raise ApiError(-1130, "Invalid data sent for a parameter: limit must be 1..1000.")
    limit = min(1000, limit)
    from_id = _int(params, id_param)
    start, end = _int(params, "startTime"), _int(params, "endTime")
    out = [r for r in rows if (from_id is None or id_of(r) >= from_id) and (start is None or time_of(r) >= start)
           and (end is None or time_of(r) <= end)]
    return out[:limit] if from_id is not None else out[-limit:]


def _at_most_7_days(params: dict[str, str]) -> None:
    start, end = _int(params, "startTime"), _int(params, "endTime")
    if start is not None and end is not None and end - start > 7 * 86_400_000:
        raise ApiError(-4165, "Invalid time interval: Maximum time interval is 7 days")


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
        self.unknown_paths: set[tuple[str, str]] = set()  # each logged once
        self._reads: dict[str, Callable[[Any, dict[str, str]], Any]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("_r_")}

    def attach_trace(self, trace: Trace) -> None:
        """The market side's latency trace: orders are stamped while it is enabled."""
        self.trace = trace
        self.ws_api.trace = trace
        self.streams.trace = trace

    def on_timer(self) -> None:
        """Run by the market side every 10 ms: listen-key expiry and dead-man countdowns."""
        self.streams.sweep()
        for account, symbol, canceled in self.venue.on_timer():
            log.warn("countdown_cancel_all", account=account, symbol=symbol, canceled=canceled)

    @property
    def order_log(self) -> OrderLog:
        return self.venue.order_log

    @property
    def session(self) -> str:
        """The venue session a restore kept ("" = this process's own, named by the REST app)."""
        return self.venue.session

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
            return self.unknown(method, path)
        name, weight, security = route
        now = self.market.now_ms()
        params = parse_params(raw_query, raw_body)
        if t_recv and name in ("place", "cancel") and trace is not None:
            trace.order(t_recv, "rest", name, params.get("symbol", ""),
                        params.get("newClientOrderId" if name == "place" else "origClientOrderId", ""))
        if name in ("open_orders", "algo_open") and not params.get("symbol"):
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
            counts = ORDER_COUNTS.get(name)
            if counts is not None:
                n10, n60 = self.limiter.add_order(acct.name, now, *counts)
                hdrs["X-MBX-ORDER-COUNT-10S"] = str(n10)
                hdrs["X-MBX-ORDER-COUNT-1M"] = str(n60)
            if name in FAULTED:
                return await self._order_request(name, acct, params, hdrs, t_recv)
            return _resp(200, self._reads[name](acct, params), hdrs)
        except ApiError as e:
            return _resp(e.http, e.body(), hdrs)

    def unknown(self, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
        """404 with the exchange's body; the method and path are logged the first time."""
        if (method, path) not in self.unknown_paths and len(self.unknown_paths) < 1000:
            self.unknown_paths.add((method, path))
            log.warn("unknown_path", method=method, path=path[:200])
        return _resp(404, unknown_path_body(method, path), {})

    async def _order_request(self, name: str, acct: Any, params: dict[str, str],
                             hdrs: dict[str, str], t_recv: int = 0) -> tuple[int, bytes, dict[str, str]]:
        hit = self.faults.take("rest")
        if "rate_limit" in hit:
            raise too_many_requests(self.cfg)
        if "unavailable" in hit:
            raise ApiError(-1001, "Service Unavailable.", 503)
        self.venue.recv_ns = t_recv  # the order log's records of this request carry it (trace on)
        try:
            body = self.order_action(name, acct, params)
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

    def order_action(self, name: str, acct: Any, params: dict[str, str]) -> Any:
        """Place, cancel or modify an order or an algo order (REST and the WebSocket API)."""
        v = self.venue
        if name == "place":
            order, ack = v.place(acct, params)
            return ack if order.resp_type == "ACK" else v.order_result(order)
        if name == "cancel":
            return v.order_result(v.cancel(acct, params))
        if name == "modify":
            return v.order_result(v.amend(acct, params))
        if name == "algo_place":
            algo = v.place_algo(acct, params)
            return algo_json(self.market.instruments[algo.symbol], algo, full=False)
        algo = v.cancel_algo(acct, params)
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}

    # -- reads and settings (one method per route name) ------------------------------------
    def _r_query(self, acct: Any, params: dict[str, str]) -> Any:
        return self.venue.order_result(self.venue.find(acct, params, -2013, "Order does not exist."), with_time=True)

    def _r_open_order(self, acct: Any, params: dict[str, str]) -> Any:
        o = self.venue.find(acct, params, -2013, "Order does not exist.")
        if not o.is_open:
            raise ApiError(-2013, "Order does not exist.")
        return self.venue.order_result(o, with_time=True)

    def _r_open_orders(self, acct: Any, params: dict[str, str]) -> Any:
        v = self.venue
        sym = params.get("symbol")
        if sym:
            v.instrument(sym)
        return [v.order_result(o, with_time=True) for o in v.open_orders(acct, sym)]

    def _r_place_test(self, acct: Any, params: dict[str, str]) -> Any:
        self.venue.place(acct, params, dry_run=True)
        return {}

    def _r_all_orders(self, acct: Any, params: dict[str, str]) -> Any:
        """``GET /fapi/v1/allOrders``: from ``orderId`` on, else the newest; at most 7 days [D:All-Orders]."""
        v = self.venue
        sym = v.instrument(params.get("symbol")).symbol
        _at_most_7_days(params)
        rows = [o for (s, _), o in v.orders.items() if s == sym and o.account == acct.name]
        return [v.order_result(o, with_time=True)
                for o in history_page(rows, params, "orderId", lambda o: o.order_id, lambda o: o.time_ms)]

    def _r_cancel_all(self, acct: Any, params: dict[str, str]) -> Any:
        self.venue.cancel_all(acct, self.venue.instrument(params.get("symbol")).symbol)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _r_user_trades(self, acct: Any, params: dict[str, str]) -> list[dict[str, Any]]:
        sym = self.venue.instrument(params.get("symbol")).symbol
        rows = newest(self.venue.user_trades.get((acct.name, sym), []), self.cfg.keep_trades)
        return history_page(rows, params, "fromId", lambda r: r["id"], lambda r: r["time"])

    def _r_amendments(self, acct: Any, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/orderAmendment``: newest first, default 50, at most 100 [D:Get-Order-Modify-History]."""
        o = self.venue.find(acct, params, -2013, "Order does not exist.")
        limit = _int(params, "limit", 50) or 50
        if not 1 <= limit <= 100:
            raise ApiError(-1130, "Invalid data sent for a parameter: limit must be 1..100.")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        rows = [r for r in self.venue.amendment_log.get((o.symbol, o.order_id), [])
                if (start is None or r["time"] >= start) and (end is None or r["time"] <= end)]
        return list(reversed(rows))[:limit]

    def _batch_entries(self, params: dict[str, str]) -> list[dict[str, str]]:
        entries = _json_list(params, "batchOrders")
        if not 1 <= len(entries) <= MAX_BATCH_ORDERS:
            raise ApiError(-4082, f"Invalid number of batch place orders: {len(entries)}")
        if not all(isinstance(e, dict) for e in entries):
            raise ApiError(-1102, "Mandatory parameter 'batchOrders' was not sent, was empty/null, or malformed.")
        return [{k: ws_param_text(v) for k, v in e.items()} for e in entries]

    def _each(self, entries: list[Any], action: Callable[[Any], Any]) -> list[Any]:
        """One answer per entry, in the list's order: the order or ``{code, msg}``."""
        out = []
        for e in entries:
            try:
                out.append(action(e))
            except ApiError as err:
                out.append({"code": err.code, "msg": err.msg})
        return out

    def _r_batch_place(self, acct: Any, params: dict[str, str]) -> list[Any]:
        return self._each(self._batch_entries(params), lambda e: self.order_action("place", acct, e))

    def _r_batch_modify(self, acct: Any, params: dict[str, str]) -> list[Any]:
        return self._each(self._batch_entries(params), lambda e: self.order_action("modify", acct, e))

    def _r_batch_cancel(self, acct: Any, params: dict[str, str]) -> list[Any]:
        sym = self.venue.instrument(params.get("symbol")).symbol
        if params.get("orderIdList"):
            ids, key = _json_list(params, "orderIdList"), "orderId"
        elif params.get("origClientOrderIdList"):
            ids, key = _json_list(params, "origClientOrderIdList"), "origClientOrderId"
        else:
            raise ApiError(-1102, "Param 'origClientOrderIdList' or 'orderIdList' must be sent, but both were "
                                  "empty/null!")
        if len(ids) > MAX_BATCH_CANCEL:
            raise ApiError(-4032, "Exceed maximum cancel order size.")
        return self._each(ids, lambda i: self.order_action("cancel", acct, {"symbol": sym, key: str(i)}))

    def _r_countdown(self, acct: Any, params: dict[str, str]) -> dict[str, Any]:
        sym = self.venue.instrument(params.get("symbol")).symbol
        ms = _int(params, "countdownTime")
        if ms is None or ms < 0:
            raise ApiError(-1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, or malformed.")
        self.venue.countdown(acct, sym, ms)
        return {"symbol": sym, "countdownTime": str(ms)}

    def _algo_rows(self, algos: list[Any]) -> list[dict[str, Any]]:
        return [algo_json(self.market.instruments[a.symbol], a) for a in algos]

    def _r_algo_query(self, acct: Any, params: dict[str, str]) -> dict[str, Any]:
        a = self.venue.find_algo(acct, params, -2013, "Order does not exist.")
        return algo_json(self.market.instruments[a.symbol], a)

    def _r_algo_open(self, acct: Any, params: dict[str, str]) -> list[dict[str, Any]]:
        sym = params.get("symbol")
        if sym:
            self.venue.instrument(sym)
        return self._algo_rows(self.venue.open_algos(acct, sym))

    def _r_algo_all(self, acct: Any, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /fapi/v1/allAlgoOrders``: from ``algoId`` on, else the newest; at most 7 days [D:Query-All-Algo-Orders]."""
        sym = self.venue.instrument(params.get("symbol")).symbol
        _at_most_7_days(params)
        rows = [a for a in self.venue.algos.values() if a.symbol == sym and a.account == acct.name]
        return self._algo_rows(history_page(rows, params, "algoId", lambda a: a.algo_id, lambda a: a.create_ms))

    def _r_algo_cancel_all(self, acct: Any, params: dict[str, str]) -> dict[str, Any]:
        self.venue.cancel_all_algos(acct, self.venue.instrument(params.get("symbol")).symbol)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _r_account2(self, acct: Any, params: dict[str, str]) -> Any:
        return views.account(self.venue, acct, 2)

    def _r_account3(self, acct: Any, params: dict[str, str]) -> Any:
        return views.account(self.venue, acct, 3)

    def _r_account_config(self, acct: Any, params: dict[str, str]) -> dict[str, Any]:
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "dualSidePosition": acct.dual_side, "updateTime": 0, "multiAssetsMargin": acct.multi_assets,
                "tradeGroupId": -1}

    def _r_balance(self, acct: Any, params: dict[str, str]) -> Any:
        return views.balance(self.venue, acct)

    def _r_position2(self, acct: Any, params: dict[str, str]) -> Any:
        return views.position_risk(self.venue, acct, params.get("symbol"), 2)

    def _r_position3(self, acct: Any, params: dict[str, str]) -> Any:
        return views.position_risk(self.venue, acct, params.get("symbol"), 3)

    def _r_rate_limit_order(self, acct: Any, params: dict[str, str]) -> Any:
        return [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": self.cfg.order_limit_10s},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.cfg.order_limit_1m}]

    def _r_symbol_config(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.symbol_config(self.venue, acct, params)

    def _r_position_mode(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.position_mode(acct)

    def _r_set_position_mode(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.set_position_mode(self.venue, acct, params)

    def _r_leverage(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.set_leverage(self.venue, acct, params)

    def _r_margin_type(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.set_margin_type(self.venue, acct, params)

    def _r_commission_rate(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.commission_rate(self.venue, params)

    def _r_leverage_bracket(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.leverage_bracket(self.venue, params)

    def _r_multi_assets(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.multi_assets(acct)

    def _r_set_multi_assets(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.set_multi_assets(self.venue, acct, params)

    def _r_income(self, acct: Any, params: dict[str, str]) -> Any:
        return settings.income(self.venue, acct, params)

    def _r_listen_new(self, acct: Any, params: dict[str, str]) -> Any:
        return {"listenKey": self.streams.create(acct.name)}

    def _r_listen_keep(self, acct: Any, params: dict[str, str]) -> Any:
        return {"listenKey": self.streams.keepalive(acct.name, params.get("listenKey"))}

    def _r_listen_close(self, acct: Any, params: dict[str, str]) -> Any:
        self.streams.delete(acct.name, params.get("listenKey"))
        return {}

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
                return _resp(200, self.venue.order_log.records(start), {})
        except ApiError as e:
            return _resp(e.http, e.body(), {})
        return self.unknown(method, path)


def build_trading(market: MarketView, config: TradingConfig, exchange_info: dict | None = None
                  ) -> tuple[TradingRest, TradingWs]:
    """The trading side on top of a market: (REST handler, WebSocket handler). ``exchange_info``
    (the raw body) gives each symbol's ``triggerProtect`` and MAX_NUM_ALGO_ORDERS."""
    expiry_clock = market.now_ms if config.listen_key_clock == "market" else wall_ms
    streams = UserStreams(market.now_ms, config.listen_key_ttl_ms, expiry_clock)
    symbol_info = {e["symbol"]: e for e in (exchange_info or {}).get("symbols", []) if "symbol" in e}
    venue = Venue(market, config, streams.emit, streams.wants, symbol_info,
                  clock_ms=market.now_ms if config.countdown_clock == "market" else wall_ms)
    limiter = RateLimiter(config)
    faults = Faults()
    ws_api = WsApi(market, config, venue, limiter, faults)
    if config.restore:
        from .restore import restore

        venue.session = restore(venue, config.order_log).session
    market.add_listener(venue)
    rest = TradingRest(market, config, venue, streams, limiter, faults, ws_api)
    ws_api.rest = rest
    return rest, TradingWs(ws_api, streams)
