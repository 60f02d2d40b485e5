"""Amend (MODIFY_ORDER) through a real execution process against a real exchange_sim: the WS API's
order.modify and the REST PUT fallback, the pre-trade check of the new terms, the journal
record before the wire, and the venue's refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from procs.core import messages as M
from tests.support.execution_rig import BTC, Rig, counters_of

pytestmark = pytest.mark.proc
MakeRig = Callable[..., Rig]
FAR = 200_000  # 2000.00 away from the mid: rests, never fills, inside PERCENT_PRICE


def sim_amends(rig: Rig, cid: str) -> list[dict]:
    return [e for e in rig.order_log() if e["clientOrderId"] == cid and e["event"] == "AMENDMENT"]


@pytest.mark.parametrize("transport", ["ws", "rest"])
def test_modify_when_price_and_qty_change_then_venue_amends_and_modified_published(make_rig: MakeRig,
                                                                                  transport: str) -> None:
    rig = make_rig(transport=transport)
    rig.start()
    price = rig.mid() - FAR
    tag = rig.intent(price=price, qty=3)
    cid = rig.wait_kind(tag, M.ORDER_ACCEPTED)["client_order_id"]
    rig.intent(M.MODIFY_ORDER, tag=tag, price=price + 100, qty=5)
    sent = rig.wait_kind(tag, M.ORDER_MODIFY_SENT)
    assert (sent["price"], sent["qty"]) == (price + 100, 5)  # what was asked for
    done = rig.wait_kind(tag, M.ORDER_MODIFIED)
    assert (done["price"], done["qty"]) == (price + 100, 5) and done["client_order_id"] == cid
    amends = sim_amends(rig, cid)
    assert len(amends) == 1 and amends[0]["oldPrice"] == f"{price / 100:.2f}" and amends[0]["oldQty"] == "0.003"
    rig.intent(M.MODIFY_ORDER, tag=tag, qty=4)  # price 0: kept
    assert rig.wait_for(lambda e: e["client_tag"] == tag and e["kind"] == M.ORDER_MODIFIED and e["qty"] == 4)[0][
        "price"] == price + 100
    c = counters_of(rig.instance)
    assert c["modifies_sent"] == 2 and c["modified"] == 2 and c["modify_rejected"] == 0
    if transport == "ws":
        assert c["rest_fallback"] == 0
    assert rig.stop() == 0
    journal = [(r.kind, r.price, r.qty) for r in rig.journal() if r.cid == cid]
    i = journal.index((M.ORDER_MODIFY_SENT, price + 100, 5))
    assert journal[i + 1] == (M.ORDER_MODIFIED, price + 100, 5)  # asked for on disk before the answer


def test_modify_when_new_terms_break_limits_then_denied_and_never_sent(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.set_risk(max_order_qty={BTC: 5})
    rig.start()
    price = rig.mid() - FAR
    tag = rig.intent(price=price, qty=3)
    cid = rig.wait_kind(tag, M.ORDER_ACCEPTED)["client_order_id"]
    rig.intent(M.MODIFY_ORDER, tag=tag, qty=6)
    ev = rig.wait_kind(tag, M.ORDER_MODIFY_REJECTED)
    assert ev["reason"] == M.DENY_MAX_ORDER_QTY and (ev["price"], ev["qty"]) == (price, 3)  # unchanged
    rig.intent(M.MODIFY_ORDER, tag=tag, price=price, qty=3)  # nothing to change
    assert rig.wait_for(lambda e: e["client_tag"] == tag and e["kind"] == M.ORDER_MODIFY_REJECTED
                        and e["reason"] == M.DENY_BAD_INTENT)
    rig.intent(M.MODIFY_ORDER, tag=999, price=price)  # no such order
    assert rig.wait_kind(999, M.ORDER_MODIFY_REJECTED)["reason"] == M.DENY_UNKNOWN_ORDER
    assert sim_amends(rig, cid) == [] and counters_of(rig.instance)["modifies_sent"] == 0


def test_modify_when_venue_refuses_then_modify_rejected_with_its_reason_and_order_kept(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.start()
    price = rig.mid() - FAR
    tag = rig.intent(price=price, qty=3)
    rig.wait_kind(tag, M.ORDER_ACCEPTED)
    rig.intent(M.MODIFY_ORDER, tag=tag, price=price + 1_000_000_000)  # outside PERCENT_PRICE: the venue's -4016
    ev = rig.wait_kind(tag, M.ORDER_MODIFY_REJECTED)
    assert ev["reason"] == M.REJECT_FILTER and ev["price"] == price
    rig.intent(M.CANCEL_ORDER, tag=tag)  # still working as it was
    rig.wait_kind(tag, M.ORDER_CANCELED)
    assert M.ORDER_MODIFIED not in rig.kinds(tag)
