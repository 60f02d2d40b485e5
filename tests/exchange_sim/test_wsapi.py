"""WebSocket API (/ws-fapi/v1): order.place / order.modify / order.cancel / order.status,
algoOrder.place / algoOrder.cancel, logon, faults."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.orderapi import build_trading
from procs.venue.binance.signing import sign, ws_payload
from tests.support.trading import KEY, SECRET, SYM, Session, seeded_market


class Rig:
    def __init__(self, **cfg: Any) -> None:
        self.market = seeded_market()
        cfg.setdefault("timestamp_clock", "market")  # the hand-driven market's clock is fixed
        self.rest, self.ws = build_trading(self.market, TradingConfig(**cfg))
        self.s = Session()
        assert self.ws.ws_claims("/ws-fapi/v1")
        self.ws.ws_open(self.s, "/ws-fapi/v1")
        self.n = 0

    def call(self, method: str, signed: bool = True, secret: str = SECRET, **params: Any) -> dict:
        self.n += 1
        if signed:
            params.setdefault("apiKey", KEY)
            params.setdefault("timestamp", self.market.now_ms())
            params["signature"] = sign(secret, ws_payload(params))
        self.ws.ws_message(self.s, json.dumps({"id": f"r{self.n}", "method": method, "params": params}))
        return self.s.sent[-1] if self.s.sent else {}

    def place(self, **params: Any) -> dict:
        p = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
             "price": "59000"}
        p.update(params)
        return self.call("order.place", **p)


def test_ws_signature_payload_is_sorted_params_without_signature() -> None:
    # The Binance WebSocket API documentation's signing example.
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "0.01000000", "price": "52000.00", "newOrderRespType": "ACK", "recvWindow": 100,
              "timestamp": 1645423376532, "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
              "signature": "ignored"}
    payload = ws_payload(params)
    assert payload.startswith("apiKey=vmPUZE6m") and "signature" not in payload
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    assert sign(secret, payload) == "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


def test_order_place_status_cancel_round_trip() -> None:
    r = Rig()
    resp = r.place(newClientOrderId="w1")
    assert resp["id"] == "r1" and resp["status"] == 200, resp
    res = resp["result"]
    assert res["status"] == "NEW" and res["clientOrderId"] == "w1"
    limits = {(x["rateLimitType"], x["interval"]): x["count"] for x in resp["rateLimits"]}
    assert limits[("ORDERS", "SECOND")] == 1 and limits[("ORDERS", "MINUTE")] == 1
    st = r.call("order.status", symbol=SYM, orderId=res["orderId"])
    assert st["status"] == 200 and st["result"]["status"] == "NEW" and "time" in st["result"]
    c = r.call("order.cancel", symbol=SYM, origClientOrderId="w1")
    assert c["status"] == 200 and c["result"]["status"] == "CANCELED"
    again = r.call("order.cancel", symbol=SYM, origClientOrderId="w1")
    assert again["status"] == 400 and again["error"]["code"] == -2011
    unknown = r.call("order.status", symbol=SYM, orderId=12345)
    assert unknown["error"]["code"] == -2013


def test_order_modify_amends_price_and_quantity_and_counts_as_an_order() -> None:
    r = Rig()
    res = r.place(newClientOrderId="m1", quantity="0.3")["result"]
    resp = r.call("order.modify", symbol=SYM, orderId=res["orderId"], side="BUY", quantity="0.2", price=59001.5)
    assert resp["status"] == 200, resp
    assert (resp["result"]["price"], resp["result"]["origQty"], resp["result"]["orderId"]) == \
        ("59001.50", "0.200", res["orderId"])
    limits = {(x["rateLimitType"], x["interval"]): x["count"] for x in resp["rateLimits"]}
    assert limits[("ORDERS", "SECOND")] == 2 and limits[("ORDERS", "MINUTE")] == 2
    same = r.call("order.modify", symbol=SYM, origClientOrderId="m1", side="BUY", quantity="0.2", price="59001.5")
    assert same["status"] == 400 and same["error"]["code"] == -5027
    gone = r.call("order.modify", symbol=SYM, orderId=999, side="BUY", quantity="0.2", price="59000")
    assert gone["error"]["code"] == -2013
    history = r.rest.venue.amendment_log[(SYM, res["orderId"])]
    assert history[0]["amendment"]["price"] == {"before": "59000.00", "after": "59001.50"}


def test_algo_order_place_and_cancel() -> None:
    r = Rig()
    placed = r.call("algoOrder.place", algoType="CONDITIONAL", symbol=SYM, side="BUY", type="STOP_MARKET",
                    triggerPrice="60500", quantity="0.1", clientAlgoId="wa1")
    assert placed["status"] == 200 and placed["result"]["algoStatus"] == "NEW", placed
    canceled = r.call("algoOrder.cancel", algoId=placed["result"]["algoId"])
    assert canceled["result"] == {"algoId": placed["result"]["algoId"], "clientAlgoId": "wa1", "code": "200",
                                  "msg": "success"}
    assert r.call("algoOrder.cancel", clientAlgoId="wa1")["error"]["code"] == -2011


def test_order_place_with_json_numbers_and_bools_then_signed_as_text() -> None:
    r = Rig()
    resp = r.place(price="60001", quantity="0.2", newOrderRespType="RESULT", recvWindow=5000, reduceOnly=False)
    assert resp["status"] == 200, resp
    assert resp["result"]["status"] == "FILLED"


def test_errors_bad_signature_unknown_key_timestamp_and_bad_json() -> None:
    r = Rig()
    assert r.place(secret="x")["error"]["code"] == -1022
    assert r.place(apiKey="who")["error"]["code"] == -2015
    assert r.place(apiKey="who")["status"] == 401
    assert r.place(timestamp=r.market.now_ms() - 10_000)["error"]["code"] == -1021
    assert r.call("order.place", signed=False, symbol=SYM)["error"]["code"] == -2014
    assert r.place(side="UP")["error"]["code"] == -1117
    assert r.place(price="60001", timeInForce="GTX")["error"]["code"] == -5022
    r.ws.ws_message(r.s, "{not json")
    assert r.s.sent[-1]["status"] == 400 and r.s.sent[-1]["id"] is None
    assert r.call("order.modify", symbol=SYM)["status"] == 400


def test_session_logon_then_requests_without_signature() -> None:
    r = Rig()
    logon = r.call("session.logon")
    assert logon["status"] == 200 and logon["result"]["apiKey"] == KEY
    resp = r.call("order.place", signed=False, symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                  quantity="0.1", price="59000", timestamp=r.market.now_ms())
    assert resp["status"] == 200, resp
    stale = r.call("order.place", signed=False, symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                   quantity="0.1", price="59000", timestamp=r.market.now_ms() - 60_000)
    assert stale["error"]["code"] == -1021


def test_rest_and_ws_share_orders_and_limits() -> None:
    r = Rig()
    resp = r.place(newClientOrderId="shared")
    assert resp["status"] == 200
    acct = r.rest.venue.accounts[KEY]
    assert [o.client_order_id for o in r.rest.venue.open_orders(acct)] == ["shared"]
    assert r.rest.order_log[-1]["clientOrderId"] == "shared"


def test_faults_on_ws_drop_disconnect_429_unavailable_unknown() -> None:
    r = Rig()
    r.rest.arm_fault({"fault": "drop_ack", "scope": "ws"})
    n = len(r.s.sent)
    r.place(newClientOrderId="d1")
    assert len(r.s.sent) == n  # no answer...
    assert r.call("order.status", symbol=SYM, origClientOrderId="d1")["result"]["status"] == "NEW"  # ...but placed
    r.rest.arm_fault({"fault": "rate_limit"})
    resp = r.place()
    assert resp["status"] == 429 and resp["error"]["code"] == -1003
    r.rest.arm_fault({"fault": "unavailable"})
    resp = r.place(newClientOrderId="u")
    assert resp["status"] == 503 and resp["error"]["msg"] == "Service Unavailable."
    r.rest.arm_fault({"fault": "error_unknown"})
    resp = r.place(newClientOrderId="k")
    assert resp["status"] == 503 and resp["error"]["msg"].startswith("Unknown error")
    assert r.call("order.status", symbol=SYM, origClientOrderId="k")["status"] == 200
    assert r.call("order.status", symbol=SYM, origClientOrderId="u")["status"] == 400
    r.rest.arm_fault({"fault": "disconnect_on_order"})
    n = len(r.s.sent)
    r.place(newClientOrderId="dc")
    assert r.s.closed and len(r.s.sent) == n
    s2 = Session()
    r.ws.ws_open(s2, "/ws-fapi/v1")
    assert r.rest.arm_fault({"fault": "disconnect"})["closed"] == 1 and s2.closed


def test_fault_rest_scope_does_not_touch_ws() -> None:
    r = Rig()
    r.rest.arm_fault({"fault": "unavailable", "scope": "rest"})
    assert r.place()["status"] == 200


def test_slow_ack_on_ws_then_answer_arrives_later() -> None:
    async def main() -> float:
        r = Rig()
        r.rest.arm_fault({"fault": "slow_ack", "ms": 100})
        t0 = time.monotonic()
        n = len(r.s.sent)
        r.place()
        assert len(r.s.sent) == n
        while len(r.s.sent) == n:
            await asyncio.sleep(0.005)
        assert r.s.sent[-1]["status"] == 200
        return time.monotonic() - t0

    assert asyncio.run(main()) >= 0.09


def test_closed_session_gets_nothing_more() -> None:
    r = Rig()
    r.ws.ws_closed(r.s)
    r.ws.ws_message(r.s, json.dumps({"id": 1, "method": "order.status", "params": {}}))
    assert r.s.sent == []
