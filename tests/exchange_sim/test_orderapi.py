"""REST order API: handle_rest with correctly (and incorrectly) signed raw strings."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from procs.exchange_sim.trading.config import AccountConfig, TradingConfig
from procs.exchange_sim.trading.orderapi import build_trading
from procs.exchange_sim.trading.settable_market import SettableMarket
from procs.exchange_sim.trading.signing import parse_params, rest_signature_ok
from procs.venue.binance.signing import sign
from tests.support.trading import KEY, SECRET, SYM, Session
from tests.support.trading import TradingApi as Api


def test_signature_vector_from_the_docs() -> None:
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    msg = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
           "&timestamp=1591702613943")
    expect = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    assert sign(secret, msg) == expect
    assert rest_signature_ok(secret, msg + "&signature=" + expect.upper(), "", expect.upper())
    # Split between query and body: the signed text is query + body, exactly as received.
    q, b = msg[:40], msg[40:]
    assert rest_signature_ok(secret, q, b, sign(secret, q + b))
    assert not rest_signature_ok(secret, q, b, expect[:-1] + "0")


def test_params_when_key_in_query_and_body_then_query_wins() -> None:
    assert parse_params("quantity=1&symbol=X", "quantity=2&side=BUY") == {"quantity": "1", "symbol": "X",
                                                                         "side": "BUY"}
    api = Api()
    ts = api.market.now_ms()
    q = f"symbol={SYM}&quantity=0.1&timestamp={ts}"
    b = "side=BUY&type=LIMIT&timeInForce=GTC&price=59000&quantity=0.2"
    sig = sign(SECRET, q + b)
    st, body, _ = api.raw("POST", "/fapi/v1/order", q, b + "&signature=" + sig)
    assert st == 200, body
    assert body["origQty"] == "0.100"


def test_new_order_when_params_in_body_sorted_then_accepted() -> None:
    api = Api()
    p = dict(sorted({"symbol": SYM, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
                     "price": "61000", "recvWindow": 10000, "timestamp": api.market.now_ms(),
                     "newClientOrderId": "x-Cb7ytekJ" + "a" * 22}.items()))
    st, body, hdrs = api.signed("POST", "/fapi/v1/order", in_body=True, **p)
    assert st == 200, body
    assert body["status"] == "NEW" and body["clientOrderId"] == "x-Cb7ytekJ" + "a" * 22
    assert hdrs["X-MBX-ORDER-COUNT-10S"] == "1" and hdrs["X-MBX-ORDER-COUNT-1M"] == "1"
    assert "X-MBX-USED-WEIGHT-1M" in hdrs
    assert set(body) >= {"orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty",
                         "executedQty", "cumQty", "cumQuote", "timeInForce", "type", "origType", "reduceOnly",
                         "closePosition", "side", "positionSide", "stopPrice", "workingType", "priceProtect",
                         "priceMatch", "selfTradePreventionMode", "goodTillDate", "updateTime"}


def test_resp_type_ack_vs_result_when_order_fills_at_once() -> None:
    api = Api()
    st, ack, _ = api.new(price="60001", quantity="0.5")
    assert st == 200 and ack["status"] == "NEW" and ack["executedQty"] == "0.000"
    st, res, _ = api.new(price="60001", quantity="0.4", newOrderRespType="RESULT")
    assert res["status"] == "FILLED" and res["executedQty"] == "0.400" and res["avgPrice"] == "60001.00000"


def test_query_cancel_open_orders_and_cancel_all_round_trip() -> None:
    api = Api()
    _, a, _ = api.new(newClientOrderId="one")
    _, b, _ = api.new(newClientOrderId="two", price="58000")
    st, q, _ = api.signed("GET", "/fapi/v1/order", symbol=SYM, orderId=a["orderId"])
    assert st == 200 and q["clientOrderId"] == "one" and "time" in q
    st, q, _ = api.signed("GET", "/fapi/v1/openOrder", symbol=SYM, origClientOrderId="two")
    assert st == 200 and q["orderId"] == b["orderId"]
    st, lst, hdrs = api.signed("GET", "/fapi/v1/openOrders")
    assert [o["orderId"] for o in lst] == [a["orderId"], b["orderId"]]
    # DELETE with the params in a form body (python-binance style).
    st, c, _ = api.signed("DELETE", "/fapi/v1/order", in_body=True, symbol=SYM, origClientOrderId="one")
    assert st == 200 and c["status"] == "CANCELED"
    st, c, _ = api.signed("DELETE", "/fapi/v1/allOpenOrders", symbol=SYM)
    assert c == {"code": 200, "msg": "The operation of cancel all open order is done."}
    st, lst, _ = api.signed("GET", "/fapi/v1/openOrders", symbol=SYM)
    assert lst == []
    st, q, _ = api.signed("GET", "/fapi/v1/order", symbol=SYM, orderId=b["orderId"])
    assert q["status"] == "CANCELED"
    st, q, _ = api.signed("GET", "/fapi/v1/openOrder", symbol=SYM, orderId=b["orderId"])
    assert st == 400 and q["code"] == -2013


@pytest.mark.parametrize("case", [
    "no_key", "bad_key", "bad_sig", "old_ts", "future_ts", "no_ts", "no_sig", "no_symbol", "bad_symbol",
    "cancel_unknown", "query_unknown", "listen_unknown", "big_window", "missing_qty",
])
def test_errors_with_binance_codes_and_statuses(case: str) -> None:
    api = Api()
    now = api.market.now_ms()
    order = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
             "price": "59000"}
    expect: tuple[int, int]
    if case == "no_key":
        r = api.raw("GET", "/fapi/v3/account", f"timestamp={now}&signature=00", key=None)
        expect = (401, -2014)
    elif case == "bad_key":
        r = api.raw("GET", "/fapi/v3/account", f"timestamp={now}&signature=00", key="nope")
        expect = (401, -2015)
    elif case == "bad_sig":
        r = api.signed("POST", "/fapi/v1/order", secret="wrong", **order)
        expect = (400, -1022)
    elif case == "old_ts":
        r = api.new(timestamp=now - 6000)
        expect = (400, -1021)
    elif case == "future_ts":
        r = api.new(timestamp=now + 1000)
        expect = (400, -1021)
    elif case == "no_ts":
        q = urlencode(order)
        r = api.raw("POST", "/fapi/v1/order", q + "&signature=" + sign(SECRET, q))
        expect = (400, -1102)
    elif case == "no_sig":
        r = api.raw("POST", "/fapi/v1/order", urlencode({**order, "timestamp": now}))
        expect = (400, -1102)
    elif case == "no_symbol":
        r = api.new(symbol="")
        expect = (400, -1102)
    elif case == "bad_symbol":
        r = api.new(symbol="DOGEUSDX")
        expect = (400, -1121)
    elif case == "cancel_unknown":
        r = api.signed("DELETE", "/fapi/v1/order", symbol=SYM, orderId=999)
        expect = (400, -2011)
    elif case == "query_unknown":
        r = api.signed("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="zzz")
        expect = (400, -2013)
    elif case == "listen_unknown":
        r = api.raw("PUT", "/fapi/v1/listenKey")
        expect = (400, -1125)
    elif case == "big_window":
        r = api.new(recvWindow=70000)
        expect = (400, -1131)
    else:
        r = api.new(quantity="")
        expect = (400, -1102)
    st, body, hdrs = r
    assert (st, body["code"]) == expect, body
    assert "X-MBX-USED-WEIGHT-1M" in hdrs


def test_recv_window_when_larger_then_older_timestamp_accepted() -> None:
    api = Api()
    st, body, _ = api.new(timestamp=api.market.now_ms() - 8000, recvWindow=10000)
    assert st == 200, body


def test_wall_clock_timing_rule_when_configured() -> None:
    api = Api(timestamp_clock="wall")
    st, body, _ = api.new(timestamp=int(time.time() * 1000))
    assert st == 200, body
    st, body, _ = api.new(timestamp=api.market.now_ms())  # the replay clock is years behind the wall
    assert body["code"] == -1021


def test_request_weight_limit_then_429_1003() -> None:
    api = Api(weight_limit_1m=12)
    codes = [api.signed("GET", "/fapi/v3/account")[0] for _ in range(3)]
    assert codes == [200, 200, 429]
    st, body, hdrs = api.signed("GET", "/fapi/v3/account")
    assert body["code"] == -1003 and int(hdrs["X-MBX-USED-WEIGHT-1M"]) > 12
    api.market.clock_ms += 60_000  # next minute window
    assert api.signed("GET", "/fapi/v3/account")[0] == 200


def test_order_count_limit_then_429_and_counts_in_headers() -> None:
    api = Api(order_limit_10s=3)
    for i in range(3):
        st, _, hdrs = api.new(price=str(59000 - i))
        assert hdrs["X-MBX-ORDER-COUNT-10S"] == str(i + 1)
    st, body, _ = api.new()
    assert st == 429 and body["code"] == -1015
    api.market.clock_ms += 10_000
    assert api.new()[0] == 200


def test_account_balance_position_risk_shapes() -> None:
    api = Api()
    api.new(price="60001", quantity="0.5", side="BUY")
    st, a2, _ = api.signed("GET", "/fapi/v2/account")
    assert st == 200 and a2["canTrade"] is True and len(a2["positions"]) == 2
    assert set(a2["assets"][0]) >= {"asset", "walletBalance", "unrealizedProfit", "marginBalance",
                                    "availableBalance", "crossWalletBalance", "maxWithdrawAmount"}
    st, a3, _ = api.signed("GET", "/fapi/v3/account")
    assert "canTrade" not in a3 and [p["symbol"] for p in a3["positions"]] == [SYM]
    assert a3["positions"][0]["positionAmt"] == "0.500"
    st, bal, _ = api.signed("GET", "/fapi/v3/balance")
    assert bal[0]["asset"] == "USDT" and bal[0]["balance"] == a3["totalWalletBalance"]
    st, p2, _ = api.signed("GET", "/fapi/v2/positionRisk")
    assert len(p2) == 2 and p2[0]["marginType"] == "cross"
    st, p3, _ = api.signed("GET", "/fapi/v3/positionRisk", symbol=SYM)
    assert len(p3) == 1 and p3[0]["positionAmt"] == "0.500" and p3[0]["entryPrice"] == "60001.00000000"
    st, trades, _ = api.signed("GET", "/fapi/v1/userTrades", symbol=SYM)
    assert st == 200 and [(t["price"], t["qty"], t["maker"], t["buyer"]) for t in trades] == [
        ("60001.00", "0.500", False, True)]
    assert trades[0]["commission"] == "15.00025000" and trades[0]["quoteQty"] == "30000.50000"
    st, body, _ = api.signed("POST", "/fapi/v1/order/test", symbol=SYM, side="BUY", type="LIMIT",
                             timeInForce="GTX", quantity="0.1", price="60001")
    assert body["code"] == -5022
    st, body, _ = api.signed("POST", "/fapi/v1/order/test", symbol=SYM, side="BUY", type="LIMIT",
                             timeInForce="GTC", quantity="0.1", price="59000")
    assert (st, body) == (200, {}) and len(api.rest.order_log) == 2  # NEW + TRADE of the first order only
    st, rl, _ = api.signed("GET", "/fapi/v1/rateLimit/order")
    assert {r["interval"] for r in rl} == {"SECOND", "MINUTE"}
    st, body, _ = api.raw("GET", "/fapi/v1/nothing")
    assert st == 404


def test_listen_key_and_user_stream_events_for_a_fill() -> None:
    api = Api()
    st, k1, _ = api.raw("POST", "/fapi/v1/listenKey")
    st, k2, _ = api.raw("POST", "/fapi/v1/listenKey", body="")
    assert k1 == k2 and len(k1["listenKey"]) == 64
    key = k1["listenKey"]
    assert api.ws.ws_claims(f"/ws/{key}") and api.ws.ws_claims(f"/private/ws/{key}")
    assert api.ws.ws_claims(f"/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE")
    assert not api.ws.ws_claims("/ws/btcusdt@depth")
    # a key the venue does not know is claimed (never a market stream) and refused with the reason
    assert api.ws.ws_claims("/ws/" + "0" * 64) and b"-1125" in (api.ws.ws_refusal("/ws/" + "0" * 64) or b"")
    assert api.ws.ws_refusal(f"/ws/{key}") is None
    s = Session()
    api.ws.ws_open(s, f"/private/ws/{key}")
    _, o, _ = api.new(price="59999.5", quantity="0.2")
    api.market.trade(SYM, 5999800, 1000, True)  # trades through our bid
    kinds = [(m["e"], m.get("o", {}).get("x")) for m in s.sent]
    assert kinds == [("ORDER_TRADE_UPDATE", "NEW"), ("TRADE_LITE", None), ("ORDER_TRADE_UPDATE", "TRADE"),
                     ("ACCOUNT_UPDATE", None)]
    lite = s.sent[1]
    assert set(lite) == set("e E T s q p m c S L l t i".split())
    assert (lite["l"], lite["L"], lite["i"], lite["m"]) == ("0.200", "59999.50", o["orderId"], True)
    fill = s.sent[2]["o"]
    assert fill["X"] == "FILLED" and fill["l"] == "0.200" and fill["L"] == "59999.50" and fill["m"] is True
    assert fill["n"] == "2.39998000" and fill["t"] == 1 and fill["i"] == o["orderId"]
    assert set(fill) >= set("s c S o f q p ap sp x X i l z L N n T t b a m R wt ot ps cp rp pP si ss V pm gtd er"
                            .split())
    acc = s.sent[3]["a"]
    assert acc["m"] == "ORDER" and acc["P"][0]["pa"] == "0.200"
    only_acct = Session()
    api.ws.ws_open(only_acct, f"/private/ws?listenKey={key}&events=ACCOUNT_UPDATE")
    api.new(price="60001", quantity="0.1")
    assert {m["e"] for m in only_acct.sent} == {"ACCOUNT_UPDATE"}
    assert api.raw("PUT", "/fapi/v1/listenKey", query=f"listenKey={key}")[0] == 200
    assert api.raw("DELETE", "/fapi/v1/listenKey")[0] == 200
    assert s.closed
    assert api.raw("PUT", "/fapi/v1/listenKey")[1]["code"] == -1125


def test_listen_key_when_expired_then_expired_event_and_new_key() -> None:
    api = Api(listen_key_ttl_ms=1000)
    key = api.raw("POST", "/fapi/v1/listenKey")[1]["listenKey"]
    s = Session()
    api.ws.ws_open(s, f"/ws/{key}")
    api.market.clock_ms += 2000
    api.new(price="60001")  # the fill's event finds the key expired
    assert s.sent[-1]["e"] == "listenKeyExpired"
    assert api.raw("POST", "/fapi/v1/listenKey")[1]["listenKey"] != key


def fault(api: Api, **spec: Any) -> dict:
    st, body, _ = api.raw("POST", "/sim/trade_fault", body=json.dumps(spec), key=None)
    assert st == 200, body
    return body


def test_fault_slow_ack_then_answer_delayed_but_order_live() -> None:
    api = Api()
    fault(api, fault="slow_ack", ms=150, count=1)
    t0 = time.monotonic()
    st, body, _ = api.new()
    assert st == 200 and time.monotonic() - t0 >= 0.14
    t0 = time.monotonic()
    api.new()
    assert time.monotonic() - t0 < 0.1


def test_fault_drop_ack_then_408_after_wait_and_order_exists() -> None:
    api = Api()
    fault(api, fault="drop_ack", ms=50)
    st, body, _ = api.new(newClientOrderId="dropped")
    assert st == 408 and body["code"] == -1007
    st, q, _ = api.signed("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="dropped")
    assert st == 200 and q["status"] == "NEW"


def test_fault_error_unknown_places_order_but_unavailable_and_429_do_not() -> None:
    api = Api()
    fault(api, fault="error_unknown")
    st, body, _ = api.new(newClientOrderId="u1")
    assert st == 503 and body["msg"].startswith("Unknown error")
    assert api.signed("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="u1")[0] == 200
    fault(api, fault="unavailable")
    st, body, _ = api.new(newClientOrderId="u2")
    assert st == 503 and body["msg"] == "Service Unavailable."
    assert api.signed("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="u2")[1]["code"] == -2013
    fault(api, fault="rate_limit", count=2)
    assert [api.new()[0] for _ in range(3)] == [429, 429, 200]
    fault(api, fault="rate_limit", count=-1)
    fault(api, fault="clear")
    assert api.new()[0] == 200
    st, faults, _ = api.raw("GET", "/sim/trade_faults", key=None)
    assert faults["fired"] == {"error_unknown": 1, "unavailable": 1, "rate_limit": 2}
    st, body, _ = api.raw("POST", "/sim/trade_fault", body='{"fault":"nope"}', key=None)
    assert st == 400


def test_order_log_file_and_endpoint_agree(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    api = Api(order_log=str(path))
    api.new(price="60001", quantity="0.3")
    api.new(price="58000")
    api.signed("DELETE", "/fapi/v1/allOpenOrders", symbol=SYM)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    st, served, _ = api.raw("GET", "/sim/order_log", key=None)
    assert lines == served == api.rest.order_log
    assert [x["event"] for x in lines] == ["NEW", "TRADE", "NEW", "CANCELED"]
    assert api.raw("GET", "/sim/order_log", query="from=3", key=None)[1] == lines[3:]


def test_config_when_bad_then_error_names_the_field() -> None:
    from procs.core.config import ConfigError, convert

    for data, needle in (({"maker_fee_bps": "x"}, "maker_fee_bps"), ({"queue_model": "fifo"}, "queue_model"),
                         ({"accounts": [{"api_key": "k", "api_secret": "s", "leverage": 500}]}, "leverage"),
                         ({"nope": 1}, "nope")):
        with pytest.raises(ConfigError, match=needle):
            convert(data, TradingConfig, "sim.toml [sim_trading]")
    dup = TradingConfig(accounts=[AccountConfig(api_key="k1"), AccountConfig(api_key="k2")])
    with pytest.raises(ValueError, match="unique"):
        build_trading(SettableMarket({}), dup)
    # The same key twice: the later entry (e.g. from the command line) wins.
    api = Api(accounts=[AccountConfig(), AccountConfig(name="cli0", api_secret="other")])
    assert api.rest.venue.accounts[KEY].name == "cli0"
    assert api.signed("GET", "/fapi/v3/account", secret="other")[0] == 200
