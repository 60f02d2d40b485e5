"""``api.modify``: a strategy's amend as a MODIFY_ORDER intent, its refusals as codes, and the
order's terms following ORDER_MODIFIED (the engine on real shm rings in this process)."""

from __future__ import annotations

from procs.core import messages as M
from procs.strategy.api import ERR_BAD_INTENT, ERR_UNKNOWN_ORDER
from tests.support.strategy_harness import BTC, Harness

QUOTER = """
from procs.strategy import BUY, Strategy, StrategyConfig

class QuoterConfig(StrategyConfig):
    pass

class Quoter(Strategy):
    def on_start(self):
        self.tag = self.api.submit_limit(self.api.symbol_ids[0], BUY, 90000, 3)
"""


def test_modify_when_order_open_then_intent_names_it_and_terms_follow_modified(instance, plugins):
    mod = plugins.module(QUOTER)
    h = Harness(instance, [{"id": "q", "class": f"{mod}:Quoter", "symbols": ["BTCUSDT"]}])
    try:
        api, s = h.engine.slots["q"].api, h.engine.slots["q"].strategy
        (placed,) = h.intents()
        h.accept(placed)
        h.work()
        order = api.order(s.tag)
        assert api.modify(order, price=90010) == s.tag
        assert api.modify(s.tag, qty=5) == s.tag  # by tag; price None: kept
        a, b = h.intents()
        assert (a["kind"], a["client_tag"], a["symbol_id"], a["side"], a["price"], a["qty"]) == (
            M.MODIFY_ORDER, s.tag, BTC, M.BUY, 90010, 0)
        assert (b["kind"], b["price"], b["qty"]) == (M.MODIFY_ORDER, 0, 5)
        assert (order.price, order.qty) == (90000, 3)  # unchanged until the venue took it
        h.event({**placed, "price": 90010, "qty": 5}, M.ORDER_MODIFIED)
        h.work()
        assert (order.price, order.qty) == (90010, 5)
        assert api.modify(order) == ERR_BAD_INTENT  # nothing asked
        assert api.modify(order, qty=-1) == ERR_BAD_INTENT
        assert api.modify(12345, price=1) == ERR_UNKNOWN_ORDER
        h.fill(placed, qty=2, cum=2)  # partially filled: a quantity at or below it is refused here
        h.work()
        assert api.modify(order, qty=2) == ERR_BAD_INTENT
        assert h.intents() == []
    finally:
        h.close()
