"""``OrderGateway``: execution's orders on Binance USD-M.

Requests go over the WebSocket API while it is up and over REST while it is not (each request
that falls back calls ``on_fallback``); order.place / order.cancel / order.status on the WS API
are built from one template each (``WsApiTransport.place`` / ``by_cid``) when the symbol and the
client order id need no escaping. Every answer reaches the caller as a ``Reply`` in b25's
words: the outcome, a REJECT_* reason for a refusal (the exchange's code beside it, for the
log), the order as an ``OrderReport``, and the usage the exchange reported against its limits.
The user-data stream delivers ``OrderReport``s; open orders, user trades and the recovery's
awaited cancel and query go over REST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial

from procs.core import log
from procs.core import messages as M
from procs.venue.messages import (
    CANCELED,
    REPLY_FAILED,
    REPLY_OK,
    REPLY_REJECTED,
    REPLY_UNKNOWN,
    Fill,
    OrderReport,
    Reply,
    VenueError,
)

from .config import BinanceUsdmConfig
from .orders import (
    ORDER_TYPE,
    SIDE,
    TIF,
    WORKING_TYPE,
    algo_report,
    algo_reports,
    callback_rate,
    fill,
    order_report,
    order_reports,
    reject_reason,
)
from .rest import REST_ROUTES, RestTransport, WireReply, classify
from .signing import CLOCK_REJECTED, Signer
from .usage import from_headers, from_rate_limits
from .userstream import UserStream
from .wsapi import WsApiTransport, plain

ReplyCallback = Callable[[Reply], None]


def place_params(symbol: str, side: int, tif: int, qty: str, price: str | None, cid: str,
                 reduce_only: bool) -> dict[str, str]:
    """The params of a new order (a LIMIT when ``price`` is given, with ``tif``; else MARKET)."""
    params = {"symbol": symbol, "side": SIDE[side], "quantity": qty, "newClientOrderId": cid}
    if price is not None:
        params["type"] = ORDER_TYPE[M.LIMIT]
        params["price"] = price
        params["timeInForce"] = TIF[tif]
    else:
        params["type"] = ORDER_TYPE[M.MARKET]
    if reduce_only:
        params["reduceOnly"] = "true"
    return params


def json_list(items: list[str]) -> str:
    """A list parameter as the exchange takes it: a JSON array of strings, no spaces."""
    return "[" + ",".join(f'"{i}"' for i in items) + "]"


def batch_replies(w: WireReply, n: int) -> list[Reply]:
    """A batch answer (a list with an order or an error object per entry) as one Reply per
    entry; a batch refused, failed or unanswered as a whole gives ``n`` of that one Reply."""
    if w.outcome != REPLY_OK or not isinstance(w.data, list) or len(w.data) != n:
        one = normalise(w if w.outcome != REPLY_OK else WireReply(REPLY_UNKNOWN, w.http, None, 0,
                                                                   "batch answer of another shape", ts_ack=w.ts_ack))
        return [one] * n
    usage = normalise(WireReply(REPLY_OK, w.http, None, headers=w.headers, ts_ack=w.ts_ack)).usage
    out = []
    for entry in w.data:
        if isinstance(entry, dict) and "code" in entry and "orderId" not in entry:
            outcome, code, msg = classify(400, entry)
            out.append(Reply(outcome=outcome, reason=reject_reason(code), venue_code=code, msg=msg, usage=usage,
                             ts_ack=w.ts_ack))
        else:
            out.append(Reply(outcome=REPLY_OK, report=_report_or_none(entry), usage=usage, ts_ack=w.ts_ack))
        usage = []  # counted once
    return out


def algo_normalise(w: WireReply) -> Reply:
    """An algo endpoint's answer in b25's words (the cancel's answer names the order only: no report)."""
    r = normalise(w)
    r.report = None
    if r.outcome == REPLY_OK and isinstance(w.data, dict) and "algoStatus" in w.data:
        try:
            r.report = algo_report(w.data)
        except ValueError as exc:  # as _report_or_none: logged once, the engine queries again
            log.once("bad_order_answer", "warn", "bad_order_answer", reason=str(exc)[:200])
    return r


def algo_canceled(w: WireReply, symbol: str, cid: str) -> Reply:
    """The algo cancel's answer (``{algoId, clientAlgoId, code: "200"}``: the order is canceled)."""
    r = normalise(w)
    if r.outcome == REPLY_OK and isinstance(w.data, dict):
        r.report = OrderReport(client_order_id=cid, order_id=int(w.data.get("algoId") or 0), symbol=symbol,
                               status=CANCELED, conditional=True)
    return r


def _report_or_none(data: object) -> OrderReport | None:
    """The order an answer holds; None when it holds none, or one with a malformed number (logged
    once; it changes nothing: the engine queries an order it gets no word on)."""
    if not isinstance(data, dict):
        return None
    try:
        return order_report(data)
    except ValueError as exc:
        log.once("bad_order_answer", "warn", "bad_order_answer", reason=str(exc)[:200])
        return None


def normalise(w: WireReply) -> Reply:
    """A wire answer in b25's words."""
    oc = w.outcome
    if oc == REPLY_OK:
        reason = 0
    elif oc == REPLY_FAILED:
        reason = M.REJECT_UNAVAILABLE  # classify: "Service Unavailable.", not acted on
    elif oc == REPLY_REJECTED:
        reason = reject_reason(w.code)
    else:
        reason = 0
    usage = from_rate_limits(w.rate_limits) if w.rate_limits else from_headers(w.headers) if w.headers else []
    report = _report_or_none(w.data) if oc == REPLY_OK else None
    return Reply(outcome=oc, reason=reason, venue_code=w.code, msg=w.msg, report=report,
                 retry_after_s=w.retry_after_s, usage=usage, ts_ack=w.ts_ack)


class OrderGateway:
    """``procs.venue.protocols.OrderGateway`` over the WS API (REST as fallback) and REST."""

    # (request weight, orders) each request spends against the exchange's limits
    place_cost = (0, 1)
    cancel_cost = (1, 0)
    query_cost = (1, 0)
    modify_cost = (0, 1)  # [D:Modify-Order]: 1 on each order-count limit, 0 IP weight
    open_orders_cost = (40, 0)  # all symbols
    # DELETE /fapi/v1/batchOrders: at most 10 ids, weight 1 for the lot [D:Cancel-Multiple-Orders]
    # against 1 per single cancel: cheaper from 2 orders up (docs/decisions/038-amend-batch-dead-man.md)
    batch_cancel_max = 10
    batch_cancel_cost = (1, 0)
    dead_man_cost = (10, 0)  # POST /fapi/v1/countdownCancelAll [D:Auto-Cancel-All-Open-Orders]
    conditional_cost = (0, 1)  # POST /fapi/v1/algoOrder [D:New-Algo-Order]

    def __init__(self, cfg: BinanceUsdmConfig, signer: Signer, *, prefer_ws: bool = True,
                 request_timeout_s: float = 2.0, reconnect_min_s: float = 0.1, reconnect_max_s: float = 5.0,
                 on_connection: Callable[[bool], None] | None = None, rest: RestTransport | None = None) -> None:
        self.cfg = cfg
        self.rest = rest if rest is not None else RestTransport(cfg.rest_url, signer, cfg.recv_window_ms,
                                                                request_timeout_s)
        self.ws: WsApiTransport | None = None
        if prefer_ws and cfg.ws_api_url:
            self.ws = WsApiTransport(cfg.ws_api_url, signer, reconnect_min_s, reconnect_max_s, on_state=on_connection)
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.stream: UserStream | None = None
        self.on_fallback: Callable[[], None] = lambda: None
        self._plain: dict[str, bool] = {}  # symbol -> fits the WS API templates
        self._tasks: set[asyncio.Task] = set()

    # -- the order requests (hot path) ------------------------------------------------------
    def _transport(self) -> WsApiTransport | RestTransport:
        ws = self.ws
        if ws is not None:
            if ws.connected:
                return ws
            self.on_fallback()
        return self.rest

    def _fits(self, symbol: str) -> bool:
        ok = self._plain.get(symbol)
        if ok is None:
            ok = self._plain[symbol] = plain(symbol)
        return ok

    def place(self, symbol: str, side: int, order_type: int, tif: int, qty: str, price: str | None, cid: str,
              reduce_only: bool, cb: ReplyCallback) -> int:
        """Send a new order (a LIMIT when ``price`` is given, with ``tif``; else MARKET); the
        monotonic ns it was written, or 0 when nothing could be written."""
        tr = self._transport()
        if tr is self.ws and self._fits(symbol) and plain(cid):
            done = partial(self._answer, cb, "order.place", (symbol, side, tif, qty, price, cid, reduce_only))
            return tr.place(symbol, SIDE[side], qty, cid, price, TIF[tif] if price is not None else "",  # type: ignore[union-attr]
                            reduce_only, done)
        return tr.send("order.place", place_params(symbol, side, tif, qty, price, cid, reduce_only),
                       partial(self._answer, cb, "", None))

    def cancel(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        """Cancel an order by its client order id."""
        return self._by_cid("order.cancel", symbol, cid, cb)

    def query(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        """Ask for an order's state by its client order id."""
        return self._by_cid("order.status", symbol, cid, cb)

    def modify(self, symbol: str, side: int, cid: str, qty: str, price: str, cb: ReplyCallback) -> int:
        """Amend a resting LIMIT order: WS API ``order.modify``, REST ``PUT /fapi/v1/order`` while
        the WS API is down (the exchange wants side, quantity and price every time)."""
        return self._transport().send("order.modify", {"symbol": symbol, "side": SIDE[side], "quantity": qty,
                                                       "price": price, "origClientOrderId": cid},
                                      partial(self._answer, cb, "", None))

    def cancel_batch(self, symbol: str, cids: list[str], cb: Callable[[list[Reply]], None]) -> int:
        """``DELETE /fapi/v1/batchOrders`` (the WS API has no batch cancel): one ``Reply`` per id."""
        if not 0 < len(cids) <= self.batch_cancel_max:
            raise ValueError(f"cancel_batch takes 1..{self.batch_cancel_max} ids: got {len(cids)}")
        params = {"symbol": symbol, "origClientOrderIdList": json_list(cids)}
        t = asyncio.get_running_loop().create_task(self._batch(params, len(cids), cb))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return time.monotonic_ns()

    async def _batch(self, params: dict[str, str], n: int, cb: Callable[[list[Reply]], None]) -> None:
        w = await self.rest.call("DELETE", "/fapi/v1/batchOrders", params)
        cb(batch_replies(w, n))

    # -- conditional orders: the algo service [D:New-Algo-Order] (live USD-M answers -4120 for
    # these types on /fapi/v1/order, decision 031) ----------------------------------------------
    def place_conditional(self, symbol: str, side: int, order_type: int, qty: str, trigger_price: str | None,
                          callback_bps: int, on_mark: bool, cid: str, reduce_only: bool, cb: ReplyCallback) -> int:
        """WS API ``algoOrder.place``, REST ``POST /fapi/v1/algoOrder`` while the WS API is down."""
        params = {"algoType": "CONDITIONAL", "symbol": symbol, "side": SIDE[side], "type": ORDER_TYPE[order_type],
                  "quantity": qty, "workingType": WORKING_TYPE[on_mark], "clientAlgoId": cid}
        if order_type == M.TRAILING_STOP_MARKET:
            params["callbackRate"] = callback_rate(callback_bps)
            if trigger_price is not None:
                params["activatePrice"] = trigger_price
        elif trigger_price is not None:
            params["triggerPrice"] = trigger_price
        if reduce_only:
            params["reduceOnly"] = "true"
        return self._transport().send("algoOrder.place", params, partial(self._algo_answer, cb))

    def cancel_conditional(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        return self._transport().send("algoOrder.cancel", {"symbol": symbol, "clientAlgoId": cid},
                                      partial(self._algo_cancel_answer, cb, symbol, cid))

    @staticmethod
    def _algo_cancel_answer(cb: ReplyCallback, symbol: str, cid: str, w: WireReply) -> None:
        cb(algo_canceled(w, symbol, cid))

    def query_conditional(self, symbol: str, cid: str, cb: ReplyCallback) -> int:
        return self.rest.send("algoOrder.status", {"symbol": symbol, "clientAlgoId": cid},
                              partial(self._algo_answer, cb))

    @staticmethod
    def _algo_answer(cb: ReplyCallback, w: WireReply) -> None:
        cb(algo_normalise(w))

    async def open_conditionals(self) -> list[OrderReport]:
        r = await self.rest.call("GET", "/fapi/v1/openAlgoOrders")
        if r.outcome == REPLY_OK and isinstance(r.data, list):
            try:  # whole or not at all, as open_orders: a list read in part makes orders look vanished
                return algo_reports(r.data)
            except ValueError as exc:
                raise VenueError(f"open conditional orders not understood: {exc}") from None
        raise VenueError(f"open conditional orders not listed: http={r.http} code={r.code} msg={r.msg}")

    async def query_conditional_now(self, symbol: str, cid: str) -> Reply:
        return algo_normalise(await self.rest.call("GET", "/fapi/v1/algoOrder", {"symbol": symbol, "clientAlgoId": cid}))

    async def cancel_conditional_now(self, symbol: str, cid: str) -> Reply:
        return algo_canceled(await self.rest.call("DELETE", "/fapi/v1/algoOrder", {"symbol": symbol,
                                                                                   "clientAlgoId": cid}), symbol, cid)

    def arm_dead_man(self, symbol: str, countdown_ms: int, cb: ReplyCallback) -> int:
        """``POST /fapi/v1/countdownCancelAll`` (the exchange checks it about every 10 ms)."""
        return self.rest.send("countdown", {"symbol": symbol, "countdownTime": str(int(countdown_ms))},
                              partial(self._answer, cb, "", None))

    def _by_cid(self, method: str, symbol: str, cid: str, cb: ReplyCallback) -> int:
        tr = self._transport()
        if tr is self.ws and self._fits(symbol) and plain(cid):
            return tr.by_cid(method, symbol, cid, partial(self._answer, cb, method, (symbol, cid)))  # type: ignore[union-attr]
        return tr.send(method, {"symbol": symbol, "origClientOrderId": cid}, partial(self._answer, cb, "", None))

    def _answer(self, cb: ReplyCallback, method: str, args: tuple | None, w: WireReply) -> None:
        """A WS API request refused for its timestamp (-1021: nothing was done) goes again over
        REST once the clock is measured again (REST sends it once more itself if it must)."""
        if args is not None and w.outcome == REPLY_REJECTED and w.code == CLOCK_REJECTED:
            params = place_params(*args) if method == "order.place" else {"symbol": args[0], "origClientOrderId": args[1]}
            task = asyncio.get_running_loop().create_task(self._after_clock(cb, method, params))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        cb(normalise(w))

    async def _after_clock(self, cb: ReplyCallback, method: str, params: dict[str, str]) -> None:
        await self.rest.sync_clock()
        verb, path = REST_ROUTES[method]
        cb(normalise(await self.rest.call(verb, path, params)))

    def warm(self, symbol: str, qty: str, price: str, cid: str) -> int:
        """Build and sign the order.cancel and order.place requests a buy of ``qty`` at ``price``
        would send, and send nothing: keeps that code and the HMAC state in cache while no intent
        comes (execution's ``keep_warm_ms``). Returns the place request's size (0 without a WS
        API connection object or for a symbol the templates do not take)."""
        ws = self.ws
        if ws is None or not self._fits(symbol):
            return 0
        ts = str(ws.signer.now_ms())
        ws.by_cid_frame(0, "order.cancel", symbol, cid, ts)  # the cancel that usually follows
        return len(ws.place_frame(0, symbol, SIDE[M.BUY], qty, cid, price, TIF[M.GTC], False, ts))

    # -- the calls recovery and catch-up await ----------------------------------------------
    async def open_orders(self) -> list[OrderReport]:
        """Every open order of the account; VenueError when the exchange does not list them."""
        r = await self.rest.call("GET", "/fapi/v1/openOrders")
        if r.outcome == REPLY_OK:
            try:
                return order_reports(r.data)
            except ValueError as exc:
                raise VenueError(f"open orders not understood: {exc}") from None
        raise VenueError(f"open orders not listed: http={r.http} code={r.code} msg={r.msg}")

    async def user_trades(self, symbol: str) -> list[Fill] | None:
        """The account's recent trades in ``symbol`` (None when they cannot be read now)."""
        r = await self.rest.call("GET", "/fapi/v1/userTrades", {"symbol": symbol, "limit": "1000"})
        if r.outcome != REPLY_OK or not isinstance(r.data, list):
            return None
        out = []
        for t in r.data:
            try:
                out.append(fill(t))
            except (KeyError, TypeError, ValueError) as exc:
                log.once(f"bad_user_trade:{symbol}", "warn", "bad_user_trade", symbol=symbol, reason=repr(exc))
        return out

    async def cancel_now(self, symbol: str, cid: str) -> Reply:
        """Cancel over REST and wait for the answer (recovery: an order b25 does not know)."""
        return normalise(await self.rest.call("DELETE", "/fapi/v1/order", {"symbol": symbol, "origClientOrderId": cid}))

    async def query_now(self, symbol: str, cid: str) -> Reply:
        """Ask for an order over REST and wait for the answer (recovery)."""
        return normalise(await self.rest.call("GET", "/fapi/v1/order", {"symbol": symbol, "origClientOrderId": cid}))

    # -- connections ------------------------------------------------------------------------
    def start(self, on_report: Callable[[OrderReport | None, int], None], on_connected: Callable[[int], None]) -> None:
        """Open the WS API and the user-data stream (each reconnects by itself until closed).
        ``on_report(report, ts_recv)`` gets every stream event (None: one that reports no order);
        ``on_connected(n)`` each (re)connect of the stream."""
        if self.ws is not None:
            self.ws.start()
        self.stream = UserStream(self.rest, self.cfg.ws_stream_url, on_report, on_connected,
                                 self.cfg.user_stream_keepalive_s, self.reconnect_min_s, self.reconnect_max_s)
        self.stream.start()

    async def wait_up(self, ws_timeout_s: float = 2.0, stream_timeout_s: float = 5.0) -> None:
        """Wait (bounded) for the WS API and the stream to connect; say which did not."""
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.up.wait(), ws_timeout_s)
            except TimeoutError:
                log.warn("ws_api_not_up", url=self.cfg.ws_api_url, detail="reconciling over REST")
        if self.stream is not None:
            try:
                await asyncio.wait_for(self.stream.up.wait(), stream_timeout_s)
            except TimeoutError:
                log.warn("user_stream_not_up", url=self.cfg.ws_stream_url)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self.stream is not None:
            await self.stream.close()
        if self.ws is not None:
            await self.ws.close()
        await self.rest.close()
