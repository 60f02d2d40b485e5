"""JSON shapes of the simulated exchange: order objects and user-data stream events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from procs.core.instruments import Instrument
from procs.exchange_sim.trading.accounts import ZERO, Account, fmt8, px
from procs.exchange_sim.trading.matching import SimOrder


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
    """The REST / WS API order object (new, cancel, query, openOrders)."""
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
        "origType": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": "BUY" if o.is_buy else "SELL",
        "positionSide": "BOTH",
        "stopPrice": fixed(0, inst.price_scale),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "updateTime": o.update_ms,
    }
    if with_time:
        d["time"] = o.time_ms
    return d


def order_update(
    inst: Instrument, o: SimOrder, exec_type: str, ts: int, *, bid_notional: Decimal, ask_notional: Decimal,
    last_lots: int = 0, last_ticks: int = 0, fee: Decimal = ZERO, trade_id: int = 0, maker: bool = False,
    realized: Decimal = ZERO,
) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE with the field set of the protocol doc, section C."""
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": ts,
        "T": ts,
        "o": {
            "s": o.symbol,
            "c": o.client_order_id,
            "S": "BUY" if o.is_buy else "SELL",
            "o": o.type,
            "f": o.tif,
            "q": fixed(o.qty_lots, inst.qty_scale),
            "p": fixed(o.price_ticks, inst.price_scale),
            "ap": avg_price(inst, o),
            "sp": fixed(0, inst.price_scale),
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
            "wt": "CONTRACT_PRICE",
            "ot": o.type,
            "ps": "BOTH",
            "cp": False,
            "rp": fmt8(realized),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
            "er": str(o.expire_reason),
        },
    }


def account_update(inst: Instrument, acct: Account, ts: int, mark_ticks: int | None, reason: str = "ORDER"
                   ) -> dict[str, Any]:
    """ACCOUNT_UPDATE after a fill: the margin asset's balance and the changed position."""
    asset = inst.margin_asset
    wb = acct.wallet.get(asset, ZERO)
    pos = acct.position(inst.symbol)
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
                "up": fmt8(acct.unrealized(inst, mark_ticks)),
                "mt": "cross",
                "iw": "0",
                "ps": "BOTH",
            }],
        },
    }


def notional(inst: Instrument, ticks: int, lots: int) -> Decimal:
    return px(inst, ticks) * Decimal(lots).scaleb(-inst.qty_scale)
