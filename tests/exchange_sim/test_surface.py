"""The rest of the REST surface trading frameworks call (protocol doc, section F), one test per
endpoint: shape and fields, error codes, and the request styles of the connector tests (params in
the query, in a form body, split between both; DELETE with a body)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.support.trading import STYLES, SYM, Session, Style, TradingApi

ORDER_FIELDS = {"orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty",
                "cumQty", "cumQuote", "timeInForce", "type", "origType", "reduceOnly", "closePosition", "side",
                "positionSide", "stopPrice", "workingType", "priceProtect", "priceMatch",
                "selfTradePreventionMode", "goodTillDate", "updateTime"}
ALGO_FIELDS = {"algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side", "positionSide", "timeInForce",
               "quantity", "algoStatus", "actualOrderId", "actualPrice", "triggerPrice", "price", "icebergQuantity",
               "selfTradePreventionMode", "workingType", "priceMatch", "closePosition", "priceProtect", "reduceOnly",
               "createTime", "updateTime", "triggerTime", "goodTillDate"}


def stream(api: TradingApi) -> Session:
    """A user-data session on the default account's listen key."""
    key = api.raw("POST", "/fapi/v1/listenKey")[1]["listenKey"]
    s = Session()
    api.ws.ws_open(s, f"/ws/{key}")
    return s


def events(s: Session, kind: str) -> list[dict[str, Any]]:
    return [e for e in s.sent if e["e"] == kind]


def otu(s: Session) -> list[tuple[str, str, str, str]]:
    """(execution type, status, order type, original type) of each ORDER_TRADE_UPDATE."""
    return [(e["o"]["x"], e["o"]["X"], e["o"]["o"], e["o"]["ot"]) for e in events(s, "ORDER_TRADE_UPDATE")]


def buy_position(api: TradingApi, qty: str = "0.5") -> None:
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity=qty)


@pytest.mark.parametrize("style", STYLES)
def test_symbol_config_shape_and_changes(style: Style) -> None:
    api = TradingApi()
    rows = api.ok("GET", "/fapi/v1/symbolConfig")
    assert [r["symbol"] for r in rows] == sorted({"BTCUSDT", "ETHUSDT"})
    assert rows[0] == {"symbol": "BTCUSDT", "marginType": "CROSSED", "isAutoAddMargin": False, "leverage": 20,
                       "maxNotionalValue": "100000000"}
    api.ok("POST", "/fapi/v1/leverage", style=style, symbol=SYM, leverage=50)
    api.ok("POST", "/fapi/v1/marginType", style=style, symbol=SYM, marginType="ISOLATED")
    (row,) = api.ok("GET", "/fapi/v1/symbolConfig", symbol=SYM)
    assert (row["leverage"], row["marginType"], row["maxNotionalValue"]) == (50, "ISOLATED", "12000000")
    assert api.error("GET", "/fapi/v1/symbolConfig", symbol="NOPEUSDT") == -1121
    assert api.signed("GET", "/fapi/v1/symbolConfig")[2]["X-MBX-USED-WEIGHT-1M"]


@pytest.mark.parametrize("style", STYLES)
def test_position_mode_one_way_and_hedge(style: Style) -> None:
    api = TradingApi()
    assert api.ok("GET", "/fapi/v1/positionSide/dual") == {"dualSidePosition": False}
    assert api.error("POST", "/fapi/v1/positionSide/dual", style=style, dualSidePosition="false") == -4059
    assert api.ok("POST", "/fapi/v1/positionSide/dual", style=style, dualSidePosition="True") == \
        {"code": 200, "msg": "success"}
    assert api.ok("GET", "/fapi/v1/positionSide/dual") == {"dualSidePosition": True}
    # hedge mode: every order names LONG or SHORT; reduceOnly may not be sent
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.1") == -4061
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.1",
                     positionSide="LONG", reduceOnly="true") == -1106
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.1",
                     positionSide="UP") == -4060
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.3", positionSide="LONG")
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.2", positionSide="SHORT")
    risk = {r["positionSide"]: r for r in api.ok("GET", "/fapi/v2/positionRisk", symbol=SYM)}
    assert set(risk) == {"LONG", "SHORT"}
    assert (risk["LONG"]["positionAmt"], risk["SHORT"]["positionAmt"]) == ("0.300", "-0.200")
    acct3 = {p["positionSide"]: p["positionAmt"] for p in api.ok("GET", "/fapi/v3/account")["positions"]}
    assert acct3 == {"LONG": "0.300", "SHORT": "-0.200"}
    # closing more than the side holds is refused; closing within it reduces that side only
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.4",
                     positionSide="LONG") == -2022
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.3", positionSide="LONG")
    risk = {r["positionSide"]: r["positionAmt"] for r in api.ok("GET", "/fapi/v3/positionRisk")}
    assert risk == {"SHORT": "-0.200"}
    assert api.error("POST", "/fapi/v1/positionSide/dual", style=style, dualSidePosition="false") == -4068
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.2", positionSide="SHORT")
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1",
           price="59000", positionSide="LONG")
    assert api.error("POST", "/fapi/v1/positionSide/dual", style=style, dualSidePosition="false") == -4067
    assert api.error("POST", "/fapi/v1/positionSide/dual", dualSidePosition="maybe") == -1102


@pytest.mark.parametrize("style", STYLES)
def test_leverage_answer_event_and_errors(style: Style) -> None:
    api = TradingApi()
    s = stream(api)
    assert api.ok("POST", "/fapi/v1/leverage", style=style, symbol=SYM, leverage=10) == \
        {"leverage": 10, "maxNotionalValue": "230000000", "symbol": SYM}
    (ev,) = events(s, "ACCOUNT_CONFIG_UPDATE")
    assert ev["ac"] == {"s": SYM, "l": 10} and {"E", "T"} <= set(ev)
    assert api.ok("GET", "/fapi/v2/positionRisk", symbol=SYM)[0]["leverage"] == "10"
    for bad in (0, 126):
        assert api.error("POST", "/fapi/v1/leverage", style=style, symbol=SYM, leverage=bad) == -4028
    assert api.error("POST", "/fapi/v1/leverage", style=style, symbol=SYM, leverage="x") == -1102
    buy_position(api, "1")  # 60000 notional: more than 125x allows (50000)
    assert api.error("POST", "/fapi/v1/leverage", style=style, symbol=SYM, leverage=125) == -2027


@pytest.mark.parametrize("style", STYLES)
def test_margin_type_answer_and_errors(style: Style) -> None:
    api = TradingApi()
    assert api.ok("POST", "/fapi/v1/marginType", style=style, symbol=SYM, marginType="ISOLATED") == \
        {"code": 200, "msg": "success"}
    assert api.error("POST", "/fapi/v1/marginType", style=style, symbol=SYM, marginType="ISOLATED") == -4046
    assert api.ok("GET", "/fapi/v2/positionRisk", symbol=SYM)[0]["marginType"] == "isolated"
    assert api.error("POST", "/fapi/v1/marginType", symbol=SYM, marginType="HALF") == -1102
    api.new(price="59000")
    assert api.error("POST", "/fapi/v1/marginType", style=style, symbol=SYM, marginType="CROSSED") == -4047
    api.ok("DELETE", "/fapi/v1/allOpenOrders", symbol=SYM)
    buy_position(api)
    assert api.error("POST", "/fapi/v1/marginType", style=style, symbol=SYM, marginType="CROSSED") == -4048


def test_commission_rate_and_leverage_bracket() -> None:
    api = TradingApi()
    assert api.ok("GET", "/fapi/v1/commissionRate", symbol=SYM) == \
        {"symbol": SYM, "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005"}
    assert api.error("GET", "/fapi/v1/commissionRate") == -1102
    one = api.ok("GET", "/fapi/v1/leverageBracket", symbol=SYM)
    assert one["symbol"] == SYM and len(one["brackets"]) == 12
    assert set(one["brackets"][0]) == {"bracket", "initialLeverage", "notionalCap", "notionalFloor",
                                       "maintMarginRatio", "cum"}
    prev = None
    for b in one["brackets"]:  # maintenance margin is continuous at every bracket floor
        if prev is not None:
            floor = Decimal(b["notionalFloor"])
            assert floor == Decimal(prev["notionalCap"])
            left = floor * Decimal(str(prev["maintMarginRatio"])) - Decimal(str(prev["cum"]))
            right = floor * Decimal(str(b["maintMarginRatio"])) - Decimal(str(b["cum"]))
            assert left == right
        prev = b
    assert [r["symbol"] for r in api.ok("GET", "/fapi/v1/leverageBracket")] == ["BTCUSDT", "ETHUSDT"]


@pytest.mark.parametrize("style", STYLES)
def test_multi_assets_margin(style: Style) -> None:
    api = TradingApi()
    s = stream(api)
    assert api.ok("GET", "/fapi/v1/multiAssetsMargin") == {"multiAssetsMargin": False}
    assert api.error("POST", "/fapi/v1/multiAssetsMargin", style=style, multiAssetsMargin="false") == -4171
    api.ok("POST", "/fapi/v1/multiAssetsMargin", style=style, multiAssetsMargin="true")
    assert api.ok("GET", "/fapi/v1/multiAssetsMargin") == {"multiAssetsMargin": True}
    assert events(s, "ACCOUNT_CONFIG_UPDATE")[0]["ai"] == {"j": True}
    assert api.ok("GET", "/fapi/v2/account")["multiAssetsMargin"] is True
    assert api.error("POST", "/fapi/v1/marginType", symbol=SYM, marginType="ISOLATED") == -4168
    api.ok("POST", "/fapi/v1/multiAssetsMargin", style=style, multiAssetsMargin="false")
    api.ok("POST", "/fapi/v1/marginType", symbol=SYM, marginType="ISOLATED")
    assert api.error("POST", "/fapi/v1/multiAssetsMargin", style=style, multiAssetsMargin="true") == -4167


def test_account_config() -> None:
    api = TradingApi()
    assert api.ok("GET", "/fapi/v1/accountConfig") == {
        "feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "dualSidePosition": False,
        "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}


def test_income_history_of_fills() -> None:
    api = TradingApi()
    assert api.ok("GET", "/fapi/v1/income") == []
    buy_position(api, "0.5")
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.5")
    rows = api.ok("GET", "/fapi/v1/income", symbol=SYM)
    assert {r["incomeType"] for r in rows} == {"COMMISSION", "REALIZED_PNL"}
    assert set(rows[0]) == {"symbol", "incomeType", "income", "asset", "info", "time", "tranId", "tradeId"}
    fees = [r for r in api.ok("GET", "/fapi/v1/income", incomeType="COMMISSION")]
    assert len(fees) == 2 and all(Decimal(r["income"]) < 0 for r in fees)
    pnl = api.ok("GET", "/fapi/v1/income", incomeType="REALIZED_PNL")
    # bought at 60001, sold at 59999: -1.00000000 on 0.5
    assert [r["income"] for r in pnl] == ["-1.00000000"]
    assert len(api.ok("GET", "/fapi/v1/income", limit=1, page=2)) == 1
    assert api.error("GET", "/fapi/v1/income", incomeType="GIFT") == -1102
    assert api.error("GET", "/fapi/v1/income", startTime=10, endTime=5) == -1023


@pytest.mark.parametrize("style", STYLES)
def test_modify_order_requeues_and_reports_amendment(style: Style) -> None:
    api = TradingApi()
    s = stream(api)
    o = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5",
               price="59999", newClientOrderId="amend-1")
    order = api.rest.venue.orders[(SYM, o["orderId"])]
    api.market.trade(SYM, 5999900, 1000, True)  # the 1.000 displayed ahead of us trades away
    assert order.queue_ahead == 0
    st, body, hdrs = api.signed("PUT", "/fapi/v1/order", style=style, symbol=SYM, orderId=o["orderId"],
                                side="BUY", quantity="0.4", price="59999")
    assert st == 200 and set(body) >= ORDER_FIELDS and body["origQty"] == "0.400" and body["status"] == "NEW"
    assert hdrs["X-MBX-ORDER-COUNT-10S"] and hdrs["X-MBX-ORDER-COUNT-1M"]
    # the exchange re-queues every accepted amend: behind what is displayed at the price again
    api.market.set_level(SYM, True, 5999900, 800)
    api.ok("PUT", "/fapi/v1/order", style=style, symbol=SYM, origClientOrderId="amend-1", side="BUY",
           quantity="0.3", price="59999")
    assert order.queue_ahead == 800
    amend = events(s, "ORDER_TRADE_UPDATE")[-1]["o"]
    assert (amend["x"], amend["X"], amend["q"], amend["p"], amend["i"]) == \
        ("AMENDMENT", "NEW", "0.300", "59999.00", o["orderId"])
    # a new price that crosses trades at once, after the amendment event
    api.ok("PUT", "/fapi/v1/order", style=style, symbol=SYM, orderId=o["orderId"], side="BUY", quantity="0.3",
           price="60001")
    assert [x[:2] for x in otu(s)[-2:]] == [("AMENDMENT", "NEW"), ("TRADE", "FILLED")]
    assert api.error("PUT", "/fapi/v1/order", style=style, symbol=SYM, orderId=o["orderId"], side="BUY",
                     quantity="0.3", price="59000") == -2013  # filled: nothing to amend


def test_modify_order_errors_and_cancel_cases() -> None:
    api = TradingApi()
    o = api.new(price="59000", quantity="0.5")[1]
    oid = o["orderId"]

    def modify(**p: Any) -> int:
        return api.error("PUT", "/fapi/v1/order", **{"symbol": SYM, "orderId": oid, "side": "BUY", **p})

    assert modify(quantity="0.5", price="59000") == -5027
    assert modify(side="SELL", quantity="0.5", price="58000") == -1130
    assert modify(quantity="0.5", price="58000.001") == -1111
    assert modify(quantity="0.5", price="70000") == -4016  # PERCENT_PRICE: refused, order unchanged
    assert modify(quantity="0.5") == -1102
    assert modify(quantity="10000", price="59000") == -4005
    assert modify(quantity="50", price="59000") == -2019
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=oid)["price"] == "59000.00"
    assert api.error("PUT", "/fapi/v1/order", symbol=SYM, orderId=999, side="BUY", quantity="1", price="1") == -2013
    stop = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59000",
                  quantity="0.1")
    assert api.error("PUT", "/fapi/v1/order", symbol=SYM, orderId=stop["orderId"], side="SELL", quantity="0.2",
                     price="59000") == -5025
    # partially filled, new quantity not above the executed one: the amend cancels the order
    part = api.new(price="60001", quantity="1.5")[1]  # takes the 1.000 at 60001, rests 0.5
    api.ok("PUT", "/fapi/v1/order", symbol=SYM, orderId=part["orderId"], side="BUY", quantity="1", price="60001")
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=part["orderId"])["status"] == "CANCELED"
    # a post-only order whose new price would trade is canceled
    gtx = api.new(price="59000", quantity="0.1", timeInForce="GTX")[1]
    api.ok("PUT", "/fapi/v1/order", symbol=SYM, orderId=gtx["orderId"], side="BUY", quantity="0.1", price="60002")
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=gtx["orderId"])["status"] == "CANCELED"


def test_order_amendment_history() -> None:
    api = TradingApi()
    oid = api.new(price="59000", quantity="0.5")[1]["orderId"]
    for price in ("59001", "59002"):
        api.ok("PUT", "/fapi/v1/order", symbol=SYM, orderId=oid, side="BUY", quantity="0.5", price=price)
    rows = api.ok("GET", "/fapi/v1/orderAmendment", symbol=SYM, orderId=oid)
    assert [r["amendment"]["count"] for r in rows] == [2, 1]  # newest first
    assert set(rows[0]) == {"amendmentId", "symbol", "pair", "orderId", "clientOrderId", "time", "amendment"}
    assert rows[0]["amendment"] == {"price": {"before": "59001.00", "after": "59002.00"},
                                    "origQty": {"before": "0.500", "after": "0.500"}, "count": 2}
    assert len(api.ok("GET", "/fapi/v1/orderAmendment", symbol=SYM, orderId=oid, limit=1)) == 1
    assert api.error("GET", "/fapi/v1/orderAmendment", symbol=SYM, orderId=oid, limit=101) == -1130
    assert api.error("GET", "/fapi/v1/orderAmendment", symbol=SYM, orderId=424242) == -2013
    assert api.error("GET", "/fapi/v1/orderAmendment", symbol=SYM) == -1102


@pytest.mark.parametrize("style", STYLES)
def test_batch_orders_place_modify_cancel(style: Style) -> None:
    api = TradingApi()
    batch = [{"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
              "price": "59000", "newClientOrderId": "b-1"},
             {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
              "price": "58000.001"},
             {"symbol": SYM, "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": 0.2,
              "price": 61000, "reduceOnly": False}]
    st, placed, hdrs = api.signed("POST", "/fapi/v1/batchOrders", style=style, batchOrders=json.dumps(batch))
    assert st == 200 and len(placed) == 3
    assert set(placed[0]) >= ORDER_FIELDS and placed[0]["clientOrderId"] == "b-1"
    assert placed[1] == {"code": -1111, "msg": "Precision is over the maximum defined for this asset."}
    assert placed[2]["origQty"] == "0.200"
    assert hdrs["X-MBX-ORDER-COUNT-10S"] == "5" and hdrs["X-MBX-ORDER-COUNT-1M"] == "1"
    mods = [{"symbol": SYM, "orderId": placed[0]["orderId"], "side": "BUY", "quantity": "0.2", "price": "59001"},
            {"symbol": SYM, "orderId": 999, "side": "BUY", "quantity": "0.2", "price": "59001"}]
    changed = api.ok("PUT", "/fapi/v1/batchOrders", style=style, batchOrders=json.dumps(mods))
    assert changed[0]["price"] == "59001.00" and changed[1]["code"] == -2013
    ids = [placed[0]["orderId"], placed[2]["orderId"], 777]
    canceled = api.ok("DELETE", "/fapi/v1/batchOrders", style=style, symbol=SYM, orderIdList=json.dumps(ids))
    assert [c.get("status") for c in canceled[:2]] == ["CANCELED", "CANCELED"]
    assert canceled[2] == {"code": -2011, "msg": "Unknown order sent."}
    again = api.new(price="59000", newClientOrderId="b-2")[1]
    by_cid = api.ok("DELETE", "/fapi/v1/batchOrders", style=style, symbol=SYM,
                    origClientOrderIdList=json.dumps(["b-2"]))
    assert by_cid[0]["orderId"] == again["orderId"] and by_cid[0]["status"] == "CANCELED"
    assert api.error("POST", "/fapi/v1/batchOrders", batchOrders=json.dumps(batch * 2)) == -4082
    assert api.error("POST", "/fapi/v1/batchOrders", batchOrders="[{not json") == -1102
    assert api.error("DELETE", "/fapi/v1/batchOrders", symbol=SYM, orderIdList=json.dumps(list(range(11)))) == -4032
    assert api.error("DELETE", "/fapi/v1/batchOrders", symbol=SYM) == -1102


@pytest.mark.parametrize("style", STYLES)
def test_countdown_cancel_all(style: Style) -> None:
    api = TradingApi()
    s = stream(api)
    api.new(price="59000")
    api.new(price="58000")
    assert api.ok("POST", "/fapi/v1/countdownCancelAll", style=style, symbol=SYM, countdownTime=1000) == \
        {"symbol": SYM, "countdownTime": "1000"}
    api.market.clock_ms += 600
    api.rest.on_timer()
    api.ok("POST", "/fapi/v1/countdownCancelAll", style=style, symbol=SYM, countdownTime=1000)  # heartbeat
    api.market.clock_ms += 600
    api.rest.on_timer()
    assert len(api.ok("GET", "/fapi/v1/openOrders", symbol=SYM)) == 2  # refreshed in time
    api.market.clock_ms += 500
    api.rest.on_timer()
    assert api.ok("GET", "/fapi/v1/openOrders", symbol=SYM) == []
    assert [x[:2] for x in otu(s)[-2:]] == [("CANCELED", "CANCELED")] * 2
    api.new(price="59000")
    api.ok("POST", "/fapi/v1/countdownCancelAll", style=style, symbol=SYM, countdownTime=100)
    api.ok("POST", "/fapi/v1/countdownCancelAll", style=style, symbol=SYM, countdownTime=0)  # disarmed
    api.market.clock_ms += 1000
    api.rest.on_timer()
    assert len(api.ok("GET", "/fapi/v1/openOrders", symbol=SYM)) == 1
    assert api.error("POST", "/fapi/v1/countdownCancelAll", symbol=SYM) == -1102
    assert api.error("POST", "/fapi/v1/countdownCancelAll", symbol=SYM, countdownTime=-5) == -1102
    used = [int(api.signed("POST", "/fapi/v1/countdownCancelAll", symbol=SYM, countdownTime=0)[2][
        "X-MBX-USED-WEIGHT-1M"]) for _ in range(2)]
    assert used[1] - used[0] == 10  # request weight 10


def test_stop_market_on_order_endpoint_triggers_on_last_price() -> None:
    api = TradingApi()
    s = stream(api)
    buy_position(api, "0.5")
    stop = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59990",
                  quantity="0.5", reduceOnly="true", newClientOrderId="sl-1")
    assert set(stop) >= ORDER_FIELDS
    assert (stop["type"], stop["stopPrice"], stop["workingType"], stop["status"]) == \
        ("STOP_MARKET", "59990.00", "CONTRACT_PRICE", "NEW")
    assert [o["orderId"] for o in api.ok("GET", "/fapi/v1/openOrders", symbol=SYM)] == [stop["orderId"]]
    api.market.trade(SYM, 5999500, 100, True)  # 59995: not yet
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=stop["orderId"])["status"] == "NEW"
    api.market.trade(SYM, 5998900, 100, True)  # 59989 <= 59990: triggers
    flow = otu(s)[-3:]
    assert flow[0] == ("EXPIRED", "EXPIRED", "STOP_MARKET", "STOP_MARKET")
    assert flow[1] == ("NEW", "NEW", "MARKET", "STOP_MARKET") and flow[-1][:2] == ("TRADE", "FILLED")
    expired = [e["o"] for e in events(s, "ORDER_TRADE_UPDATE") if e["o"]["x"] == "EXPIRED"][-1]
    assert expired["er"] == "8" and expired["i"] == stop["orderId"] and expired["c"] == "sl-1"
    actual = [e["o"] for e in events(s, "ORDER_TRADE_UPDATE")][-1]
    assert actual["c"] == "sl-1" and actual["i"] != stop["orderId"] and actual["sp"] == "59990.00"
    assert api.ok("GET", "/fapi/v3/positionRisk") == []
    # a stop the price is already through is refused
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="61000",
                     quantity="0.1") == -2021
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET",
                     quantity="0.1") == -1102
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59000",
                     quantity="0.1", workingType="INDEX") == -4031
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59000",
                     quantity="0.1", closePosition="true") == -4137


def test_conditional_mark_price_take_profit_limit_and_cancel() -> None:
    api = TradingApi()
    s = stream(api)
    buy_position(api, "0.4")
    # MARK_PRICE: the last trade does not trigger it, the mark does
    sl = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59900",
                closePosition="true", workingType="MARK_PRICE")
    api.market.trade(SYM, 5980000, 100, True)
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=sl["orderId"])["status"] == "NEW"
    tp = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="TAKE_PROFIT", stopPrice="60100",
                price="60100", quantity="0.1", timeInForce="GTC", reduceOnly="true")
    api.ok("DELETE", "/fapi/v1/order", symbol=SYM, orderId=tp["orderId"])
    assert otu(s)[-1][:3] == ("CANCELED", "CANCELED", "TAKE_PROFIT")
    api.market.set_mark(SYM, 5989900)
    flow = otu(s)
    assert ("NEW", "NEW", "MARKET", "STOP_MARKET") in flow and flow[-1][:2] == ("TRADE", "FILLED")
    # closePosition closed exactly the position held at the trigger
    assert api.ok("GET", "/fapi/v3/positionRisk") == []


def test_trailing_stop_tracks_extreme_and_callback() -> None:
    api = TradingApi()
    s = stream(api)
    buy_position(api, "0.2")
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="TRAILING_STOP_MARKET",
                     quantity="0.2", callbackRate="11") == -1130
    assert api.error("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="TRAILING_STOP_MARKET",
                     quantity="0.2", callbackRate="1", activationPrice="59000") == -2021
    ts = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="TRAILING_STOP_MARKET", quantity="0.2",
                callbackRate="1", activationPrice="60500", reduceOnly="true")
    assert (ts["activatePrice"], ts["priceRate"]) == ("60500.00", "1.0")
    for price in (6040000, 6100000):  # below activation, then the high: 61000
        api.market.trade(SYM, price, 100, False)
    api.market.trade(SYM, 6040000, 100, True)  # 61000 * 0.99 = 60390: not yet
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=ts["orderId"])["status"] == "NEW"
    api.market.trade(SYM, 6038900, 100, True)  # 60389 <= 60390: triggers
    fired = [e["o"] for e in events(s, "ORDER_TRADE_UPDATE") if e["o"]["ot"] == "TRAILING_STOP_MARKET"]
    assert fired[0]["AP"] == "60500.00" and fired[0]["cr"] == "1.0"
    assert [(o["x"], o["o"]) for o in fired][-2:] == [("NEW", "MARKET"), ("TRADE", "MARKET")]


def test_price_protect_holds_trigger_while_mark_and_last_diverge() -> None:
    api = TradingApi()
    buy_position(api, "0.1")
    stop = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59000",
                  quantity="0.1", reduceOnly="true", priceProtect="TRUE")
    api.market.trade(SYM, 5000000, 10, True)  # last 50000 vs mark 60000: 16.7% > triggerProtect 5%
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=stop["orderId"])["status"] == "NEW"
    api.market.set_mark(SYM, 5100000)  # 50000 vs 51000: within 5%
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=stop["orderId"])["status"] == "EXPIRED"


@pytest.mark.parametrize("style", STYLES)
def test_algo_order_place_trigger_finish_and_lists(style: Style) -> None:
    api = TradingApi()
    s = stream(api)
    buy_position(api, "0.3")
    a = api.ok("POST", "/fapi/v1/algoOrder", style=style, algoType="CONDITIONAL", symbol=SYM, side="SELL",
               type="STOP_MARKET", triggerPrice="59990", quantity="0.3", reduceOnly="true", clientAlgoId="algo-sl")
    assert set(a) == ALGO_FIELDS - {"actualOrderId", "actualPrice"}
    assert (a["algoStatus"], a["orderType"], a["triggerPrice"], a["clientAlgoId"]) == \
        ("NEW", "STOP_MARKET", "59990.00", "algo-sl")
    opened = api.ok("GET", "/fapi/v1/openAlgoOrders", symbol=SYM)
    assert [x["algoId"] for x in opened] == [a["algoId"]] and set(opened[0]) == ALGO_FIELDS
    assert api.ok("GET", "/fapi/v1/openOrders", symbol=SYM) == []  # not an order of the matching engine
    q = api.ok("GET", "/fapi/v1/algoOrder", clientAlgoId="algo-sl")
    assert q["algoId"] == a["algoId"] and q["algoStatus"] == "NEW"
    api.market.trade(SYM, 5998000, 100, True)
    updates = [(e["o"]["X"], e["o"]["ai"]) for e in events(s, "ALGO_UPDATE")]
    assert [u[0] for u in updates] == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    actual_id = updates[2][1]
    assert actual_id and updates[3][1] == actual_id
    done = api.ok("GET", "/fapi/v1/algoOrder", algoId=a["algoId"])
    assert (done["algoStatus"], done["actualOrderId"]) == ("FINISHED", actual_id) and done["triggerTime"] > 0
    last = events(s, "ALGO_UPDATE")[-1]["o"]
    assert set(last) >= set("caid aid at o s S ps f q X ai ap aq act tp p V wt pm cp pP R tt gtd rm".split())
    assert (last["aq"], last["act"]) == ("0.300", "MARKET")
    actual = api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=int(actual_id))
    assert (actual["status"], actual["origType"]) == ("FILLED", "STOP_MARKET")
    assert api.ok("GET", "/fapi/v1/openAlgoOrders") == []
    assert [x["algoStatus"] for x in api.ok("GET", "/fapi/v1/allAlgoOrders", symbol=SYM)] == ["FINISHED"]


def test_algo_order_cancel_and_errors() -> None:
    api = TradingApi()
    s = stream(api)
    base = {"algoType": "CONDITIONAL", "symbol": SYM, "side": "BUY", "type": "TAKE_PROFIT_MARKET",
            "triggerPrice": "59000", "quantity": "0.1"}
    a = api.ok("POST", "/fapi/v1/algoOrder", **base)
    b = api.ok("POST", "/fapi/v1/algoOrder", **{**base, "triggerPrice": "58000"})
    assert b["algoId"] > a["algoId"]
    st, body, _ = api.signed("DELETE", "/fapi/v1/algoOrder", style="body", algoId=a["algoId"])
    assert st == 200 and body == {"algoId": a["algoId"], "clientAlgoId": a["clientAlgoId"], "code": "200",
                                  "msg": "success"}
    assert events(s, "ALGO_UPDATE")[-1]["o"]["X"] == "CANCELED"
    assert api.error("DELETE", "/fapi/v1/algoOrder", algoId=a["algoId"]) == -2011
    assert api.error("GET", "/fapi/v1/algoOrder", algoId=12345) == -2013
    assert api.error("GET", "/fapi/v1/algoOrder") == -1102
    assert api.ok("DELETE", "/fapi/v1/algoOpenOrders", style="body", symbol=SYM) == \
        {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert api.ok("GET", "/fapi/v1/openAlgoOrders", symbol=SYM) == []
    assert api.error("POST", "/fapi/v1/algoOrder", **{**base, "algoType": "TWAP"}) == -1130
    assert api.error("POST", "/fapi/v1/algoOrder", **{**base, "type": "LIMIT"}) == -1116
    assert api.error("POST", "/fapi/v1/algoOrder", **{**base, "triggerPrice": "61000"}) == -2021
    for i in range(10):  # MAX_NUM_ALGO_ORDERS of BTCUSDT is 10
        api.ok("POST", "/fapi/v1/algoOrder", **{**base, "triggerPrice": str(58000 - i)})
    assert api.error("POST", "/fapi/v1/algoOrder", **base) == -4045
    assert api.error("GET", "/fapi/v1/allAlgoOrders", symbol=SYM, startTime=0, endTime=8 * 86_400_000) == -4165


def test_algo_order_trigger_rejected_reports_reason() -> None:
    api = TradingApi()
    s = stream(api)
    api.ok("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol=SYM, side="SELL", type="STOP_MARKET",
           triggerPrice="59990", quantity="0.3", reduceOnly="true")  # no position to reduce at the trigger
    api.market.trade(SYM, 5998000, 100, True)
    last = events(s, "ALGO_UPDATE")[-1]["o"]
    assert last["X"] == "REJECTED" and last["rm"] == "ReduceOnly Order is rejected."


def test_unknown_path_answers_the_exchange_body_and_is_logged_once(capsys: pytest.CaptureFixture[str]) -> None:
    api = TradingApi()
    for _ in range(3):
        st, body, _ = api.raw("GET", "/fapi/v1/nowhere")
        assert st == 404 and body == {"code": -5000, "msg": "Path /fapi/v1/nowhere, Method GET is invalid"}
    st, body, _ = api.raw("DELETE", "/fapi/v1/listenKeys")
    assert st == 404 and body["msg"] == "Path /fapi/v1/listenKeys, Method DELETE is invalid"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "unknown_path" in line]
    assert [(r["method"], r["path"]) for r in logged] == [("GET", "/fapi/v1/nowhere"),
                                                          ("DELETE", "/fapi/v1/listenKeys")]


def test_listen_key_expires_on_the_timer_without_an_event_to_carry_it() -> None:
    api = TradingApi(listen_key_ttl_ms=1000)
    key = api.raw("POST", "/fapi/v1/listenKey")[1]["listenKey"]
    s = Session()
    api.ws.ws_open(s, f"/stream?streams={key}")
    api.market.clock_ms += 600
    api.raw("PUT", "/fapi/v1/listenKey")  # keepalive
    api.market.clock_ms += 600
    api.rest.on_timer()
    assert s.sent == []
    api.market.clock_ms += 500
    api.rest.on_timer()
    assert s.sent == [{"stream": key, "data": {"e": "listenKeyExpired", "E": api.market.now_ms(), "listenKey": key}}]
    assert api.ws.ws_refusal(f"/ws/{key}") is not None  # an expired key is refused from now on
