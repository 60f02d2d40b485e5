"""WebSocket API of the simulator (``/ws-fapi/v1``) and the trading side's WebSocket dispatcher.

Methods: ``order.place``, ``order.modify``, ``order.cancel``, ``order.status``, ``algoOrder.place``,
``algoOrder.cancel``, ``session.logon|status|logout`` [D:websocket-api]. Requests ``{"id": ..,
"method": "order.place", "params": {..., "apiKey", "timestamp", "signature"}}``; the signature is HMAC-SHA256 over every param except ``signature`` sorted by
name (``k=v`` joined by ``&``). After ``session.logon`` a request may omit apiKey/signature
(it still needs ``timestamp``). Answers ``{"id", "status": 200, "result", "rateLimits"}`` or
``{"id", "status": 4xx/5xx, "error": {"code", "msg"}, "rateLimits"}``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from procs.exchange_sim.api import MarketView, WsSession
from procs.exchange_sim.trace import Trace
from procs.exchange_sim.trading.accounts import Account
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.gate import Faults, RateLimiter, authenticate, too_many_requests
from procs.exchange_sim.trading.signing import ApiError, ws_signature_ok
from procs.exchange_sim.trading.userstream import UserStreams
from procs.exchange_sim.trading.venue import Venue
from procs.venue.binance.signing import ws_param_text

WS_API_PATH = "/ws-fapi/v1"
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
_WEIGHTS = {"order.place": 0, "order.cancel": 1, "order.modify": 1, "order.status": 1, "algoOrder.place": 0,
            "algoOrder.cancel": 1, "session.logon": 2, "session.status": 2, "session.logout": 2}
# method -> the REST order action it shares (procs.exchange_sim.trading.orderapi.TradingRest.order_action)
_ORDER_ACTIONS = {"order.place": "place", "order.cancel": "cancel", "order.modify": "modify",
                  "algoOrder.place": "algo_place", "algoOrder.cancel": "algo_cancel"}
_ORDER_COUNTED = ("order.place", "order.modify", "algoOrder.place")


class WsApi:
    """Order entry over WebSocket, sharing the venue, limits and faults with the REST API."""

    def __init__(self, market: MarketView, cfg: TradingConfig, venue: Venue, limiter: RateLimiter,
                 faults: Faults) -> None:
        self.market = market
        self.cfg = cfg
        self.venue = venue
        self.limiter = limiter
        self.faults = faults
        self.sessions: dict[int, WsSession] = {}
        self.logged_on: dict[int, Account] = {}
        self.trace: Trace | None = None  # the latency trace (TradingRest.attach_trace)
        self.rest: Any = None  # the TradingRest whose order_action the order methods share

    def open(self, session: WsSession) -> None:
        self.sessions[id(session)] = session

    def closed(self, session: WsSession) -> bool:
        self.logged_on.pop(id(session), None)
        return self.sessions.pop(id(session), None) is not None

    def disconnect_all(self) -> int:
        sessions = list(self.sessions.values())
        for s in sessions:
            self.closed(s)
            s.close()
        return len(sessions)

    def _send(self, session: WsSession, msg: dict[str, Any]) -> None:
        if id(session) in self.sessions:
            session.send_text(_enc.encode(msg).decode())

    def message(self, session: WsSession, text: str) -> None:
        trace = self.trace
        t_recv = time.monotonic_ns() if trace is not None and trace.enabled else 0
        try:
            req = _dec.decode(text)
        except msgspec.DecodeError:
            self._send(session, {"id": None, "status": 400,
                                 "error": {"code": -1102, "msg": "Request is not valid JSON."}})
            return
        if not isinstance(req, dict):
            self._send(session, {"id": None, "status": 400, "error": {"code": -1102, "msg": "Invalid request."}})
            return
        rid = req.get("id")
        method = req.get("method")
        params = req.get("params") or {}
        if t_recv and trace is not None and method in ("order.place", "order.cancel") and isinstance(params, dict):
            trace.order(t_recv, "ws", method[6:], str(params.get("symbol", "")),
                        str(params.get("newClientOrderId" if method == "order.place" else "origClientOrderId", "")))
        now = self.market.now_ms()
        account_name = ""
        try:
            if method not in _WEIGHTS or not isinstance(params, dict):
                raise ApiError(-1102, f"Unknown method or malformed params: {method!r}")
            used = self.limiter.add_weight(now, _WEIGHTS[method])
            if used > self.cfg.weight_limit_1m:
                raise too_many_requests(self.cfg)
            acct = self._auth(session, params, now)
            account_name = acct.name
            str_params = {k: ws_param_text(v) for k, v in params.items()}
            if method == "session.logon":
                self.logged_on[id(session)] = acct
                result: Any = {"apiKey": acct.api_key, "authorizedSince": now, "connectedSince": now,
                               "returnRateLimits": True, "serverTime": now}
            elif method == "session.status":
                result = {"apiKey": acct.api_key, "serverTime": now}
            elif method == "session.logout":
                self.logged_on.pop(id(session), None)
                result = {"apiKey": None, "serverTime": now}
            elif method == "order.status":
                result = self.venue.order_result(
                    self.venue.find(acct, str_params, -2013, "Order does not exist."), with_time=True)
            else:
                self.venue.recv_ns = t_recv  # the order log's records of this request carry it
                try:
                    self._order(session, rid, method, acct, str_params, now)
                finally:
                    self.venue.recv_ns = 0
                return
            self._reply(session, rid, account_name, result)
        except ApiError as e:
            self._error(session, rid, account_name, e)

    def _auth(self, session: WsSession, params: dict[str, Any], now: int) -> Account:
        key = params.get("apiKey")
        if key is None and id(session) in self.logged_on:
            acct = self.logged_on[id(session)]
            # Logged-on sessions skip the signature but keep the timing rule.
            authenticate(self.venue.accounts, self.cfg, now, acct.api_key, {"signature": "-", **params},
                         lambda _secret: True)
            return acct
        sig = str(params.get("signature", ""))
        return authenticate(self.venue.accounts, self.cfg, now, key, params,
                            lambda secret: ws_signature_ok(secret, params, sig))

    def _order(self, session: WsSession, rid: Any, method: str, acct: Account, params: dict[str, str],
               now: int) -> None:
        hit = self.faults.take("ws")
        if "rate_limit" in hit:
            raise too_many_requests(self.cfg)
        if "unavailable" in hit:
            raise ApiError(-1001, "Service Unavailable.", 503)
        if method in _ORDER_COUNTED:
            self.limiter.add_order(acct.name, now)
        result = self.rest.order_action(_ORDER_ACTIONS[method], acct, params)
        if "error_unknown" in hit:
            raise ApiError(-1000, "Unknown error, please check your request or try again later.", 503)
        if "drop_ack" in hit:
            return
        if "disconnect_on_order" in hit:
            self.closed(session)
            session.close()
            return
        if "slow_ack" in hit and hit["slow_ack"] > 0:
            asyncio.get_running_loop().call_later(hit["slow_ack"] / 1000, self._reply, session, rid, acct.name,
                                                  result)
            return
        self._reply(session, rid, acct.name, result)

    def _reply(self, session: WsSession, rid: Any, account: str, result: Any) -> None:
        trace = self.trace
        if trace is not None and trace.enabled and isinstance(result, dict) and "clientOrderId" in result:
            trace.answer("ws", str(result["clientOrderId"]), str(result.get("status", "")))
        self._send(session, {"id": rid, "status": 200, "result": result,
                             "rateLimits": self.limiter.rate_limits(account, self.market.now_ms())})

    def _error(self, session: WsSession, rid: Any, account: str, e: ApiError) -> None:
        self._send(session, {"id": rid, "status": e.http, "error": {"code": e.code, "msg": e.msg},
                             "rateLimits": self.limiter.rate_limits(account, self.market.now_ms())})


class TradingWs:
    """The trading side's ``WsHandler``: WebSocket API sessions and user-data streams."""

    def __init__(self, api: WsApi, streams: UserStreams) -> None:
        self.api = api
        self.streams = streams

    def ws_claims(self, path: str) -> bool:
        return urlsplit(path).path.rstrip("/") == WS_API_PATH or self.streams.claims(path)

    def ws_refusal(self, path: str) -> bytes | None:
        if urlsplit(path).path.rstrip("/") == WS_API_PATH:
            return None
        return self.streams.refusal(path)

    def ws_open(self, session: WsSession, path: str) -> None:
        if urlsplit(path).path.rstrip("/") == WS_API_PATH:
            self.api.open(session)
        else:
            self.streams.open(session, path)

    def ws_message(self, session: WsSession, text: str) -> None:
        if id(session) in self.api.sessions:
            self.api.message(session, text)
        # User-data streams take no client messages.

    def ws_closed(self, session: WsSession) -> None:
        if not self.api.closed(session):
            self.streams.closed(session)
