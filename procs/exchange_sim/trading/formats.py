"""JSON shapes of the simulated exchange: order and algo-order objects and user-data stream events.

Field sets follow the exchange's documentation: order objects [D:New-Order, Modify-Order,
Cancel-Multiple-Orders], algo orders [D:New-Algo-Order, Query-Algo-Order] and the user-data
events ORDER_TRADE_UPDATE, TRADE_LITE, ACCOUNT_UPDATE, ACCOUNT_CONFIG_UPDATE, ALGO_UPDATE and
CONDITIONAL_ORDER_TRIGGER_REJECT [D:user-data-streams/Event-*].
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from procs.core.instruments import Instrument
from procs.exchange_sim.trading.accounts import ZERO, Account, fmt8, px
from procs.exchange_sim.trading.matching import SimOrder

if TYPE_CHECKING:
    from procs.exchange_sim.trading.triggers import AlgoOrder

TRAILING = "TRAILING_STOP_MARKET"


def fixed(value: int, scale: int) -> str:
    """Integer units of 10**-scale as fixed-point text ("61000.00"), like Binance prints."""
    if scale == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}"


def avg_price(inst: Instrument, o: SimOrder) -> str:
    scale = max(inst.price_scale, 5)
    if not o.filled_lots:
        return fixed(0, scale)
    d = Decimal(o.cum_quote) / Decimal(o.filled_lots)
    return str(d.scaleb(-inst.price_scale).quantize(Decimal(1).scaleb(-scale)))


def cum_quote(inst: Instrument, o: SimOrder) -> str:
    return fixed(o.cum_quote, inst.price_scale + inst.qty_scale)


def order_json(inst: Instrument, o: SimOrder, with_time: bool = False) -> dict[str, Any]:
    """The REST / WS API order object (new, modify, cancel, query, openOrders)."""
    d: dict[str, Any] = {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": fixed(o.price_ticks, inst.price_scale),
        "avgPrice": avg_price(inst, o),
        "origQty": fixed(o.qty_lots, inst.qty_scale),
        "executedQty": fixed(o.filled_lots, inst.qty_scale),
        "cumQty": fixed(o.filled_lots, inst.qty_scale),
        "cumQuote": cum_quote(inst, o),
        "timeInForce": o.tif,
        "type": o.type,
        "origType": o.orig_type,
        "reduceOnly": o.reduce_only,
        "closePosition": o.close_position,
        "side": "BUY" if o.is_buy else "SELL",
        "positionSide": o.position_side,
        "stopPrice": fixed(o.stop_ticks, inst.price_scale),
        "workingType": o.working_type,
        "priceProtect": o.price_protect,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "updateTime": o.update_ms,
    }
    if o.orig_type == TRAILING:
        d["activatePrice"] = fixed(o.activation_ticks, inst.price_scale)
        d["priceRate"] = o.callback_rate
    if with_time:
        d["time"] = o.time_ms
    return d


def order_update(
    inst: Instrument, o: SimOrder, exec_type: str, ts: int, *, bid_notional: Decimal, ask_notional: Decimal,
    last_lots: int = 0, last_ticks: int = 0, fee: Decimal = ZERO, trade_id: int = 0, maker: bool = False,
    realized: Decimal = ZERO,
) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE with the field set of the protocol doc, section C."""
    body: dict[str, Any] = {
        "s": o.symbol,
        "c": o.client_order_id,
        "S": "BUY" if o.is_buy else "SELL",
        "o": o.type,
        "f": o.tif,
        "q": fixed(o.qty_lots, inst.qty_scale),
        "p": fixed(o.price_ticks, inst.price_scale),
        "ap": avg_price(inst, o),
        "sp": fixed(o.stop_ticks, inst.price_scale),
        "x": exec_type,
        "X": o.status,
        "i": o.order_id,
        "l": fixed(last_lots, inst.qty_scale),
        "z": fixed(o.filled_lots, inst.qty_scale),
        "L": fixed(last_ticks, inst.price_scale),
        "N": inst.margin_asset,
        "n": fmt8(fee),
        "T": ts,
        "t": trade_id,
        "b": fmt8(bid_notional),
        "a": fmt8(ask_notional),
        "m": maker,
        "R": o.reduce_only,
        "wt": o.working_type,
        "ot": o.orig_type,
        "ps": o.position_side,
        "cp": o.close_position,
        "rp": fmt8(realized),
        "pP": o.price_protect,
        "si": 0,
        "ss": 0,
        "V": "NONE",
        "pm": "NONE",
        "gtd": 0,
        "er": str(o.expire_reason),
    }
    if o.orig_type == TRAILING:
        body["AP"] = fixed(o.activation_ticks, inst.price_scale)
        body["cr"] = o.callback_rate
    return {"e": "ORDER_TRADE_UPDATE", "E": ts, "T": ts, "o": body}


def trade_lite(inst: Instrument, o: SimOrder, ts: int, last_lots: int, last_ticks: int, trade_id: int,
               maker: bool) -> dict[str, Any]:
    """TRADE_LITE: the fill-only event the exchange sends ahead of the full ORDER_TRADE_UPDATE."""
    return {
        "e": "TRADE_LITE", "E": ts, "T": ts, "s": o.symbol, "q": fixed(o.qty_lots, inst.qty_scale),
        "p": fixed(o.price_ticks, inst.price_scale), "m": maker, "c": o.client_order_id,
        "S": "BUY" if o.is_buy else "SELL", "L": fixed(last_ticks, inst.price_scale),
        "l": fixed(last_lots, inst.qty_scale), "t": trade_id, "i": o.order_id,
    }


def account_update(inst: Instrument, acct: Account, ts: int, mark_ticks: int | None, side: str = "BOTH",
                   reason: str = "ORDER") -> dict[str, Any]:
    """ACCOUNT_UPDATE after a fill: the margin asset's balance and the changed position."""
    asset = inst.margin_asset
    wb = acct.wallet.get(asset, ZERO)
    pos = acct.position(inst.symbol, side)
    isolated = acct.symbol_settings(inst.symbol).isolated
    return {
        "e": "ACCOUNT_UPDATE",
        "E": ts,
        "T": ts,
        "a": {
            "m": reason,
            "B": [{"a": asset, "wb": fmt8(wb), "cw": fmt8(wb), "bc": "0"}],
            "P": [{
                "s": inst.symbol,
                "pa": fixed(pos.amt, inst.qty_scale),
                "ep": fmt8(pos.entry),
                "bep": fmt8(pos.entry),
                "cr": fmt8(pos.realized),
                "up": fmt8(acct.unrealized(inst, mark_ticks, side)),
                "mt": "isolated" if isolated else "cross",
                "iw": "0",
                "ps": side,
            }],
        },
    }


def leverage_update(symbol: str, leverage: int, ts: int) -> dict[str, Any]:
    """ACCOUNT_CONFIG_UPDATE for a symbol's new leverage."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": ts, "T": ts, "ac": {"s": symbol, "l": leverage}}


def multi_assets_update(on: bool, ts: int) -> dict[str, Any]:
    """ACCOUNT_CONFIG_UPDATE for a change of the Multi-Assets mode."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": ts, "T": ts, "ai": {"j": on}}


def algo_json(inst: Instrument, a: AlgoOrder, full: bool = True) -> dict[str, Any]:
    """An algo (conditional) order as ``POST /fapi/v1/algoOrder`` and the lists answer it."""
    spec = a.spec
    d: dict[str, Any] = {
        "algoId": a.algo_id,
        "clientAlgoId": a.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": spec.type,
        "symbol": a.symbol,
        "side": "BUY" if spec.is_buy else "SELL",
        "positionSide": spec.position_side,
        "timeInForce": spec.tif,
        "quantity": fixed(spec.qty_lots, inst.qty_scale),
        "algoStatus": a.status,
    }
    if full:
        actual = a.actual
        d.update({
            "actualOrderId": str(actual.order_id) if actual is not None else "",
            "actualPrice": avg_price(inst, actual) if actual is not None else fixed(0, max(inst.price_scale, 5)),
        })
    d.update({
        "triggerPrice": fixed(spec.stop_ticks, inst.price_scale),
        "price": fixed(spec.price_ticks, inst.price_scale),
        "icebergQuantity": None,
        "selfTradePreventionMode": "NONE",
        "workingType": spec.working_type,
        "priceMatch": "NONE",
        "closePosition": spec.close_position,
        "priceProtect": spec.price_protect,
        "reduceOnly": spec.reduce_only,
        "createTime": a.create_ms,
        "updateTime": a.update_ms,
        "triggerTime": a.trigger_ms,
        "goodTillDate": 0,
    })
    if spec.type == TRAILING:
        d["activatePrice"] = fixed(spec.activation_ticks, inst.price_scale)
        d["callbackRate"] = spec.callback_rate
    return d


def algo_update(inst: Instrument, a: AlgoOrder, ts: int) -> dict[str, Any]:
    """ALGO_UPDATE: an algo order was placed, triggered, finished, canceled, rejected or expired."""
    spec = a.spec
    actual = a.actual
    body: dict[str, Any] = {
        "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": spec.type, "s": a.symbol,
        "S": "BUY" if spec.is_buy else "SELL", "ps": spec.position_side, "f": spec.tif,
        "q": fixed(spec.qty_lots, inst.qty_scale), "X": a.status,
        "ai": str(actual.order_id) if actual is not None else "",
        "ap": avg_price(inst, actual) if actual is not None else fixed(0, max(inst.price_scale, 5)),
        "aq": fixed(actual.filled_lots if actual is not None else 0, inst.qty_scale),
        "act": actual.type if actual is not None else "",
        "tp": fixed(spec.stop_ticks, inst.price_scale), "p": fixed(spec.price_ticks, inst.price_scale),
        "V": "NONE", "wt": spec.working_type, "pm": "NONE", "cp": spec.close_position,
        "pP": spec.price_protect, "R": spec.reduce_only, "tt": a.trigger_ms, "gtd": 0,
        "rm": a.reject_reason,
    }
    if spec.type == TRAILING:
        body["ia"] = a.trail.activated
    return {"e": "ALGO_UPDATE", "E": ts, "T": ts, "o": body}


def trigger_reject(symbol: str, order_id: int, reason: str, ts: int) -> dict[str, Any]:
    """CONDITIONAL_ORDER_TRIGGER_REJECT: a triggered order the matching engine refused."""
    return {"e": "CONDITIONAL_ORDER_TRIGGER_REJECT", "E": ts, "T": ts, "or": {"s": symbol, "i": order_id, "r": reason}}


def notional(inst: Instrument, ticks: int, lots: int) -> Decimal:
    return px(inst, ticks) * Decimal(lots).scaleb(-inst.qty_scale)
