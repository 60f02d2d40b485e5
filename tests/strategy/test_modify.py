"""``api.modify``: a strategy's amend as a MODIFY_ORDER intent, its refusals as codes, and the
order's terms following ORDER_MODIFIED (the engine on real shm rings in this process)."""

from __future__ import annotations

import pytest

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


@pytest.fixture
def quoter(instance, plugins):
    """A harness running the Quoter (one resting buy placed at start)."""
    mod = plugins.module(QUOTER)
    h = Harness(instance, [{"id": "q", "class": f"{mod}:Quoter", "symbols": ["BTCUSDT"]}])
    yield h
    h.close()


def test_modify_when_order_open_then_intent_names_it_and_terms_follow_modified(quoter):
    h = quoter
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


def test_conditional_when_stop_take_profit_and_trailing_then_intents_carry_their_trigger(quoter):
    h = quoter
    api = h.engine.slots["q"].api
    h.intents()
    sl = api.stop_loss(BTC, M.SELL, 89000, 3)
    tp = api.take_profit(BTC, M.SELL, 95000, 3, on_mark=True)
    tr = api.trailing_stop(BTC, M.SELL, 50, 3, activation_price=93000, reduce_only=False)
    assert min(sl, tp, tr) > 0
    got = {i["client_tag"]: i for i in h.intents()}
    assert [(got[t]["order_type"], got[t]["price"], got[t]["trigger_price"], got[t]["callback_bps"],
             got[t]["reduce_only"], got[t]["flags"]) for t in (sl, tp, tr)] == [
        (M.STOP_MARKET, 0, 89000, 0, 1, 0), (M.TAKE_PROFIT_MARKET, 0, 95000, 0, 1, M.INTENT_ON_MARK),
        (M.TRAILING_STOP_MARKET, 0, 93000, 50, 0, 0)]
    assert api.order(sl).trigger_price == 89000 and api.order(tr).callback_bps == 50
    assert api.stop_loss(BTC, M.SELL, 0, 3) == ERR_BAD_INTENT  # a stop needs its trigger
    assert api.trailing_stop(BTC, M.SELL, 5, 3) == ERR_BAD_INTENT  # below 0.1 %
    assert api.trailing_stop(BTC, M.SELL, 1010, 3) == ERR_BAD_INTENT  # above 10 %
    assert h.intents() == []
    placed = {**got[sl], "order_id": 1}
    h.event(placed, M.ORDER_TRIGGERED)
    h.work()
    assert api.order(sl).triggered
