"""The simulated venue: order entry rules, amends, conditional orders, fills into accounts,
user-data events, the order log and the dead-man countdowns.

Shared by the REST order API and the WebSocket API, so both apply exactly the same rules. The
venue is the ``MarketListener`` of the market side: it forwards book and trade events to the
per-symbol engines, books the resulting fills, and feeds trades and mark prices to the
conditional orders waiting for their trigger (``procs.exchange_sim.trading.triggers``). Every
timestamp is ``market.now_ms()`` and every id a counter, so a replay gives the same orders, ids
and fills every time.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from procs.core.instruments import Instrument, decimal_to_int
from procs.exchange_sim.api import MarketView
from procs.exchange_sim.trading.accounts import Q8, ZERO, Account, fmt8, px, qty
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.filters import Filters, check_filters, check_stop_price
from procs.exchange_sim.trading.formats import (
    account_update,
    algo_update,
    fixed,
    notional,
    order_json,
    order_update,
    trade_lite,
    trigger_reject,
)
from procs.exchange_sim.trading.matching import (
    CANCELED,
    EXPIRED,
    FILLED,
    NEW,
    REJECTED,
    SimOrder,
    SymbolEngine,
)
from procs.exchange_sim.trading.order_log import OrderLog
from procs.exchange_sim.trading.signing import ApiError
from procs.exchange_sim.trading.triggers import (
    CONDITIONAL_TYPES,
    TRAILING,
    AlgoOrder,
    Trail,
    TriggerSpec,
    hit,
    protected,
    start_trail,
    would_trigger_now,
)

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_TIFS = {"GTC", "IOC", "FOK", "GTX"}
_WORKING_TYPES = ("CONTRACT_PRICE", "MARK_PRICE")
MAX_AMENDMENTS = 10_000  # "One order can only be modified for less than 10000 times" [D:Modify-Order]
CLOSED_STATUSES = (FILLED, CANCELED, EXPIRED, REJECTED)
ALGO_CLOSED_STATUSES = ("FINISHED", "CANCELED", "REJECTED", "EXPIRED")

EventSink = Callable[[str, dict[str, Any]], None]  # (account name, event) -> None


def mandatory(params: dict[str, str], name: str) -> str:
    v = params.get(name)
    if v is None or v == "":
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return v


def flag(params: dict[str, str], name: str, default: bool = False) -> bool:
    """A boolean param; clients send true/false and True/False (protocol doc, section F)."""
    text = params.get(name)
    if text is None or text == "":
        return default
    low = text.lower()
    if low not in ("true", "false"):
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return low == "true"


def decimal_param(params: dict[str, str], name: str, scale: int) -> int:
    text = mandatory(params, name)
    try:
        return decimal_to_int(text, scale)
    except ValueError as exc:
        if "scale" in str(exc):
            raise ApiError(-1111, "Precision is over the maximum defined for this asset.") from None
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                       ) from None


class OrderRequest:
    """A validated LIMIT or MARKET order, from the API or from a triggered conditional order."""

    __slots__ = ("symbol", "is_buy", "type", "tif", "lots", "ticks", "reduce_only", "position_side",
                 "client_order_id", "resp_type", "origin", "algo_id")

    def __init__(self, *, symbol: str, is_buy: bool, type: str, tif: str, lots: int, ticks: int,
                 reduce_only: bool, position_side: str, client_order_id: str | None, resp_type: str = "ACK",
                 origin: SimOrder | TriggerSpec | None = None, algo_id: int = 0) -> None:
        self.symbol = symbol
        self.is_buy = is_buy
        self.type = type
        self.tif = tif
        self.lots = lots
        self.ticks = ticks
        self.reduce_only = reduce_only
        self.position_side = position_side
        self.client_order_id = client_order_id
        self.resp_type = resp_type
        self.origin = origin  # the conditional order this one was triggered from
        self.algo_id = algo_id


class Pending:
    """A conditional order waiting for its trigger: a classic order or an algo order."""

    __slots__ = ("order", "algo", "spec", "trail")

    def __init__(self, spec: TriggerSpec, trail: Trail, order: SimOrder | None = None,
                 algo: AlgoOrder | None = None) -> None:
        self.order, self.algo, self.spec, self.trail = order, algo, spec, trail

    @property
    def account(self) -> str:
        return self.order.account if self.order is not None else self.algo.account  # type: ignore[union-attr]


class Venue:
    """Orders, accounts and engines of every symbol; the one place the exchange rules live."""

    def __init__(self, market: MarketView, cfg: TradingConfig, emit: EventSink,
                 wants: Callable[[str], bool] | None = None, symbol_info: dict[str, dict] | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.market = market
        self.cfg = cfg
        self.emit = emit
        # Whether an account has a user-data stream open; events nobody reads are not built.
        self.wants = wants or (lambda _account: True)
        # A later entry for the same key wins, so `--api-key K --api-secret S` can override config.
        self.accounts: dict[str, Account] = {a.api_key: Account(a) for a in cfg.accounts}
        names = [a.name for a in self.accounts.values()]
        if len(set(names)) != len(names):
            raise ValueError(f"account names must be unique: names={names}")
        self.maker_rate = Decimal(cfg.maker_fee_bps) / 10000
        self.taker_rate = Decimal(cfg.taker_fee_bps) / 10000
        self.engines: dict[str, SymbolEngine] = {}
        self.orders: dict[tuple[str, int], SimOrder] = {}
        self.next_order_id: dict[str, int] = {}
        # in its file when there is one; memory keeps a count (procs/exchange_sim/trading/order_log.py)
        self.order_log = OrderLog(cfg.order_log)
        # closed orders stay queryable, the newest keep_closed_orders of them, oldest first here
        self.closed_orders: deque[SimOrder] = deque()
        self._sweep: set[tuple[str, str]] = set()
        self._filter_cache: dict[str, Filters] = {}
        self.user_trades: dict[tuple[str, str], list[dict[str, Any]]] = {}  # GET /fapi/v1/userTrades
        self.by_cid: dict[tuple[str, str, str], SimOrder] = {}  # (account, symbol, cid) -> newest
        self._names: dict[str, Account] = {a.name: a for a in self.accounts.values()}
        # monotonic ns the request being served arrived at, while the latency trace is on (else 0);
        # the order log's records it causes carry it as ts_recv_ns (off, the log stays replayable)
        self.recv_ns = 0
        self._ack: dict[str, Any] = {}  # the ACK snapshot of the order registered last
        # -- conditional orders: exchangeInfo's triggerProtect and MAX_NUM_ALGO_ORDERS per symbol
        info = symbol_info or {}
        self.trigger_protect = {s: Decimal(str(e.get("triggerProtect", "0.05"))) for s, e in info.items()}
        self.max_algo = {s: int(f.get("limit", 0)) for s, e in info.items() for f in e.get("filters", ())
                         if f.get("filterType") == "MAX_NUM_ALGO_ORDERS"}
        self.pending: dict[str, list[Pending]] = {}  # symbol -> waiting conditional orders, oldest first
        self.algos: dict[int, AlgoOrder] = {}
        self.closed_algos: deque[AlgoOrder] = deque()  # the newest keep_closed_orders, oldest first
        self.next_algo_id = 1
        self.last_price: dict[str, int] = {}  # CONTRACT_PRICE: the last trade
        self._dirty: set[str] = set()  # symbols whose prices moved: check their triggers
        self._settling = False
        # -- amends (GET /fapi/v1/orderAmendment) and income (GET /fapi/v1/income)
        self.amendment_log: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.next_amendment_id = 1
        self.next_tran_id = 1
        # -- dead-man switch: (account, symbol) -> deadline on clock_ms (POST /fapi/v1/countdownCancelAll)
        self.clock_ms = clock_ms or market.now_ms
        self.countdowns: dict[tuple[str, str], int] = {}
        self.session = ""  # set by a restore (procs/exchange_sim/trading/restore.py): the account's lifetime

    def close(self) -> None:
        self.order_log.close()

    # -- lookups ---------------------------------------------------------------------------
    def instrument(self, symbol: str | None) -> Instrument:
        if not symbol:
            raise ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        inst = self.market.instruments.get(symbol)
        if inst is None:
            raise ApiError(-1121, "Invalid symbol.")
        return inst

    def engine(self, symbol: str) -> SymbolEngine:
        eng = self.engines.get(symbol)
        if eng is None:
            eng = self.engines[symbol] = SymbolEngine(
                symbol, self.market, self, market_impact=self.cfg.market_impact,
                queue_model=self.cfg.queue_model, depth=self.cfg.book_depth)
        return eng

    def mark(self, symbol: str) -> int | None:
        m = self.market.mark_price_ticks(symbol)
        if m is not None:
            return m
        bb, ba = self.market.best_bid(symbol), self.market.best_ask(symbol)
        if bb and ba:
            return (bb[0] + ba[0]) // 2
        return (bb or ba or (None, 0))[0]

    def working_price(self, symbol: str, working_type: str) -> int | None:
        """The price a conditional order watches: the mark or the last trade (the mid before any trade)."""
        if working_type == "MARK_PRICE":
            return self.mark(symbol)
        last = self.last_price.get(symbol)
        return last if last is not None else self.mark(symbol)

    def open_orders(self, acct: Account, symbol: str | None = None) -> list[SimOrder]:
        """Open orders of the matching engine plus classic conditional orders waiting to trigger."""
        engines = [self.engines[symbol]] if symbol in self.engines else ([] if symbol else self.engines.values())
        out = [o for e in engines for o in e.open_orders() if o.account == acct.name]
        books = [self.pending.get(symbol, [])] if symbol else list(self.pending.values())
        out += [p.order for b in books for p in b if p.order is not None and p.account == acct.name]
        out.sort(key=lambda o: (o.symbol, o.order_id))
        return out

    def open_algos(self, acct: Account, symbol: str | None = None) -> list[AlgoOrder]:
        books = [self.pending.get(symbol, [])] if symbol else list(self.pending.values())
        out = [p.algo for b in books for p in b if p.algo is not None and p.account == acct.name]
        out.sort(key=lambda a: a.algo_id)
        return out

    def find(self, acct: Account, params: dict[str, str], code: int, msg: str) -> SimOrder:
        """The order named by orderId or origClientOrderId (any status), else ApiError(code)."""
        inst = self.instrument(params.get("symbol"))
        oid = params.get("orderId")
        cid = params.get("origClientOrderId")
        if not oid and not cid:
            raise ApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if oid:
            try:
                o = self.orders.get((inst.symbol, int(oid)))
            except ValueError:
                raise ApiError(-1102, "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed."
                               ) from None
            # orderId prevails when both are sent [D:Modify-Order]
            if o is not None and o.account == acct.name:
                return o
            raise ApiError(code, msg)
        # The newest order with that id: an id may be reused once the earlier order is closed.
        o = self.by_cid.get((acct.name, inst.symbol, cid or ""))
        if o is None:
            raise ApiError(code, msg)
        return o

    def find_algo(self, acct: Account, params: dict[str, str], code: int, msg: str) -> AlgoOrder:
        aid, caid = params.get("algoId"), params.get("clientAlgoId")
        if not aid and not caid:
            raise ApiError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        if aid:
            try:
                a = self.algos.get(int(aid))
            except ValueError:
                raise ApiError(-1102, "Mandatory parameter 'algoId' was not sent, was empty/null, or malformed."
                               ) from None
        else:  # the newest algo order with that client id
            a = next((x for x in reversed(self.algos.values())
                      if x.client_algo_id == caid and x.account == acct.name), None)
        if a is None or a.account != acct.name:
            raise ApiError(code, msg)
        return a

    # -- parsing ---------------------------------------------------------------------------
    def _position_side(self, acct: Account, params: dict[str, str]) -> str:
        ps = params.get("positionSide") or "BOTH"
        if ps not in ("BOTH", "LONG", "SHORT"):
            raise ApiError(-4060, "Invalid position side.")
        if (ps == "BOTH") == acct.dual_side:
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        return ps

    def _reduce_only(self, acct: Account, params: dict[str, str]) -> bool:
        if acct.dual_side and flag(params, "reduceOnly"):
            # "Cannot be sent in Hedge Mode" [D:New-Order]
            raise ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
        return flag(params, "reduceOnly")

    def parse_order(self, acct: Account, params: dict[str, str]) -> OrderRequest | TriggerSpec:
        """Validate a ``POST /fapi/v1/order`` (or batch entry, or ``order.place``) request."""
        inst = self.instrument(params.get("symbol"))
        side = mandatory(params, "side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        otype = mandatory(params, "type")
        if otype in CONDITIONAL_TYPES:
            if not self.cfg.conditional_on_order_endpoint:
                raise ApiError(-4120, "Order type not supported for this endpoint. Please use the Algo Order "
                                      "API endpoints instead.")
            return self.parse_conditional(acct, inst, params, side == "BUY", otype, "stopPrice", "activationPrice")
        if otype not in ("LIMIT", "MARKET"):
            raise ApiError(-1116, "Invalid orderType.")
        ps = self._position_side(acct, params)
        if otype == "LIMIT":
            tif = mandatory(params, "timeInForce")
            if tif not in _TIFS:
                raise ApiError(-1115, "Invalid timeInForce.")
            lots = decimal_param(params, "quantity", inst.qty_scale)
            ticks = decimal_param(params, "price", inst.price_scale)
        else:
            if params.get("price"):
                raise ApiError(-1106, "Parameter 'price' sent when not required.")
            tif = "GTC"
            lots = decimal_param(params, "quantity", inst.qty_scale)
            ticks = 0
        for unsupported in ("priceMatch", "stopPrice", "closePosition", "activationPrice", "callbackRate"):
            if params.get(unsupported) not in (None, "", "NONE", "false", "False"):
                raise ApiError(-1106, f"Parameter '{unsupported}' sent when not required.")
        reduce_only = self._reduce_only(acct, params)
        resp_type = params.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise ApiError(-1102, "Mandatory parameter 'newOrderRespType' was not sent, was empty/null, or malformed.")
        return OrderRequest(symbol=inst.symbol, is_buy=side == "BUY", type=otype, tif=tif, lots=lots, ticks=ticks,
                            reduce_only=reduce_only, position_side=ps,
                            client_order_id=params.get("newClientOrderId"), resp_type=resp_type)

    def parse_conditional(self, acct: Account, inst: Instrument, params: dict[str, str], is_buy: bool, otype: str,
                          stop_name: str, activation_name: str) -> TriggerSpec:
        """Validate a conditional order (``stopPrice`` on /fapi/v1/order, ``triggerPrice`` on algoOrder)."""
        ps = self._position_side(acct, params)
        close_position = flag(params, "closePosition")
        if close_position and otype not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
            raise ApiError(-1106, "Parameter 'closePosition' sent when not required.")
        if close_position and params.get("quantity"):
            raise ApiError(-4137, "Quantity must be zero with closePosition equals true")
        if close_position and params.get("reduceOnly") not in (None, ""):
            raise ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
        if close_position and acct.dual_side and (ps == "LONG") == is_buy:
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        reduce_only = self._reduce_only(acct, params)
        lots = 0 if close_position else decimal_param(params, "quantity", inst.qty_scale)
        tif = params.get("timeInForce") or "GTC"
        if tif not in _TIFS:
            raise ApiError(-1115, "Invalid timeInForce.")
        working = params.get("workingType") or "CONTRACT_PRICE"
        if working not in _WORKING_TYPES:
            raise ApiError(-4031, f"Invalid parameter working type: {working}")
        price_protect = flag(params, "priceProtect")
        price = stop = activation = 0
        rate = ""
        if otype in ("STOP", "TAKE_PROFIT"):
            price = decimal_param(params, "price", inst.price_scale)
        elif params.get("price"):
            raise ApiError(-1106, "Parameter 'price' sent when not required.")
        if otype == TRAILING:
            rate = mandatory(params, "callbackRate")
            try:
                r = Decimal(rate)
            except ArithmeticError:
                r = Decimal(-1)
            if not (Decimal("0.1") <= r <= Decimal("10")) or r != r.quantize(Decimal("0.1")):
                raise ApiError(-1130, "Invalid data sent for a parameter: callbackRate must be 0.1 to 10 in "
                                      "steps of 0.1 (1 = 1%).")
            rate = str(r.quantize(Decimal("0.1")))
            act_name = activation_name if params.get(activation_name) else "activatePrice"
            if params.get(act_name):
                activation = decimal_param(params, act_name, inst.price_scale)
                if activation <= 0:
                    raise ApiError(-4135, "Invalid activation price")
        else:
            stop = decimal_param(params, stop_name, inst.price_scale)
        spec = TriggerSpec(type=otype, is_buy=is_buy, tif=tif, qty_lots=lots, price_ticks=price, stop_ticks=stop,
                           working_type=working, price_protect=price_protect, close_position=close_position,
                           reduce_only=reduce_only, position_side=ps, activation_ticks=activation,
                           callback_rate=rate)
        f = self._filters(inst)
        for ticks in (stop, activation):
            if ticks:
                check_stop_price(f, ticks)
        limit_type = "LIMIT" if otype in ("STOP", "TAKE_PROFIT") else "MARKET"
        if lots:
            check_filters(f, inst, limit_type, is_buy, price, lots, True, None)
        closing = close_position or reduce_only or (ps == "LONG") != is_buy and ps != "BOTH"
        if lots and not closing and f.min_notional:
            ref = price or stop or activation or self.mark(inst.symbol) or 0
            if ref * lots < f.min_notional:
                raise ApiError(-4164, f"Order's notional must be no smaller than {inst.min_notional} "
                                      "(unless you choose reduce only).")
        return spec

    # -- order entry -----------------------------------------------------------------------
    def place(self, acct: Account, params: dict[str, str], dry_run: bool = False
              ) -> tuple[SimOrder, dict[str, Any]]:
        """Validate and accept a new order (or a classic conditional order); returns it and its
        ACK snapshot. Raises ApiError. ``dry_run`` (``POST /fapi/v1/order/test``) checks every rule
        and stops before accepting."""
        req = self.parse_order(acct, params)
        if isinstance(req, TriggerSpec):
            order = self._place_classic_conditional(acct, params, req, dry_run)
        else:
            order = self.submit(acct, req, dry_run)
        if dry_run:
            return order, {}
        ack = self._ack
        self._settle()
        return order, ack

    def _check_client_id(self, acct: Account, symbol: str, cid: str | None) -> None:
        if cid is None:
            return
        if not _CLIENT_ID.match(cid):
            raise ApiError(-4015, "Client order id is not valid.")
        prev = self.by_cid.get((acct.name, symbol, cid))
        if prev is not None and prev.is_open:
            raise ApiError(-4116, "ClientOrderId is duplicated.")

    def _new_order_id(self, symbol: str) -> int:
        oid = self.next_order_id.get(symbol, 1)
        self.next_order_id[symbol] = oid + 1
        return oid

    def _register(self, order: SimOrder, inst: Instrument) -> None:
        self.orders[(inst.symbol, order.order_id)] = order
        self.by_cid[(order.account, inst.symbol, order.client_order_id)] = order
        self._ack = order_json(inst, order)
        self._record("NEW", inst, order)
        self._event(inst, order, "NEW")

    def submit(self, acct: Account, req: OrderRequest, dry_run: bool = False) -> SimOrder:
        """Accept a LIMIT or MARKET order into the matching engine (the API's and triggered ones)."""
        inst = self.market.instruments[req.symbol]
        is_buy = req.is_buy
        ps = req.position_side
        closing = req.reduce_only or (ps == "LONG" and not is_buy) or (ps == "SHORT" and is_buy)
        self._check_filters(inst, req.type, is_buy, req.ticks, req.lots, closing)
        eng = self.engine(inst.symbol)
        cid = req.client_order_id
        if req.origin is None:
            self._check_client_id(acct, inst.symbol, cid)
        mine = self.open_orders(acct, inst.symbol)
        if inst.max_num_orders and len(mine) >= inst.max_num_orders:
            raise ApiError(-2025, "Reach max open order limit.")
        now = self.market.now_ms()
        oid = self.next_order_id.get(inst.symbol, 1)
        order = SimOrder(account=acct.name, symbol=inst.symbol, order_id=oid,
                         client_order_id=cid or f"sim-{oid}", is_buy=is_buy, type=req.type, tif=req.tif,
                         price_ticks=req.ticks, qty_lots=req.lots, reduce_only=req.reduce_only, time_ms=now,
                         position_side=ps, closing=closing)
        order.resp_type = req.resp_type
        origin = req.origin
        if isinstance(origin, SimOrder):  # triggered from a classic conditional order
            _copy_conditional(order, origin)
        elif isinstance(origin, TriggerSpec):  # triggered from an algo order
            _copy_spec(order, origin)
            order.algo_id = req.algo_id
        cap = self.reduce_cap(order) if closing else 0
        if closing and (cap == 0 or (not req.reduce_only and req.origin is None and req.lots > cap)):
            # a hedge-mode close (SELL LONG / BUY SHORT) larger than the side's position is refused;
            # a reduceOnly order is capped to the position and its rest expires
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        if not closing:
            self._check_margin(acct, inst, order)
        if req.tif == "GTX" and eng.fillable(order, 1) > 0:
            raise ApiError(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                  "rejected. The order will not be recorded in the order history")
        if req.tif == "FOK" and eng.fillable(order, req.lots) < req.lots:
            raise ApiError(-5021, "Due to the order could not be filled immediately, the FOK order has been "
                                  "rejected. The order will not be recorded in the order history")
        if dry_run:
            return order
        self.next_order_id[inst.symbol] = oid + 1
        self._register(order, inst)
        eng.take(order)
        if order.remaining > 0 and order.is_open:
            if req.type == "LIMIT" and req.tif in ("GTC", "GTX"):
                eng.rest(order)
            else:
                self._expire(inst, order, 9 if req.type == "MARKET" else 2)
        return order

    def _check_filters(self, inst: Instrument, otype: str, is_buy: bool, ticks: int, lots: int,
                       reduce_only: bool) -> None:
        check_filters(self._filters(inst), inst, otype, is_buy, ticks, lots, reduce_only, self.mark(inst.symbol))

    def _filters(self, inst: Instrument) -> Filters:
        f = self._filter_cache.get(inst.symbol)
        if f is None:
            f = self._filter_cache[inst.symbol] = Filters(inst)
        return f

    def _check_margin(self, acct: Account, inst: Instrument, order: SimOrder, extra: Decimal = ZERO) -> None:
        """-2019 when the part of the order that grows a position needs more margin than is free
        (``extra``: margin the order already holds, for an amend)."""
        grow = acct.increase_lots(inst.symbol, order.is_buy, order.remaining, order.position_side)
        if grow <= 0:
            return
        ref = order.price_ticks or self.mark(inst.symbol) or 0
        need = qty(inst, grow) * px(inst, ref) / acct.leverage(inst.symbol)
        if need > self.available(acct) + extra:
            raise ApiError(-2019, "Margin is insufficient.")

    def available(self, acct: Account) -> Decimal:
        """Cross available balance: wallet + unrealized PnL - position and open-order margin."""
        total = sum(acct.wallet.values(), ZERO)
        for sym, inst in self.market.instruments.items():
            has_pos = any(p.amt for p in acct.sides(sym))
            if not has_pos and sym not in self.engines:
                continue
            mark = self.mark(sym)
            total += acct.unrealized(inst, mark) - acct.position_margin(inst, mark)
            if sym in self.engines:
                total -= acct.order_margin(inst, [o for o in self.engines[sym].open_orders()
                                                  if o.account == acct.name], mark)
        return total

    # -- cancel ----------------------------------------------------------------------------
    def cancel(self, acct: Account, params: dict[str, str]) -> SimOrder:
        o = self.find(acct, params, -2011, "Unknown order sent.")
        if not o.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        self._cancel(o)
        self._settle()
        return o

    def _cancel(self, o: SimOrder) -> None:
        inst = self.market.instruments[o.symbol]
        if o.type in CONDITIONAL_TYPES:
            self._unpend(o.symbol, lambda p: p.order is o)
        else:
            self.engine(o.symbol).cancel(o)
        o.status = CANCELED
        o.update_ms = self.market.now_ms()
        self._record("CANCELED", inst, o)
        self._event(inst, o, "CANCELED")
        self._closed(o)

    def cancel_all(self, acct: Account, symbol: str) -> int:
        """``DELETE /fapi/v1/allOpenOrders`` (and a fired countdown): every open order of the
        symbol, classic conditional orders included; algo orders have their own endpoint."""
        orders = self.open_orders(acct, symbol)
        for o in orders:
            self._cancel(o)
        self._settle()
        return len(orders)

    def _expire(self, inst: Instrument, o: SimOrder, reason: int) -> None:
        if o.type in CONDITIONAL_TYPES:
            self._unpend(o.symbol, lambda p: p.order is o)
        else:
            self.engine(o.symbol).cancel(o)
        o.status = EXPIRED
        o.expire_reason = reason
        o.update_ms = self.market.now_ms()
        self._record("EXPIRED", inst, o)
        self._event(inst, o, "EXPIRED")
        self._closed(o)

    def _closed(self, o: SimOrder) -> None:
        """An order left the book: finish the algo order it was placed for."""
        if o.algo_id:
            a = self.algos.get(o.algo_id)
            if a is not None and a.status == "TRIGGERED" and a.actual is o:
                a.status = "FINISHED"
                a.update_ms = self.market.now_ms()
                self._algo_event(a)

    # -- amend -----------------------------------------------------------------------------
    def amend(self, acct: Account, params: dict[str, str]) -> SimOrder:
        """``PUT /fapi/v1/order`` / ``order.modify``: a resting LIMIT order's new price and quantity.

        Queue rule [D:Modify-Order]: "currently only LIMIT order modification is supported,
        modified orders will be reordered in the match queue" -- USD-M keeps no priority on any
        accepted amend (unlike spot's quantity-reducing keepPriority amend), so the order goes to
        the back of the queue at its (new) price, behind the size displayed there, and trades at
        once if the new price crosses. A new quantity or price that fails PRICE_FILTER /
        PERCENT_PRICE / LOT_SIZE is refused and the order stays as it was; the amend cancels the
        order when it is partially filled and the new quantity is not above the executed one, or
        when a GTX order's new price would trade at once. Same price and quantity: -5027."""
        inst = self.instrument(params.get("symbol"))
        o = self.find(acct, params, -2013, "Order does not exist.")
        if not o.is_open:
            raise ApiError(-2013, "Order does not exist.")
        if o.type != "LIMIT":
            raise ApiError(-5025, "Only limit order is supported.")
        side = mandatory(params, "side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        if (side == "BUY") != o.is_buy:
            raise ApiError(-1130, "Invalid data sent for a parameter: side does not match the order's side.")
        if params.get("priceMatch") not in (None, "", "NONE"):
            raise ApiError(-1106, "Parameter 'priceMatch' sent when not required.")
        lots = decimal_param(params, "quantity", inst.qty_scale)
        ticks = decimal_param(params, "price", inst.price_scale)
        if lots == o.qty_lots and ticks == o.price_ticks:
            raise ApiError(-5027, "No need to modify the order.")
        if o.amendments + 1 >= MAX_AMENDMENTS:
            raise ApiError(-5026, "Exceed maximum modify order limit.")
        self._check_filters(inst, "LIMIT", o.is_buy, ticks, lots, o.closing)
        eng = self.engine(o.symbol)
        if o.filled_lots and lots <= o.filled_lots:
            self._cancel(o)
            self._settle()
            return o
        old_ticks, old_lots = o.price_ticks, o.qty_lots
        if not o.closing:
            held = qty(inst, o.remaining) * px(inst, o.price_ticks) / acct.leverage(inst.symbol)
            probe = SimOrder(account=o.account, symbol=o.symbol, order_id=0, client_order_id="", is_buy=o.is_buy,
                             type="LIMIT", tif=o.tif, price_ticks=ticks, qty_lots=lots - o.filled_lots,
                             reduce_only=False, time_ms=0, position_side=o.position_side, closing=False)
            self._check_margin(acct, inst, probe, held)
        eng.cancel(o)  # out of its queue
        o.price_ticks = ticks
        if o.tif == "GTX" and eng.fillable(o, 1) > 0:
            o.price_ticks = old_ticks
            self._cancel(o)
            self._settle()
            return o
        o.qty_lots = lots
        o.amendments += 1
        now = self.market.now_ms()
        o.update_ms = now
        self.amendment_log.setdefault((o.symbol, o.order_id), []).append({
            "amendmentId": self.next_amendment_id, "symbol": o.symbol, "pair": o.symbol, "orderId": o.order_id,
            "clientOrderId": o.client_order_id, "time": now,
            "amendment": {"price": {"before": fixed(old_ticks, inst.price_scale),
                                    "after": fixed(ticks, inst.price_scale)},
                          "origQty": {"before": fixed(old_lots, inst.qty_scale),
                                      "after": fixed(lots, inst.qty_scale)},
                          "count": o.amendments},
        })
        self.next_amendment_id += 1
        self._record("AMENDMENT", inst, o, oldPrice=inst.ticks_to_price(old_ticks),
                     oldQty=inst.lots_to_qty(old_lots))
        self._event(inst, o, "AMENDMENT")
        eng.take(o)
        if o.is_open and o.remaining > 0:
            eng.rest(o)  # the back of the queue at the new price
        else:
            self._closed(o)
        self._settle()
        return o

    # -- conditional orders ----------------------------------------------------------------
    def _check_conditional(self, acct: Account, symbol: str, spec: TriggerSpec) -> None:
        if would_trigger_now(spec, self.working_price(symbol, spec.working_type)):
            raise ApiError(-2021, "Order would immediately trigger.")
        limit = self.max_algo.get(symbol, 0)
        if limit and sum(1 for p in self.pending.get(symbol, ()) if p.account == acct.name) >= limit:
            raise ApiError(-4045, "Reach max stop order limit.")

    def _place_classic_conditional(self, acct: Account, params: dict[str, str], spec: TriggerSpec,
                                   dry_run: bool) -> SimOrder:
        inst = self.instrument(params.get("symbol"))
        cid = params.get("newClientOrderId")
        self._check_client_id(acct, inst.symbol, cid)
        self._check_conditional(acct, inst.symbol, spec)
        if inst.max_num_orders and len(self.open_orders(acct, inst.symbol)) >= inst.max_num_orders:
            raise ApiError(-2025, "Reach max open order limit.")
        resp_type = params.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise ApiError(-1102, "Mandatory parameter 'newOrderRespType' was not sent, was empty/null, or malformed.")
        now = self.market.now_ms()
        oid = self.next_order_id.get(inst.symbol, 1)
        order = SimOrder(account=acct.name, symbol=inst.symbol, order_id=oid, client_order_id=cid or f"sim-{oid}",
                         is_buy=spec.is_buy, type=spec.type, tif=spec.tif, price_ticks=spec.price_ticks,
                         qty_lots=spec.qty_lots, reduce_only=spec.reduce_only, time_ms=now,
                         position_side=spec.position_side, closing=True)
        _copy_spec(order, spec)
        order.resp_type = resp_type
        if dry_run:
            return order
        self.next_order_id[inst.symbol] = oid + 1
        trail = Trail()
        start_trail(spec, trail, self.working_price(inst.symbol, spec.working_type))
        self.pending.setdefault(inst.symbol, []).append(Pending(spec, trail, order=order))
        self._register(order, inst)
        return order

    def place_algo(self, acct: Account, params: dict[str, str]) -> AlgoOrder:
        """``POST /fapi/v1/algoOrder`` (``algoType=CONDITIONAL``) [D:New-Algo-Order]."""
        inst = self.instrument(params.get("symbol"))
        algo_type = mandatory(params, "algoType")
        if algo_type != "CONDITIONAL":
            raise ApiError(-1130, f"Invalid data sent for a parameter: algoType={algo_type} (only CONDITIONAL).")
        side = mandatory(params, "side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        otype = mandatory(params, "type")
        if otype not in CONDITIONAL_TYPES:
            raise ApiError(-1116, "Invalid orderType.")
        spec = self.parse_conditional(acct, inst, params, side == "BUY", otype, "triggerPrice", "activatePrice")
        caid = params.get("clientAlgoId")
        if caid is not None:
            if not _CLIENT_ID.match(caid):
                raise ApiError(-4015, "Client order id is not valid.")
            if any(a.client_algo_id == caid for a in self.open_algos(acct, inst.symbol)):
                raise ApiError(-4116, "ClientOrderId is duplicated.")
        self._check_conditional(acct, inst.symbol, spec)
        now = self.market.now_ms()
        aid = self.next_algo_id
        self.next_algo_id += 1
        algo = AlgoOrder(aid, caid or f"sim-algo-{aid}", acct.name, inst.symbol, spec, now)
        start_trail(spec, algo.trail, self.working_price(inst.symbol, spec.working_type))
        self.algos[aid] = algo
        self.pending.setdefault(inst.symbol, []).append(Pending(spec, algo.trail, algo=algo))
        self._record_algo("ALGO_NEW", algo)
        self._algo_event(algo)
        return algo

    def cancel_algo(self, acct: Account, params: dict[str, str]) -> AlgoOrder:
        algo = self.find_algo(acct, params, -2011, "Unknown order sent.")
        if not algo.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        self._cancel_algo(algo)
        return algo

    def _cancel_algo(self, algo: AlgoOrder) -> None:
        self._unpend(algo.symbol, lambda p: p.algo is algo)
        algo.status = "CANCELED"
        algo.update_ms = self.market.now_ms()
        self._record_algo("ALGO_CANCELED", algo)
        self._algo_event(algo)

    def cancel_all_algos(self, acct: Account, symbol: str) -> int:
        algos = self.open_algos(acct, symbol)
        for a in algos:
            self._cancel_algo(a)
        return len(algos)

    def _unpend(self, symbol: str, match: Callable[[Pending], bool]) -> None:
        book = self.pending.get(symbol)
        if book:
            book[:] = [p for p in book if not match(p)]

    def _check_triggers(self, symbol: str) -> None:
        book = self.pending.get(symbol)
        if not book:
            return
        last = self.last_price.get(symbol)
        mark = self.mark(symbol)
        tp = self.trigger_protect.get(symbol, Decimal("0.05"))
        fired = []
        for p in book:
            price = mark if p.spec.working_type == "MARK_PRICE" else (last if last is not None else mark)
            if price is None or not hit(p.spec, p.trail, price):
                continue
            if p.spec.price_protect and protected(mark, last, tp):
                continue
            fired.append(p)
        for p in fired:
            if p in book:
                book.remove(p)
                self._fire(p)

    def _fire(self, p: Pending) -> None:
        spec = p.spec
        acct = self._by_name(p.account)
        symbol = p.order.symbol if p.order is not None else p.algo.symbol  # type: ignore[union-attr]
        inst = self.market.instruments[symbol]
        now = self.market.now_ms()
        lots = spec.qty_lots or acct.close_cap(symbol, spec.is_buy, spec.position_side)
        if p.order is not None:  # classic: the initial order ends with expiry reason 8
            origin: SimOrder | TriggerSpec = p.order
            p.order.status = EXPIRED
            p.order.expire_reason = 8
            p.order.update_ms = now
            self._record("EXPIRED", inst, p.order)
            self._event(inst, p.order, "EXPIRED")
            cid: str | None = p.order.client_order_id
            algo_id = 0
        else:
            algo = p.algo
            assert algo is not None
            algo.status = "TRIGGERING"
            algo.trigger_ms = algo.update_ms = now
            self._algo_event(algo)
            origin, cid, algo_id = spec, None, algo.algo_id
        req = OrderRequest(symbol=symbol, is_buy=spec.is_buy, type=spec.actual_type,
                           tif=spec.tif if spec.actual_type == "LIMIT" else "GTC", lots=lots,
                           ticks=spec.price_ticks if spec.actual_type == "LIMIT" else 0,
                           reduce_only=spec.reduce_only or spec.close_position, position_side=spec.position_side,
                           client_order_id=cid, origin=origin, algo_id=algo_id)
        try:
            if lots <= 0:
                raise ApiError(-2022, "ReduceOnly Order is rejected.")
            order = self.submit(acct, req)
        except ApiError as e:
            if p.algo is not None:
                p.algo.status = "REJECTED"
                p.algo.reject_reason = e.msg
                p.algo.update_ms = now
                self._record_algo("ALGO_REJECTED", p.algo, reason=e.msg)
                self._algo_event(p.algo)
            elif self.wants(acct.name):
                assert p.order is not None
                self.emit(acct.name, trigger_reject(symbol, p.order.order_id, e.msg, now))
            return
        if p.algo is not None:
            p.algo.actual = order
            p.algo.status = "TRIGGERED"
            self._record_algo("ALGO_TRIGGERED", p.algo, orderId=order.order_id)
            self._algo_event(p.algo)
            if not order.is_open:
                self._closed(order)

    def _settle(self) -> None:
        """After each request or market event: expire reduce-only orders that can no longer
        reduce, and fire conditional orders whose symbol's prices moved, until nothing changes."""
        if self._settling:
            return
        self._settling = True
        try:
            while self._sweep or self._dirty:
                self._run_sweep()
                if self._dirty:
                    self._check_triggers(self._dirty.pop())
        finally:
            self._settling = False

    # -- fills (FillSink) ------------------------------------------------------------------
    def reduce_cap(self, order: SimOrder) -> int:
        return self._by_name(order.account).close_cap(order.symbol, order.is_buy, order.position_side)

    def on_fill(self, order: SimOrder, price_ticks: int, qty_lots: int, is_maker: bool, trade_id: int) -> None:
        inst = self.market.instruments[order.symbol]
        acct = self._by_name(order.account)
        now = self.market.now_ms()
        rate = self.maker_rate if is_maker else self.taker_rate
        fee = (notional(inst, price_ticks, qty_lots) * rate).quantize(Q8)
        realized = acct.apply_fill(inst, order.is_buy, order.position_side, price_ticks, qty_lots, fee, now)
        order.update_ms = now
        self.book_trade(acct, inst, order.order_id, order.is_buy, order.position_side, price_ticks, qty_lots, fee,
                        realized, is_maker, trade_id, now)
        self._record("TRADE", inst, order, lastQty=inst.lots_to_qty(qty_lots),
                     lastPrice=inst.ticks_to_price(price_ticks), tradeId=trade_id, maker=is_maker,
                     fee=str(fee.normalize()), realizedPnl=str(realized.normalize()))
        if self.wants(acct.name):
            self.emit(acct.name, trade_lite(inst, order, now, qty_lots, price_ticks, trade_id, is_maker))
        self._event(inst, order, "TRADE", last_lots=qty_lots, last_ticks=price_ticks, fee=fee,
                    trade_id=trade_id, maker=is_maker, realized=realized)
        if self.wants(acct.name):
            self.emit(acct.name, account_update(inst, acct, now, self.mark(inst.symbol), order.position_side))
        if order.status == FILLED:
            self._closed(order)
        self._sweep.add((acct.name, order.symbol))
        self.last_price[order.symbol] = price_ticks
        if order.symbol in self.pending:
            self._dirty.add(order.symbol)

    def book_trade(self, acct: Account, inst: Instrument, order_id: int, is_buy: bool, position_side: str,
                   price_ticks: int, qty_lots: int, fee: Decimal, realized: Decimal, is_maker: bool, trade_id: int,
                   now: int) -> None:
        """A fill's trade history (``userTrades``) and income entries (also a restore's, procs/exchange_sim/trading/restore.py)."""
        keep_newest(self.user_trades.setdefault((acct.name, inst.symbol), []), {
            "buyer": is_buy, "commission": fmt8(fee), "commissionAsset": inst.margin_asset, "id": trade_id,
            "maker": is_maker, "orderId": order_id, "price": fixed(price_ticks, inst.price_scale),
            "qty": fixed(qty_lots, inst.qty_scale), "quoteQty": str(notional(inst, price_ticks, qty_lots)),
            "realizedPnl": fmt8(realized), "side": "BUY" if is_buy else "SELL",
            "positionSide": position_side, "symbol": inst.symbol, "time": now,
        }, self.cfg.keep_trades)
        self._income(acct, inst.symbol, "COMMISSION", -fee, inst.margin_asset, now, trade_id)
        if realized:
            self._income(acct, inst.symbol, "REALIZED_PNL", realized, inst.margin_asset, now, trade_id)

    def _income(self, acct: Account, symbol: str, kind: str, amount: Decimal, asset: str, now: int,
                trade_id: int) -> None:
        keep_newest(acct.income, {"symbol": symbol, "incomeType": kind, "income": fmt8(amount), "asset": asset,
                                  "info": kind, "time": now, "tranId": self.next_tran_id, "tradeId": str(trade_id)},
                    self.cfg.keep_income)
        self.next_tran_id += 1

    def _run_sweep(self) -> None:
        """Expire closing orders that can no longer close anything (position closed or flipped)."""
        while self._sweep:
            name, symbol = self._sweep.pop()
            acct = self._by_name(name)
            for o in self.open_orders(acct, symbol):
                if o.closing and o.type not in CONDITIONAL_TYPES and self.reduce_cap(o) == 0:
                    self._expire(self.market.instruments[symbol], o, 4)

    # -- MarketListener --------------------------------------------------------------------
    def on_book_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        eng = self.engines.get(symbol)
        if eng is not None:
            eng.on_book_level(is_bid, price_ticks, qty_lots)
            if self._sweep or self._dirty:
                self._settle()

    def on_market_trade(self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool,
                        ts_ms: int) -> None:
        eng = self.engines.get(symbol)
        if eng is not None:
            eng.on_market_trade(price_ticks, qty_lots, buyer_is_maker)
        self.last_price[symbol] = price_ticks
        if symbol in self.pending:
            self._dirty.add(symbol)
        if self._sweep or self._dirty:
            self._settle()

    def on_mark_price(self, symbol: str, price_ticks: int, ts_ms: int) -> None:
        if self.pending.get(symbol):
            self._dirty.add(symbol)
            self._settle()

    # -- dead-man switch -------------------------------------------------------------------
    def countdown(self, acct: Account, symbol: str, ms: int) -> None:
        """``POST /fapi/v1/countdownCancelAll``: cancel the symbol's open orders unless called
        again within ``ms``; 0 stops the timer."""
        if ms <= 0:
            self.countdowns.pop((acct.name, symbol), None)
        else:
            self.countdowns[(acct.name, symbol)] = self.clock_ms() + ms

    def on_timer(self) -> list[tuple[str, str, int]]:
        """Fire the countdowns that are due; returns (account, symbol, orders canceled) of each."""
        if not self.countdowns:
            return []
        now = self.clock_ms()
        fired = []
        for key, deadline in list(self.countdowns.items()):
            if now >= deadline:
                del self.countdowns[key]
                name, symbol = key
                fired.append((name, symbol, self.cancel_all(self._by_name(name), symbol)))
        return fired

    # -- events and log --------------------------------------------------------------------
    def _by_name(self, name: str) -> Account:
        return self._names[name]

    def account_named(self, name: str) -> Account:
        return self._names[name]

    def _event(self, inst: Instrument, o: SimOrder, exec_type: str, **kw: Any) -> None:
        acct = self._by_name(o.account)
        if not self.wants(acct.name):
            return
        bid = ask = 0  # exact ticks * lots
        for r in self.open_orders(acct, o.symbol):
            if r.is_buy:
                bid += r.price_ticks * r.remaining
            else:
                ask += r.price_ticks * r.remaining
        scale = -inst.price_scale - inst.qty_scale
        self.emit(acct.name, order_update(inst, o, exec_type, self.market.now_ms(),
                                          bid_notional=Decimal(bid).scaleb(scale),
                                          ask_notional=Decimal(ask).scaleb(scale), **kw))

    def _algo_event(self, a: AlgoOrder) -> None:
        """Tell the account's stream an algo order's new status (every change passes here, so a
        closed one is counted here too)."""
        if self.wants(a.account):
            self.emit(a.account, algo_update(self.market.instruments[a.symbol], a, self.market.now_ms()))
        if a.status in ALGO_CLOSED_STATUSES:
            self.keep_closed(a)

    def _record(self, event: str, inst: Instrument, o: SimOrder, **extra: Any) -> None:
        rec: dict[str, Any] = {
            "ts": self.market.now_ms(), "event": event, "account": o.account, "symbol": o.symbol,
            "orderId": o.order_id, "clientOrderId": o.client_order_id, "side": "BUY" if o.is_buy else "SELL",
            "type": o.type, "timeInForce": o.tif, "price": inst.ticks_to_price(o.price_ticks),
            "origQty": inst.lots_to_qty(o.qty_lots), "reduceOnly": o.reduce_only, "status": o.status,
            "executedQty": inst.lots_to_qty(o.filled_lots),
        }
        if o.position_side != "BOTH":
            rec["positionSide"] = o.position_side
        if o.orig_type != o.type:
            rec["origType"] = o.orig_type
        if o.stop_ticks:
            rec["stopPrice"] = inst.ticks_to_price(o.stop_ticks)
        rec.update(extra)
        self._write_log(rec)
        if o.status in CLOSED_STATUSES:
            self.keep_closed(o)

    def keep_closed(self, o: SimOrder | AlgoOrder) -> None:
        """Count a closed order or algo order (once) among the newest ``keep_closed_orders`` of its
        kind; the oldest beyond them are forgotten and answer -2013 (algo: -2013 too), as the
        exchange forgets old orders."""
        if o.counted_closed:
            return
        o.counted_closed = True
        if isinstance(o, AlgoOrder):
            self.closed_algos.append(o)
            while len(self.closed_algos) > self.cfg.keep_closed_orders:
                old = self.closed_algos.popleft()
                if self.algos.get(old.algo_id) is old:
                    del self.algos[old.algo_id]
            return
        self.closed_orders.append(o)
        while len(self.closed_orders) > self.cfg.keep_closed_orders:
            self._forget(self.closed_orders.popleft())

    def _forget(self, o: SimOrder) -> None:
        key = (o.symbol, o.order_id)
        if self.orders.get(key) is o:
            del self.orders[key]
        self.amendment_log.pop(key, None)
        by_cid = (o.account, o.symbol, o.client_order_id)
        if self.by_cid.get(by_cid) is o:  # a reused client id names its newer order
            del self.by_cid[by_cid]

    def _record_algo(self, event: str, a: AlgoOrder, **extra: Any) -> None:
        inst = self.market.instruments[a.symbol]
        rec: dict[str, Any] = {
            "ts": self.market.now_ms(), "event": event, "account": a.account, "symbol": a.symbol,
            "algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "side": "BUY" if a.spec.is_buy else "SELL",
            "type": a.spec.type, "triggerPrice": inst.ticks_to_price(a.spec.stop_ticks),
            "quantity": inst.lots_to_qty(a.spec.qty_lots), "status": a.status,
        }
        rec.update(extra)
        self._write_log(rec)

    def _write_log(self, rec: dict[str, Any]) -> None:
        if self.recv_ns:
            rec["ts_recv_ns"] = self.recv_ns
        self.order_log.append(rec)

    def write_log_line(self, rec: dict[str, Any]) -> None:
        """One line to the order log file only, not an order record (flushed: it survives a SIGKILL)."""
        self.order_log.write_line(rec)

    def order_result(self, o: SimOrder, with_time: bool = False) -> dict[str, Any]:
        return order_json(self.market.instruments[o.symbol], o, with_time)


def keep_newest(rows: list[dict[str, Any]], row: dict[str, Any], keep: int) -> None:
    """Append ``row``; past ``2 * keep`` rows the oldest go, down to ``keep`` (amortised O(1) a row).
    Readers see the newest ``keep`` (``newest``)."""
    rows.append(row)
    if len(rows) > 2 * keep:
        del rows[:len(rows) - keep]


def newest(rows: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    return rows[max(len(rows) - keep, 0):]


def _copy_spec(order: SimOrder, spec: TriggerSpec) -> None:
    order.orig_type = spec.type
    order.stop_ticks = spec.stop_ticks
    order.working_type = spec.working_type
    order.price_protect = spec.price_protect
    order.close_position = spec.close_position
    order.activation_ticks = spec.activation_ticks
    order.callback_rate = spec.callback_rate


def _copy_conditional(order: SimOrder, origin: SimOrder) -> None:
    for name in ("orig_type", "stop_ticks", "working_type", "price_protect", "close_position",
                 "activation_ticks", "callback_rate"):
        setattr(order, name, getattr(origin, name))


__all__ = ["Venue", "NEW", "CLOSED_STATUSES", "mandatory", "flag", "decimal_param", "OrderRequest", "keep_newest",
           "newest"]
