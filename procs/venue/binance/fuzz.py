"""The Binance adapter's decoders under generated input (``b25 fuzz``: procs/tools/reliability/fuzz.py).

``SAMPLES`` holds well-formed messages of every kind the adapter reads, in the shapes of
docs/binance-usdm-protocol.md: market frames (depth diff, trade, aggTrade, bookTicker,
markPrice), the REST depth snapshot, user-data events (ALGO_UPDATE included), WS API answers, REST answers (an order,
user trades, open orders, the account, positions, exchangeInfo, an algo order, open algo orders). The fuzzer mutates them (a
value replaced by any JSON value, a key dropped or added, the text cut, bytes changed) and hands
the bytes to the check of their kind in ``CHECKS``. Each check runs the adapter's own decoder and
holds it to its contract for any input: b25's struct with well-formed numbers, or the documented
answer to bad input (None, counted; ``VenueError``; ``ValueError`` naming the field), never any
other exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from procs.venue import messages as V

from .rest import WireReply, classify

# the oracle of a number's text, kept apart from the adapter's own check (orders.is_decimal)
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


def is_decimal(text: str) -> bool:
    return isinstance(text, str) and bool(_NUMBER.match(text))

_ORDER = {"orderId": 22542179, "symbol": "BTCUSDT", "status": "NEW", "clientOrderId": "b25-3-17", "price": "60000.10",
          "avgPrice": "0.00000", "origQty": "0.002", "executedQty": "0", "cumQuote": "0", "timeInForce": "GTC",
          "type": "LIMIT", "reduceOnly": False, "closePosition": False, "side": "BUY", "positionSide": "BOTH",
          "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "LIMIT",
          "updateTime": 1700000000123}
_OTU = {"e": "ORDER_TRADE_UPDATE", "E": 1700000000200, "T": 1700000000199,
        "o": {"s": "BTCUSDT", "c": "b25-3-17", "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "0.002", "p": "60000.10",
              "ap": "60000.10", "sp": "0", "x": "TRADE", "X": "PARTIALLY_FILLED", "i": 22542179, "l": "0.001",
              "z": "0.001", "L": "60000.10", "N": "USDT", "n": "0.01200002", "T": 1700000000199, "t": 901,
              "b": "0", "a": "0", "m": True, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT", "ps": "BOTH",
              "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0}}
_ALGO = {"algoId": 3001, "clientAlgoId": "b25-3-19", "algoType": "CONDITIONAL", "orderType": "STOP_MARKET",
         "symbol": "BTCUSDT", "side": "SELL", "positionSide": "BOTH", "timeInForce": "GTC", "quantity": "0.002",
         "algoStatus": "NEW", "actualOrderId": "", "actualPrice": "0.00000", "triggerPrice": "59000.00",
         "price": "0.00", "icebergQuantity": None, "selfTradePreventionMode": "NONE", "workingType": "CONTRACT_PRICE",
         "priceMatch": "NONE", "closePosition": False, "priceProtect": False, "reduceOnly": True,
         "createTime": 1700000000100, "updateTime": 1700000000100, "triggerTime": 0, "goodTillDate": 0}
_LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400, "count": 12},
           {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300, "count": 3}]
_SYMBOL = {"symbol": "BTCUSDT", "pricePrecision": 2, "quantityPrecision": 3, "contractType": "PERPETUAL",
           "marginAsset": "USDT", "quoteAsset": "USDT",
           "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.10", "minPrice": "261.10", "maxPrice": "809484"},
                       {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "1000"},
                       {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": "120"},
                       {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                       {"filterType": "MIN_NOTIONAL", "notional": "100"},
                       {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500"}]}

SAMPLES: dict[str, list[Any]] = {
    "market_frame": [
        {"stream": "btcusdt@depth@0ms", "data": {"e": "depthUpdate", "E": 1700000000100, "T": 1700000000099,
                                                 "s": "BTCUSDT", "U": 1001, "u": 1003, "pu": 1000,
                                                 "b": [["60000.00", "1.500"], ["59999.90", "0"]],
                                                 "a": [["60000.10", "0.250"]]}},
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1700000000101, "T": 1700000000100, "s": "BTCUSDT",
                                             "t": 5001, "p": "60000.10", "q": "0.010", "X": "MARKET", "m": False}},
        {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1700000000101, "a": 77, "s": "BTCUSDT",
                                                "p": "60000.10", "q": "0.010", "f": 5001, "l": 5002,
                                                "T": 1700000000100, "m": True}},
        {"stream": "btcusdt@bookTicker", "data": {"e": "bookTicker", "u": 1003, "s": "BTCUSDT", "b": "60000.00",
                                                  "B": "1.500", "a": "60000.10", "A": "0.250",
                                                  "T": 1700000000099, "E": 1700000000100}},
        {"stream": "btcusdt@markPrice@1s", "data": {"e": "markPriceUpdate", "E": 1700000000000, "s": "BTCUSDT",
                                                    "p": "60000.05", "i": "60001.00", "P": "60002.00",
                                                    "r": "0.00010000", "T": 1700006400000}},
        {"e": "depthUpdate", "E": 1700000000100, "s": "BTCUSDT", "U": 1001, "u": 1003, "pu": 1000,
         "b": [["60000.00", "1.500"]], "a": []},
    ],
    "depth_snapshot": [{"lastUpdateId": 1000, "E": 1700000000000, "T": 1700000000000,
                        "bids": [["60000.00", "1.500"], ["59999.90", "2.000"]], "asks": [["60000.10", "0.250"]]}],
    "user_stream": [
        _OTU,
        {**_OTU, "o": {**_OTU["o"], "x": "NEW", "X": "NEW", "l": "0", "z": "0", "L": "0", "n": "0", "t": 0}},
        {"e": "ACCOUNT_UPDATE", "E": 1700000000200, "T": 1700000000199,
         "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "1000.0", "cw": "1000.0", "bc": "0"}],
               "P": [{"s": "BTCUSDT", "pa": "0.001", "ep": "60000.1", "cr": "0", "up": "0", "mt": "cross",
                      "iw": "0", "ps": "BOTH"}]}},
        {"e": "listenKeyExpired", "E": 1700000000300, "listenKey": "abc"},
        {"e": "ALGO_UPDATE", "E": 1700000000400, "T": 1700000000400,
         "o": {"caid": "b25-3-19", "aid": 3001, "at": "CONDITIONAL", "o": "STOP_MARKET", "s": "BTCUSDT", "S": "SELL",
               "ps": "BOTH", "f": "GTC", "q": "0.002", "X": "FINISHED", "ai": "22542180", "ap": "58999.90",
               "aq": "0.002", "act": "MARKET", "tp": "59000.00", "p": "0.00", "V": "NONE", "wt": "CONTRACT_PRICE",
               "pm": "NONE", "cp": False, "pP": False, "R": True, "tt": 1700000000400, "gtd": 0}},
    ],
    "algo_order": [_ALGO, {**_ALGO, "algoStatus": "FINISHED", "actualOrderId": "22542180", "executedQty": "0.002"},
                   {**_ALGO, "orderType": "TRAILING_STOP_MARKET", "triggerPrice": "", "activatePrice": "61000.00",
                    "priceRate": "1.5"}],
    "open_algo_orders": [[_ALGO, {**_ALGO, "algoId": 3002, "clientAlgoId": "b25-3-20", "orderType": "TAKE_PROFIT",
                                  "price": "62000.00", "triggerPrice": "61990.00"}]],
    "ws_api": [
        {"id": 1, "status": 200, "result": _ORDER, "rateLimits": _LIMITS},
        {"id": 1, "status": 400, "error": {"code": -2013, "msg": "Order does not exist."}, "rateLimits": _LIMITS},
        {"id": 1, "status": 429, "error": {"code": -1003, "msg": "Too many requests.",
                                           "data": {"serverTime": 1700000000000, "retryAfter": 1700000001000}}},
        {"id": 1, "status": 503, "error": {"code": -1001, "msg": "Service Unavailable."}},
    ],
    "rest_order": [_ORDER, {**_ORDER, "status": "FILLED", "executedQty": "0.002"}],
    "rest_error": [{"code": -2013, "msg": "Order does not exist."}, {"code": -1021, "msg": "Timestamp outside"}],
    "user_trades": [[{"symbol": "BTCUSDT", "id": 901, "orderId": 22542179, "side": "BUY", "price": "60000.10",
                      "qty": "0.001", "realizedPnl": "0", "quoteQty": "60.0001", "commission": "0.01200002",
                      "commissionAsset": "USDT", "time": 1700000000199, "buyer": True, "maker": True}]],
    "open_orders": [[_ORDER, {**_ORDER, "clientOrderId": "b25-3-18", "side": "SELL", "price": "60010.00"}]],
    "account": [{"totalWalletBalance": "1000.00000000", "totalUnrealizedProfit": "0.10000000", "assets": []}],
    "position_risk": [[{"symbol": "BTCUSDT", "positionAmt": "0.001", "entryPrice": "60000.1", "positionSide": "BOTH"},
                       {"symbol": "ETHUSDT", "positionAmt": "-0.010", "entryPrice": "3000", "positionSide": "SHORT"}]],
    "exchange_info": [{"rateLimits": _LIMITS, "symbols": [_SYMBOL, {**_SYMBOL, "symbol": "ETHUSDT"}]}],
}


def depth_snapshot_body(last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    """A REST depth snapshot's body with these levels (the market_data target's checkpoints)."""
    return msgspec.json.encode({"lastUpdateId": last_update_id, "E": 0, "T": 0, "bids": bids, "asks": asks})


def _report_ok(r: V.OrderReport) -> None:
    for name in ("price", "qty", "cum_qty"):
        assert is_decimal(getattr(r, name)), f"{name}={getattr(r, name)!r} passed as a number"
    assert r.status is None or 0 <= r.status < len(V.STATUS_NAMES)
    if r.conditional:
        assert is_decimal(r.trigger_price), f"trigger_price={r.trigger_price!r} passed as a number"
    if r.fill is not None:
        _fill_ok(r.fill)


def _fill_ok(f: V.Fill) -> None:
    for name in ("qty", "price", "fee"):
        assert is_decimal(getattr(f, name)), f"fill {name}={getattr(f, name)!r} passed as a number"


def check_market_frame(raw: bytes) -> None:
    """Never raises; a frame it does not return is counted (a decode error or an ignored stream)."""
    from .market import MarketCodec

    for codec in (MarketCodec(), MarketCodec(raw_levels=True)):
        before = codec.decode_errors + codec.ignored
        stream, msg = codec.decode(raw)
        assert isinstance(stream, str)
        if msg is None:
            assert codec.decode_errors + codec.ignored == before + 1, "a frame dropped without being counted"


def check_depth_snapshot(raw: bytes) -> None:
    from .market import MarketCodec

    codec = MarketCodec()
    snap = codec.decode_snapshot(raw)
    assert snap is not None or codec.decode_errors == 1


def check_user_stream(raw: bytes) -> None:
    """Every event reaches the owner once, as a well-formed report or None; bad ones are counted."""
    from .userstream import UserStream

    got: list[V.OrderReport | None] = []
    stream = UserStream(None, "ws://unused", lambda r, _ts: got.append(r), lambda _n: None)  # type: ignore[arg-type]
    stream._text(raw, 1)
    assert len(got) == (0 if _is_expiry(raw) else 1), "an event must reach the owner once (a key expiry: never)"
    if got and got[0] is not None:
        _report_ok(got[0])
        assert stream.bad_events == 0


def _is_expiry(raw: bytes) -> bool:
    try:
        ev = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return isinstance(ev, dict) and ev.get("e") == "listenKeyExpired"


def check_ws_api(raw: bytes) -> None:
    """An answer reaches the request it names exactly once, as a Reply in b25's words."""
    from .gateway import normalise
    from .signing import Signer
    from .wsapi import WsApiTransport

    ws = WsApiTransport("ws://unused", Signer("k", "s"))
    got: list[WireReply] = []
    for rid in range(-1, 3):
        ws.pending[rid] = got.append
    ws._on_text(raw, 1)
    assert len(got) <= 1 and len(ws.pending) >= 3
    for w in got:
        _reply_ok(normalise(w))


def _reply_ok(r: V.Reply) -> None:
    assert r.outcome in (V.REPLY_OK, V.REPLY_REJECTED, V.REPLY_RATE_LIMITED, V.REPLY_FAILED, V.REPLY_UNKNOWN)
    assert r.retry_after_s is None or r.retry_after_s >= 0
    if r.report is not None:
        _report_ok(r.report)
    assert all(isinstance(u, V.RateUsage) and u.used >= 0 for u in r.usage)


def check_rest_order(raw: bytes) -> None:
    """A REST answer of any status and body: a Reply in b25's words."""
    from .gateway import normalise

    body = _json(raw)
    for http in (200, 400, 429, 503):
        outcome, code, msg = classify(http, body)
        _reply_ok(normalise(WireReply(outcome, http, body, code, msg, None, {"X-MBX-USED-WEIGHT-1M": "7"})))


def check_user_trades(raw: bytes) -> None:
    """Each entry a well-formed Fill or KeyError/ValueError/TypeError (the gateway logs and skips those)."""
    from .orders import fill

    rows = _json(raw)
    for t in rows if isinstance(rows, list) else [rows]:
        try:
            f = fill(t)
        except (KeyError, ValueError, TypeError):
            continue
        _fill_ok(f)


def check_open_orders(raw: bytes) -> None:
    from .orders import order_reports

    _check_whole_list(order_reports, raw)


def _check_whole_list(decode: Callable[[Any], list[V.OrderReport]], raw: bytes) -> None:
    """The list whole and well-formed, or ValueError naming what is wrong (recovery asks again)."""
    try:
        reports = decode(_json(raw))
    except ValueError as exc:
        assert str(exc)
        return
    for r in reports:
        _report_ok(r)


def check_account(raw: bytes) -> None:
    _check_snapshot(raw, msgspec.json.encode(SAMPLES["position_risk"][0]))


def check_position_risk(raw: bytes) -> None:
    _check_snapshot(msgspec.json.encode(SAMPLES["account"][0]), raw)


def _check_snapshot(account: bytes, positions: bytes) -> None:
    """An AccountSnapshot with well-formed numbers, or VenueError saying what is not understood."""
    from .account import decode_snapshot

    try:
        snap = decode_snapshot(account, positions)
    except V.VenueError as exc:
        assert str(exc)
        return
    assert all(is_decimal(v) for v in snap.positions.values()), snap.positions
    assert all(is_decimal(v) for v in snap.entry_prices.values()), snap.entry_prices


def check_exchange_info(raw: bytes) -> None:
    """A VenueInfo, or ValueError naming the entry that is wrong."""
    from .exchange_info import parse

    body = _json(raw)
    try:
        info = parse(body)
    except ValueError as exc:
        assert str(exc)
        return
    for inst in info.instruments.values():
        assert inst.price_scale >= 0 and inst.qty_scale >= 0


def check_algo_order(raw: bytes) -> None:
    """An algo endpoint's answer of any status and body: a Reply, its report well-formed or None."""
    from .gateway import algo_normalise

    body = _json(raw)
    for http in (200, 400):
        outcome, code, msg = classify(http, body)
        _reply_ok(algo_normalise(WireReply(outcome, http, body, code, msg, None, {})))


def check_open_algo_orders(raw: bytes) -> None:
    from .orders import algo_reports

    _check_whole_list(algo_reports, raw)


def _json(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")


CHECKS: dict[str, Callable[[bytes], None]] = {
    "market_frame": check_market_frame, "depth_snapshot": check_depth_snapshot, "user_stream": check_user_stream,
    "ws_api": check_ws_api, "rest_order": check_rest_order, "rest_error": check_rest_order,
    "user_trades": check_user_trades, "open_orders": check_open_orders, "account": check_account,
    "position_risk": check_position_risk, "exchange_info": check_exchange_info,
    "algo_order": check_algo_order, "open_algo_orders": check_open_algo_orders,
}
