"""The dead-man switch and batch cancels through a real execution process against a real
exchange_sim: the countdown armed while orders are open and refreshed before it fires, the venue
cancelling what a SIGKILLed execution left (nothing restarts it here, as with supervisord told
not to), a clean stop's cancel-all then disarm, and cancel-all in batches."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from procs.core import messages as M
from tests.support.execution_rig import ETH, Rig, counters_of, rest_signed

pytestmark = pytest.mark.proc
MakeRig = Callable[..., Rig]
FAR = 200_000  # 2000.00 away from the mid: rests, never fills, inside PERCENT_PRICE


def open_cids(rig: Rig, symbol: str = "BTCUSDT") -> set[str]:
    code, body = rest_signed(rig.base, "GET", "/fapi/v1/openOrders", {"symbol": symbol})
    assert code == 200, body
    return {o["clientOrderId"] for o in body}


def test_dead_man_when_execution_killed_and_not_restarted_then_venue_cancels_its_orders(make_rig: MakeRig) -> None:
    rig = make_rig(dead_man_s=1.0, dead_man_refresh_s=0.3)
    log = rig.start()
    price = rig.mid() - FAR
    tags = [rig.intent(price=price - i) for i in range(3)]
    cids = {rig.wait_kind(t, M.ORDER_ACCEPTED)["client_order_id"] for t in tags}
    log.wait("dead_man_armed", match=lambda r: r["symbol"] == "BTCUSDT" and r["countdown_ms"] == 1000)
    time.sleep(2.5)  # more than twice the countdown: refreshed in time, nothing canceled
    assert open_cids(rig) == cids
    assert counters_of(rig.instance)["dead_man_arms"] >= 5 and counters_of(rig.instance)["dead_man_symbols"] == 1
    assert "ETHUSDT" not in {r["symbol"] for r in log.events("dead_man_armed")}  # no orders there: never armed
    rig.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while open_cids(rig) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_cids(rig) == set()
    canceled = {e["clientOrderId"] for e in rig.order_log() if e["event"] == "CANCELED"}
    assert cids <= canceled


def test_stop_when_clean_then_orders_canceled_then_dead_man_disarmed(make_rig: MakeRig) -> None:
    rig = make_rig(dead_man_s=1.0, dead_man_refresh_s=0.3)
    log = rig.start()
    tag = rig.intent(price=rig.mid() - FAR)
    cid = rig.wait_kind(tag, M.ORDER_ACCEPTED)["client_order_id"]
    log.wait("dead_man_armed")
    assert rig.stop() == 0
    assert [r["orders"] for r in log.events("cancel_on_stop")] == [1]
    assert [r["symbol"] for r in log.events("dead_man_disarmed")] == ["BTCUSDT"]
    assert cid not in open_cids(rig)
    # disarmed: an order placed on the account now is left alone past the old countdown
    code, body = rest_signed(rig.base, "POST", "/fapi/v1/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
        "price": f"{(rig.mid() - FAR) / 100:.2f}", "newClientOrderId": "by-hand-1"})
    assert code == 200, body
    time.sleep(2.0)
    assert "by-hand-1" in open_cids(rig)


def test_cancel_all_when_many_orders_on_a_symbol_then_sent_in_batches_of_ten(make_rig: MakeRig) -> None:
    rig = make_rig(dead_man_s=0)
    rig.start()
    price = rig.mid() - FAR
    btc = [rig.intent(price=price - i) for i in range(12)]
    eth = rig.intent(symbol_id=ETH, price=rig.mid("ETHUSDT") * 97 // 100, qty=3)  # one order: a single cancel
    for t in [*btc, eth]:
        rig.wait_kind(t, M.ORDER_ACCEPTED)
    rig.intent(M.CANCEL_ALL, strategy_id=1, symbol_id=-1)
    for t in [*btc, eth]:
        rig.wait_kind(t, M.ORDER_CANCELED)
    c = counters_of(rig.instance)
    assert c["batch_cancels"] == 2 and c["cancels_sent"] == 13  # BTC: 10 + 2 in two requests; ETH: one
    assert open_cids(rig) == set() and open_cids(rig, "ETHUSDT") == set()
