"""ImbalanceTaker decisions on hand-built books, through the real engine and real rings."""

from __future__ import annotations

from procs.core import messages as M
from tests.support.strategy_harness import BTC, Harness

IMB = "strategies.imbalance:ImbalanceTaker"
ASKS = [(100010, 10), (100011, 10), (100012, 10)]


def taker(instance: str, **params) -> Harness:
    p = {"levels": 3, "threshold": 0.5, "cooldown_ms": 1000, "qty": "0.002", "max_position": "0.004"}
    p.update(params)
    return Harness(instance, [{"id": "imb", "class": IMB, "symbols": ["BTCUSDT"], "params": p}])


def test_on_book_when_bids_outweigh_asks_then_buys_ioc_at_the_ask(instance):
    h = taker(instance, slippage_ticks=2)
    try:
        h.publish_book(BTC, [(100000, 50), (99999, 30), (99998, 20)], ASKS)  # (100-30)/130 = 0.54
        h.work()
        got = h.intents()
        assert [(i["side"], i["order_type"], i["tif"], i["price"], i["qty"]) for i in got] == \
            [(M.BUY, M.LIMIT, M.IOC, 100012, 2)]
        sig = h.signals_read()
        assert sig[-1]["decision"] == 1 and abs(sig[-1]["value"] - 70 / 130) < 1e-9
    finally:
        h.close()


def test_on_book_when_asks_outweigh_bids_then_sells_market(instance):
    h = taker(instance, order="market")
    try:
        h.publish_book(BTC, [(100000, 2)], ASKS)
        h.work()
        got = h.intents()
        assert [(i["side"], i["order_type"], i["price"]) for i in got] == [(M.SELL, M.MARKET, 0)]
    finally:
        h.close()


def test_on_book_when_balanced_then_no_order(instance):
    h = taker(instance)
    try:
        h.publish_book(BTC, [(100000, 10), (99999, 10), (99998, 10)], ASKS)
        h.work()
        assert h.intents() == []
        assert h.signals_read()[-1]["decision"] == 0
    finally:
        h.close()


def test_on_book_when_only_deep_levels_are_heavy_then_top_k_ignores_them(instance):
    h = taker(instance, levels=2)
    try:
        bids = [(100000, 10), (99999, 10), (99998, 1000)]  # level 3 is outside levels=2
        h.publish_book(BTC, bids, ASKS)
        h.work()
        assert h.intents() == []
    finally:
        h.close()


def test_on_book_when_in_cooldown_then_waits_until_it_passes(instance):
    h = taker(instance)
    heavy = [(100000, 100)]
    try:
        h.publish_book(BTC, heavy, ASKS)
        h.work()
        first = h.intents()
        assert len(first) == 1
        h.event(first[0], M.ORDER_EXPIRED)  # the IOC took nothing
        h.publish_book(BTC, heavy, ASKS)
        h.work()
        assert h.intents() == []  # still in the 1 s cooldown
        h.clock.advance(1_000_000_000)
        h.publish_book(BTC, heavy, ASKS)
        h.work()
        assert len(h.intents()) == 1
    finally:
        h.close()


def test_on_book_when_at_max_position_then_does_not_add(instance):
    h = taker(instance, cooldown_ms=0)
    heavy = [(100000, 100)]
    try:
        for _ in range(2):  # 2 + 2 lots = max_position 0.004
            h.publish_book(BTC, heavy, ASKS)
            h.work()
            (i,) = h.intents()
            h.fill(i, px=100010)
            h.work()
        assert h.engine.states["imb"].positions[BTC].qty == 4
        h.publish_book(BTC, heavy, ASKS)
        h.work()
        assert h.intents() == []
    finally:
        h.close()
