"""Binance order words <-> b25's: sides, types, time in force, statuses, error codes, and the
order and trade objects of answers, queries and the user-data stream as ``OrderReport``/``Fill``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from procs.core import messages as M
from procs.venue import messages as V

SIDE = {M.BUY: "BUY", M.SELL: "SELL"}
SIDE_OF = {v: k for k, v in SIDE.items()}
TIF = {M.GTC: "GTC", M.IOC: "IOC", M.FOK: "FOK", M.POST_ONLY: "GTX"}
TIF_OF = {v: k for k, v in TIF.items()}
ORDER_TYPE = {M.LIMIT: "LIMIT", M.MARKET: "MARKET", M.STOP_MARKET: "STOP_MARKET",
              M.TAKE_PROFIT_MARKET: "TAKE_PROFIT_MARKET", M.TRAILING_STOP_MARKET: "TRAILING_STOP_MARKET"}
ORDER_TYPE_OF = {v: k for k, v in ORDER_TYPE.items()}
STATUS_OF = {"NEW": V.NEW, "PARTIALLY_FILLED": V.PARTIALLY_FILLED, "FILLED": V.FILLED, "CANCELED": V.CANCELED,
             "REJECTED": V.REJECTED, "EXPIRED": V.EXPIRED, "EXPIRED_IN_MATCH": V.EXPIRED}

# error codes (docs/binance-usdm-protocol.md "Error codes") -> b25's reject reasons
NO_SUCH_ORDER = -2013  # "Order does not exist."
DUPLICATE_CLIENT_ID = -4116
UNAVAILABLE = -1001  # with HTTP 503 "Service Unavailable.": not acted on
REJECT_OF = {
    -1001: M.REJECT_UNAVAILABLE, -1021: M.REJECT_TIMESTAMP, -1022: M.REJECT_AUTH, -2014: M.REJECT_AUTH,
    -2015: M.REJECT_AUTH, -2011: M.REJECT_UNKNOWN_ORDER, -2013: M.REJECT_UNKNOWN_ORDER,
    -4116: M.REJECT_DUPLICATE_ID, -2019: M.REJECT_MARGIN, -2022: M.REJECT_REDUCE_ONLY, -5022: M.REJECT_POST_ONLY,
    -5021: M.REJECT_NOT_FILLABLE, -1111: M.REJECT_FILTER, -4001: M.REJECT_FILTER, -4002: M.REJECT_FILTER,
    -4003: M.REJECT_FILTER, -4004: M.REJECT_FILTER, -4005: M.REJECT_FILTER, -4013: M.REJECT_FILTER,
    -4014: M.REJECT_FILTER, -4016: M.REJECT_FILTER, -4023: M.REJECT_FILTER, -4024: M.REJECT_FILTER,
    -4164: M.REJECT_FILTER, -1102: M.REJECT_BAD_REQUEST, -1106: M.REJECT_BAD_REQUEST,
    -1115: M.REJECT_BAD_REQUEST, -1116: M.REJECT_BAD_REQUEST, -1117: M.REJECT_BAD_REQUEST,
    -1121: M.REJECT_BAD_REQUEST, -4015: M.REJECT_BAD_REQUEST, -4120: M.REJECT_BAD_REQUEST,
    # amend [D:Modify-Order]: only LIMIT orders, too many amends of one order, nothing to change
    -5025: M.REJECT_BAD_REQUEST, -5026: M.REJECT_OTHER, -5027: M.REJECT_BAD_REQUEST,
    # conditional orders: would trigger at once; a parameter refused
    -2021: M.REJECT_WOULD_TRIGGER, -1130: M.REJECT_BAD_REQUEST,
    -4135: M.REJECT_BAD_REQUEST,
}


# an algo order's status [D:Event-Algo-Order-Update] -> b25's: waiting, or triggered and working,
# is NEW; FINISHED (the order it placed is done) is FILLED when that order filled whole, else
# CANCELED; REJECTED (the order it placed was refused at the trigger) ends it as EXPIRED
ALGO_STATUS_OF = {"NEW": V.NEW, "TRIGGERING": V.NEW, "TRIGGERED": V.NEW, "CANCELED": V.CANCELED,
                  "EXPIRED": V.EXPIRED, "REJECTED": V.EXPIRED}
WORKING_TYPE = {True: "MARK_PRICE", False: "CONTRACT_PRICE"}


def callback_rate(bps: int) -> str:
    """A trailing stop's callback in basis points as the exchange's percent with one decimal."""
    return f"{bps // 100}.{bps % 100 // 10}"


def algo_report(d: dict[str, Any], *, stream: bool = False) -> V.OrderReport:
    """An algo (conditional) order: an answer or list entry of the algo endpoints, or with
    ``stream`` an ALGO_UPDATE's ``o`` object; ValueError naming the field when a number in it is
    not one."""
    if stream:
        g = {"caid": "clientAlgoId", "aid": "algoId", "o": "orderType", "s": "symbol", "S": "side", "q": "quantity",
             "X": "algoStatus", "ai": "actualOrderId", "aq": "executedQty", "tp": "triggerPrice"}
        d = {long: d[short] for short, long in g.items() if short in d}
    status = str(d.get("algoStatus", ""))
    qty = _decimal(d, "quantity")
    done = _decimal(d, "executedQty") if d.get("executedQty") not in (None, "") else "0"
    if status == "FINISHED":
        code = V.FILLED if _dec(done) >= _dec(qty) > 0 else V.CANCELED
    else:
        code = ALGO_STATUS_OF.get(status)  # type: ignore[assignment]
    trigger = _decimal(d, "triggerPrice") if d.get("triggerPrice") else (
        _decimal(d, "activatePrice") if d.get("activatePrice") else "0")
    return V.OrderReport(
        client_order_id=str(d.get("clientAlgoId", "")), order_id=_int(d.get("algoId")), symbol=str(d.get("symbol", "")),
        status=code, side=SIDE_OF.get(str(d.get("side", "")), 0),
        order_type=ORDER_TYPE_OF.get(str(d.get("orderType", "")), 0), qty=qty, cum_qty=done,
        reduce_only=bool(d.get("reduceOnly")), ts_event_ms=_int(d.get("updateTime")), conditional=True,
        trigger_price=str(trigger), triggered_order_id=_int(d.get("actualOrderId")))


def _dec(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def reject_reason(code: int) -> int:
    """b25's name for an error code (REJECT_OTHER for one it has none for)."""
    return REJECT_OF.get(code, M.REJECT_OTHER)


_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_I64 = 1 << 63


def _int(value: Any) -> int:
    """An id or a time: 0 when absent or not an integer the venue could have sent."""
    try:
        v = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0
    return v if -_I64 < v < _I64 else 0


def is_decimal(text: str) -> bool:
    """Decimal text as the venue writes numbers (``-0.001``, ``60000``): no exponent, no sign +."""
    return bool(_DECIMAL.match(text))


def _decimal(d: dict[str, Any], key: str, default: str = "0") -> str:
    """A number field as the exact decimal text the venue sends; ValueError naming the field."""
    value = d.get(key, default)
    text = value if isinstance(value, str) else ""
    if not _DECIMAL.match(text):
        raise ValueError(f"{key}={str(value)[:40]!r} is not a decimal number")
    return text


def order_report(d: dict[str, Any]) -> V.OrderReport:
    """An order object (an answer to place/cancel/query, an ``openOrders`` entry); ValueError
    naming the field when a number in it is not one."""
    return V.OrderReport(
        client_order_id=str(d.get("clientOrderId", "")), order_id=_int(d.get("orderId")),
        symbol=str(d.get("symbol", "")), status=STATUS_OF.get(str(d.get("status", ""))),
        side=SIDE_OF.get(str(d.get("side", "")), 0), order_type=ORDER_TYPE_OF.get(str(d.get("type", "")), 0),
        tif=TIF_OF.get(str(d.get("timeInForce", "")), 0), price=_decimal(d, "price"),
        qty=_decimal(d, "origQty"), cum_qty=_decimal(d, "executedQty"), reduce_only=d.get("reduceOnly") is True,
        ts_event_ms=_int(d.get("updateTime")))


def order_reports(rows: Any) -> list[V.OrderReport]:
    """An ``openOrders`` answer, whole; ValueError naming the entry and field that is wrong (a
    list read in part would make the orders left out look vanished)."""
    return _whole_list(rows, order_report, "open orders")


def algo_reports(rows: Any) -> list[V.OrderReport]:
    """An ``openAlgoOrders`` answer, whole; ValueError naming the entry and field that is wrong."""
    return _whole_list(rows, algo_report, "open algo orders")


def _whole_list(rows: Any, decode: Callable[[dict[str, Any]], V.OrderReport], what: str) -> list[V.OrderReport]:
    if not isinstance(rows, list):
        raise ValueError(f"{what} answer is not a list: {str(rows)[:100]}")
    out = []
    for k, d in enumerate(rows):
        if not isinstance(d, dict):
            raise ValueError(f"{what} entry {k} is not an object: {str(d)[:100]}")
        try:
            out.append(decode(d))
        except ValueError as exc:
            raise ValueError(f"{what} entry {k}: {exc}") from None
    return out


def fill(t: dict[str, Any]) -> V.Fill:
    """A ``userTrades`` entry; KeyError or ValueError when it has no trade id, quantity or price."""
    if not isinstance(t, dict):
        raise ValueError(f"a trade is an object: {str(t)[:40]!r}")
    trade_id = int(t["id"])
    if not 0 <= trade_id < _I64:
        raise ValueError(f"id={trade_id} is not a trade id")
    for key in ("qty", "price"):
        if key not in t:
            raise KeyError(key)
    return V.Fill(trade_id=trade_id, order_id=_int(t.get("orderId", -1)), qty=_decimal(t, "qty"),
                  price=_decimal(t, "price"), fee=_decimal(t, "commission"), maker=t.get("maker") is True,
                  ts_event_ms=_int(t.get("time")))


def stream_report(ev: dict[str, Any]) -> V.OrderReport | None:
    """An ``ORDER_TRADE_UPDATE`` or ``ALGO_UPDATE`` user-data event (None for any other event or
    shape); ValueError naming the field when a number in it is not one."""
    if ev.get("e") == "ALGO_UPDATE" and isinstance(ev.get("o"), dict):
        rep = algo_report(ev["o"], stream=True)
        return msgspec.structs.replace(rep, ts_event_ms=_int(ev.get("E")))
    if ev.get("e") != "ORDER_TRADE_UPDATE":
        return None
    u = ev.get("o")
    if not isinstance(u, dict):
        raise ValueError(f"o={str(u)[:40]!r} is not an order")
    ts = _int(ev.get("E"))
    trade = None
    if u.get("x") == "TRADE":
        trade = V.Fill(trade_id=_int(u.get("t")), order_id=_int(u.get("i")), qty=_decimal(u, "l"),
                       price=_decimal(u, "L"), fee=_decimal(u, "n"), maker=u.get("m") is True, ts_event_ms=ts)
    return V.OrderReport(
        client_order_id=str(u.get("c", "")), order_id=_int(u.get("i")), symbol=str(u.get("s", "")),
        status=STATUS_OF.get(str(u.get("X", ""))), side=SIDE_OF.get(str(u.get("S", "")), 0),
        order_type=ORDER_TYPE_OF.get(str(u.get("o", "")), 0), tif=TIF_OF.get(str(u.get("f", "")), 0),
        price=_decimal(u, "p"), qty=_decimal(u, "q"), cum_qty=_decimal(u, "z"),
        reduce_only=u.get("R") is True, ts_event_ms=ts, fill=trade, amended=u.get("x") == "AMENDMENT")
