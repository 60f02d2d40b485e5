"""The simulated venue: order entry rules, fills into accounts, user-data events, order log.

Shared by the REST order API and the WebSocket API, so both apply exactly the same rules. The
venue is the ``MarketListener`` of the market side: it forwards book and trade events to the
per-symbol engines and books the resulting fills. Every timestamp is ``market.now_ms()`` and
every id a counter, so a replay gives the same orders, ids and fills every time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import IO, Any

from procs.core.instruments import Instrument, decimal_to_int
from procs.exchange_sim.api import MarketView
from procs.exchange_sim.trading.accounts import Q8, ZERO, Account, fmt8, px, qty
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.filters import Filters, check_filters
from procs.exchange_sim.trading.formats import account_update, fixed, notional, order_json, order_update
from procs.exchange_sim.trading.matching import CANCELED, EXPIRED, NEW, SimOrder, SymbolEngine
from procs.exchange_sim.trading.signing import ApiError

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_ALGO_TYPES = {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
_TIFS = {"GTC", "IOC", "FOK", "GTX"}

EventSink = Callable[[str, dict[str, Any]], None]  # (account name, event) -> None


def mandatory(params: dict[str, str], name: str) -> str:
    v = params.get(name)
    if v is None or v == "":
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return v


def _decimal_param(params: dict[str, str], name: str, scale: int) -> int:
    text = mandatory(params, name)
    try:
        return decimal_to_int(text, scale)
    except ValueError as exc:
        if "scale" in str(exc):
            raise ApiError(-1111, "Precision is over the maximum defined for this asset.") from None
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                       ) from None


class Venue:
    """Orders, accounts and engines of every symbol; the one place the exchange rules live."""

    def __init__(self, market: MarketView, cfg: TradingConfig, emit: EventSink,
                 wants: Callable[[str], bool] | None = None) -> None:
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
        self.order_log: list[dict[str, Any]] = []
        self._log_file: IO[str] | None = open(cfg.order_log, "a") if cfg.order_log else None
        self._sweep: set[tuple[str, str]] = set()
        self._filter_cache: dict[str, Filters] = {}
        self.user_trades: dict[tuple[str, str], list[dict[str, Any]]] = {}  # GET /fapi/v1/userTrades
        self.by_cid: dict[tuple[str, str, str], SimOrder] = {}  # (account, symbol, cid) -> newest
        self._names: dict[str, Account] = {a.name: a for a in self.accounts.values()}
        # monotonic ns the request being served arrived at, while the latency trace is on (else 0);
        # the order log's records it causes carry it as ts_recv_ns (off, the log stays replayable)
        self.recv_ns = 0

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

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

    def open_orders(self, acct: Account, symbol: str | None = None) -> list[SimOrder]:
        engines = [self.engines[symbol]] if symbol in self.engines else ([] if symbol else self.engines.values())
        out = [o for e in engines for o in e.open_orders() if o.account == acct.name]
        out.sort(key=lambda o: (o.symbol, o.order_id))
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
            if o is not None and o.account == acct.name and (not cid or o.client_order_id == cid):
                return o
            raise ApiError(code, msg)
        # The newest order with that id: an id may be reused once the earlier order is closed.
        o = self.by_cid.get((acct.name, inst.symbol, cid or ""))
        if o is None:
            raise ApiError(code, msg)
        return o

    # -- order entry -----------------------------------------------------------------------
    def place(self, acct: Account, params: dict[str, str], dry_run: bool = False
              ) -> tuple[SimOrder, dict[str, Any]]:
        """Validate and accept a new order; returns it and its ACK snapshot. Raises ApiError.

        ``dry_run`` (``POST /fapi/v1/order/test``) checks every rule and stops before accepting."""
        inst = self.instrument(params.get("symbol"))
        side = mandatory(params, "side")
        if side not in ("BUY", "SELL"):
            raise ApiError(-1117, "Invalid side.")
        otype = mandatory(params, "type")
        if otype in _ALGO_TYPES:
            raise ApiError(-4120, "Order type not supported for this endpoint. Please use the Algo Order API "
                                  "endpoints instead.")
        if otype not in ("LIMIT", "MARKET"):
            raise ApiError(-1116, "Invalid orderType.")
        ps = params.get("positionSide", "BOTH")
        if ps != "BOTH":
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        is_buy = side == "BUY"
        if otype == "LIMIT":
            tif = mandatory(params, "timeInForce")
            if tif not in _TIFS:
                raise ApiError(-1115, "Invalid timeInForce.")
            lots = _decimal_param(params, "quantity", inst.qty_scale)
            ticks = _decimal_param(params, "price", inst.price_scale)
        else:
            if params.get("price"):
                raise ApiError(-1106, "Parameter 'price' sent when not required.")
            tif = "GTC"
            lots = _decimal_param(params, "quantity", inst.qty_scale)
            ticks = 0
        if params.get("priceMatch", "NONE") != "NONE":
            raise ApiError(-1106, "Parameter 'priceMatch' sent when not required.")
        ro_text = params.get("reduceOnly", "false").lower()
        if ro_text not in ("true", "false"):
            raise ApiError(-1102, "Mandatory parameter 'reduceOnly' was not sent, was empty/null, or malformed.")
        reduce_only = ro_text == "true"
        resp_type = params.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise ApiError(-1102, "Mandatory parameter 'newOrderRespType' was not sent, was empty/null, or malformed.")
        self._check_filters(inst, otype, is_buy, ticks, lots, reduce_only)

        eng = self.engine(inst.symbol)
        cid = params.get("newClientOrderId")
        if cid is not None:
            if not _CLIENT_ID.match(cid):
                raise ApiError(-4015, "Client order id is not valid.")
            prev = self.by_cid.get((acct.name, inst.symbol, cid))
            if prev is not None and prev.is_open:
                raise ApiError(-4116, "ClientOrderId is duplicated.")
        mine = self.open_orders(acct, inst.symbol)
        if inst.max_num_orders and len(mine) >= inst.max_num_orders:
            raise ApiError(-2025, "Reach max open order limit.")
        now = self.market.now_ms()
        oid = self.next_order_id.get(inst.symbol, 1)
        order = SimOrder(account=acct.name, symbol=inst.symbol, order_id=oid,
                         client_order_id=cid or f"sim-{oid}", is_buy=is_buy, type=otype, tif=tif,
                         price_ticks=ticks, qty_lots=lots, reduce_only=reduce_only, time_ms=now)
        order.resp_type = resp_type
        if reduce_only and self.reduce_cap(order) == 0:
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        if not reduce_only:
            self._check_margin(acct, inst, order, mine)
        if tif == "GTX" and eng.fillable(order, 1) > 0:
            raise ApiError(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                  "rejected. The order will not be recorded in the order history")
        if tif == "FOK" and eng.fillable(order, lots) < lots:
            raise ApiError(-5021, "Due to the order could not be filled immediately, the FOK order has been "
                                  "rejected. The order will not be recorded in the order history")

        if dry_run:
            return order, {}
        self.next_order_id[inst.symbol] = oid + 1
        self.orders[(inst.symbol, oid)] = order
        self.by_cid[(acct.name, inst.symbol, order.client_order_id)] = order
        ack = order_json(inst, order)
        self._record("NEW", inst, order)
        self._event(inst, order, "NEW")
        eng.take(order)
        if order.remaining > 0 and order.is_open:
            if otype == "LIMIT" and tif in ("GTC", "GTX"):
                eng.rest(order)
            else:
                self._expire(inst, order, 9 if otype == "MARKET" else 2)
        self._run_sweep()
        return order, ack

    def _check_filters(self, inst: Instrument, otype: str, is_buy: bool, ticks: int, lots: int,
                       reduce_only: bool) -> None:
        f = self._filter_cache.get(inst.symbol)
        if f is None:
            f = self._filter_cache[inst.symbol] = Filters(inst)
        check_filters(f, inst, otype, is_buy, ticks, lots, reduce_only, self.mark(inst.symbol))

    def _check_margin(self, acct: Account, inst: Instrument, order: SimOrder, mine: list[SimOrder]) -> None:
        grow = acct.increase_lots(inst.symbol, order.is_buy, order.qty_lots)
        if grow <= 0:
            return
        mark = self.mark(inst.symbol)
        ref = order.price_ticks or mark or 0
        need = qty(inst, grow) * px(inst, ref) / acct.leverage
        if need > self.available(acct):
            raise ApiError(-2019, "Margin is insufficient.")

    def available(self, acct: Account) -> Decimal:
        """Cross available balance: wallet + unrealized PnL - position and open-order margin."""
        total = sum(acct.wallet.values(), ZERO)
        for sym, inst in self.market.instruments.items():
            mark = self.mark(sym) if sym in acct.positions or sym in self.engines else None
            total += acct.unrealized(inst, mark) - acct.position_margin(inst, mark)
            if sym in self.engines:
                total -= acct.order_margin(inst, self.open_orders(acct, sym), mark)
        return total

    def cancel(self, acct: Account, params: dict[str, str]) -> SimOrder:
        o = self.find(acct, params, -2011, "Unknown order sent.")
        if not o.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        self._cancel(o)
        return o

    def _cancel(self, o: SimOrder) -> None:
        inst = self.market.instruments[o.symbol]
        self.engine(o.symbol).cancel(o)
        o.status = CANCELED
        o.update_ms = self.market.now_ms()
        self._record("CANCELED", inst, o)
        self._event(inst, o, "CANCELED")

    def cancel_all(self, acct: Account, symbol: str) -> int:
        orders = self.open_orders(acct, symbol)
        for o in orders:
            self._cancel(o)
        return len(orders)

    def _expire(self, inst: Instrument, o: SimOrder, reason: int) -> None:
        self.engine(o.symbol).cancel(o)
        o.status = EXPIRED
        o.expire_reason = reason
        o.update_ms = self.market.now_ms()
        self._record("EXPIRED", inst, o)
        self._event(inst, o, "EXPIRED")

    # -- fills (FillSink) ------------------------------------------------------------------
    def reduce_cap(self, order: SimOrder) -> int:
        acct = self._by_name(order.account)
        pos = acct.positions.get(order.symbol)
        amt = pos.amt if pos else 0
        if order.is_buy:
            return -amt if amt < 0 else 0
        return amt if amt > 0 else 0

    def on_fill(self, order: SimOrder, price_ticks: int, qty_lots: int, is_maker: bool, trade_id: int) -> None:
        inst = self.market.instruments[order.symbol]
        acct = self._by_name(order.account)
        now = self.market.now_ms()
        rate = self.maker_rate if is_maker else self.taker_rate
        fee = (notional(inst, price_ticks, qty_lots) * rate).quantize(Q8)
        realized = acct.apply_fill(inst, order.is_buy, price_ticks, qty_lots, fee, now)
        order.update_ms = now
        self.user_trades.setdefault((acct.name, order.symbol), []).append({
            "buyer": order.is_buy, "commission": fmt8(fee), "commissionAsset": inst.margin_asset, "id": trade_id,
            "maker": is_maker, "orderId": order.order_id, "price": fixed(price_ticks, inst.price_scale),
            "qty": fixed(qty_lots, inst.qty_scale), "quoteQty": str(notional(inst, price_ticks, qty_lots)),
            "realizedPnl": fmt8(realized), "side": "BUY" if order.is_buy else "SELL", "positionSide": "BOTH",
            "symbol": order.symbol, "time": now,
        })
        self._record("TRADE", inst, order, lastQty=inst.lots_to_qty(qty_lots),
                     lastPrice=inst.ticks_to_price(price_ticks), tradeId=trade_id, maker=is_maker,
                     fee=str(fee.normalize()), realizedPnl=str(realized.normalize()))
        self._event(inst, order, "TRADE", last_lots=qty_lots, last_ticks=price_ticks, fee=fee,
                    trade_id=trade_id, maker=is_maker, realized=realized)
        if self.wants(acct.name):
            self.emit(acct.name, account_update(inst, acct, now, self.mark(inst.symbol)))
        self._sweep.add((acct.name, order.symbol))

    def _run_sweep(self) -> None:
        """Expire reduce-only orders that can no longer reduce (position closed or flipped)."""
        while self._sweep:
            name, symbol = self._sweep.pop()
            acct = self._by_name(name)
            for o in self.open_orders(acct, symbol):
                if o.reduce_only and self.reduce_cap(o) == 0:
                    self._expire(self.market.instruments[symbol], o, 4)

    # -- MarketListener --------------------------------------------------------------------
    def on_book_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        eng = self.engines.get(symbol)
        if eng is not None:
            eng.on_book_level(is_bid, price_ticks, qty_lots)
            if self._sweep:
                self._run_sweep()

    def on_market_trade(self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool,
                        ts_ms: int) -> None:
        eng = self.engines.get(symbol)
        if eng is not None:
            eng.on_market_trade(price_ticks, qty_lots, buyer_is_maker)
            if self._sweep:
                self._run_sweep()

    # -- events and log --------------------------------------------------------------------
    def _by_name(self, name: str) -> Account:
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

    def _record(self, event: str, inst: Instrument, o: SimOrder, **extra: Any) -> None:
        rec: dict[str, Any] = {
            "ts": self.market.now_ms(), "event": event, "account": o.account, "symbol": o.symbol,
            "orderId": o.order_id, "clientOrderId": o.client_order_id, "side": "BUY" if o.is_buy else "SELL",
            "type": o.type, "timeInForce": o.tif, "price": inst.ticks_to_price(o.price_ticks),
            "origQty": inst.lots_to_qty(o.qty_lots), "reduceOnly": o.reduce_only, "status": o.status,
            "executedQty": inst.lots_to_qty(o.filled_lots),
        }
        rec.update(extra)
        if self.recv_ns:
            rec["ts_recv_ns"] = self.recv_ns
        self.order_log.append(rec)
        if self._log_file is not None:
            self._log_file.write(json.dumps(rec) + "\n")
            self._log_file.flush()

    def order_result(self, o: SimOrder, with_time: bool = False) -> dict[str, Any]:
        return order_json(self.market.instruments[o.symbol], o, with_time)


__all__ = ["Venue", "NEW", "mandatory"]
