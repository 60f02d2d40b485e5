"""Conditional orders (stop-loss, take-profit, trailing stop) through a real execution process
against a real exchange_sim's algo-order service: placed, triggered and filled; counted at their
worst case by the pre-trade check; kept across a restart (journal and openAlgoOrders); adopted
when b25 did not place them."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from procs.core import messages as M
from procs.execution.journal import read_journal
from tests.support.execution_rig import BTC, Rig, http, rest_signed

pytestmark = pytest.mark.proc
MakeRig = Callable[..., Rig]
FAR = 200_000  # 2000.00 away from the mid: never reached in a test


def ask(rig: Rig) -> int:
    d = http("GET", f"{rig.base}/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    return round(float(d["asks"][0][0]) * 100)


def open_algos(rig: Rig) -> list[dict]:
    code, body = rest_signed(rig.base, "GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"})
    assert code == 200, body
    return body


def test_stop_market_when_last_price_trades_through_then_triggered_and_filled(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.start()
    # The generated market moves: a trigger it has passed already is refused (-2021). In a run of
    # upticks every try within half a second was refused (a CI run: 5 of 5), so the tries are
    # spread over several seconds.
    for _ in range(20):
        tag = rig.intent(order_type=M.STOP_MARKET, tif=M.GTC, qty=10, trigger_price=ask(rig) + 2)
        ev = rig.wait_for(lambda e, t=tag: e["client_tag"] == t and e["kind"] in (M.ORDER_ACCEPTED, M.ORDER_REJECTED))[0]
        if ev["kind"] == M.ORDER_ACCEPTED:
            break
        assert ev["reason"] == M.REJECT_WOULD_TRIGGER
        time.sleep(0.25)
    assert ev["kind"] == M.ORDER_ACCEPTED and ev["order_type"] == M.STOP_MARKET and ev["trigger_price"] > 0
    cid = ev["client_order_id"]
    (algo,) = open_algos(rig)
    assert (algo["clientAlgoId"], algo["orderType"], algo["workingType"], algo["quantity"]) == (
        cid, "STOP_MARKET", "CONTRACT_PRICE", "0.010")
    code, body = rest_signed(rig.base, "POST", "/fapi/v1/order", {  # someone buys through the stop
        "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1.000"})
    assert code == 200, body
    trig = rig.wait_kind(tag, M.ORDER_TRIGGERED)
    filled = rig.wait_kind(tag, M.ORDER_FILLED)
    code, done = rest_signed(rig.base, "GET", "/fapi/v1/algoOrder", {"symbol": "BTCUSDT", "clientAlgoId": cid})
    assert code == 200 and done["algoStatus"] == "FINISHED"
    assert ev["order_id"] == done["algoId"]  # while it waited: the algo order's id; then the MARKET order's
    assert trig["order_id"] == filled["order_id"] == int(done["actualOrderId"])
    assert filled["cum_qty"] == 10 and filled["last_px"] >= ev["trigger_price"] and filled["fee_e8"] > 0
    assert open_algos(rig) == []
    assert rig.stop() == 0
    kinds = [r.kind for r in rig.journal() if r.cid == cid]
    assert kinds[:3] == [M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_TRIGGERED] and kinds[-1] == M.ORDER_FILLED


def test_conditional_when_open_then_counted_at_worst_case_by_the_position_limit(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.set_risk(max_position={BTC: 5}, max_order_notional_e8={BTC: 10 * 10**8 * 1000})
    rig.start()
    stop = rig.intent(order_type=M.STOP_MARKET, tif=M.GTC, qty=4, trigger_price=rig.mid() + FAR)
    rig.wait_kind(stop, M.ORDER_ACCEPTED)
    over = rig.intent(price=rig.mid() - FAR, qty=2)  # 4 (if the stop fires) + 2 > 5
    assert rig.wait_kind(over, M.ORDER_DENIED)["reason"] == M.DENY_MAX_POSITION
    fits = rig.intent(price=rig.mid() - FAR, qty=1)
    rig.wait_kind(fits, M.ORDER_ACCEPTED)
    bad = rig.intent(order_type=M.TRAILING_STOP_MARKET, tif=M.GTC, qty=1, callback_bps=15)  # not in 0.1 % steps
    assert rig.wait_kind(bad, M.ORDER_DENIED)["reason"] == M.DENY_BAD_INTENT


def test_restart_when_conditional_orders_open_then_kept_reconciled_and_adopted(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.start()
    mine = rig.intent(order_type=M.TRAILING_STOP_MARKET, tif=M.GTC, side=M.SELL, qty=2, callback_bps=50,
                      trigger_price=rig.mid() + FAR, flags=M.INTENT_ON_MARK)
    cid = rig.wait_kind(mine, M.ORDER_ACCEPTED)["client_order_id"]
    (algo,) = open_algos(rig)
    assert (algo["orderType"], algo["callbackRate"], algo["workingType"]) == ("TRAILING_STOP_MARKET", "0.5",
                                                                              "MARK_PRICE")
    rig.stop(signal.SIGKILL)
    code, body = rest_signed(rig.base, "POST", "/fapi/v1/algoOrder", {  # placed by hand while b25 is down
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "TAKE_PROFIT_MARKET",
        "quantity": "0.003", "triggerPrice": f"{(rig.mid() - FAR) / 100:.2f}", "clientAlgoId": "by-hand-tp"})
    assert code == 200, body
    log = rig.start()
    rec = log.wait("reconciled")
    assert rec["exchange_open"] == 2 and rec["known"] == 1 and rec["adopted"] == 1
    adopted = rig.wait_for(lambda e: e["client_order_id"] == "by-hand-tp" and e["kind"] == M.ORDER_ACCEPTED)[0]
    assert adopted["order_type"] == M.TAKE_PROFIT_MARKET and adopted["flags"] & M.FLAG_RECOVERED and adopted["qty"] == 3
    rig.intent(M.CANCEL_ORDER, tag=mine)  # the strategy's tag still names it after the restart
    rig.wait_kind(mine, M.ORDER_CANCELED)
    assert [a["clientAlgoId"] for a in open_algos(rig)] == ["by-hand-tp"]
    records = read_journal(rig.config.parent / "exec.journal")[0]
    sent = [r for r in records if r.cid == cid and r.kind == M.ORDER_SENT]
    assert (sent[0].order_type, sent[0].callback_bps, sent[0].intent_flags) == (M.TRAILING_STOP_MARKET, 50,
                                                                               M.INTENT_ON_MARK)
