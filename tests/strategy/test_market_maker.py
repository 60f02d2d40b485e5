"""MarketMaker decisions on hand-built books, through the real engine and real rings."""

from __future__ import annotations

import pytest

from procs.core import messages as M
from procs.core.config import ConfigError
from tests.support.strategy_harness import BTC, Harness

MM = "strategies.market_maker:MarketMaker"


def mm(instance: str, **params) -> Harness:
    p = {"quote_qty": "0.001", "max_position": "0.002", "spread_ticks": 4, "skew_ticks": 2.0, "stale_ms": 0}
    p.update(params)
    return Harness(instance, [{"id": "mm", "class": MM, "symbols": ["BTCUSDT"], "params": p}])


def by_side(intents: list[dict]) -> dict[int, dict]:
    return {i["side"]: i for i in intents}


def test_on_book_when_flat_then_quotes_both_sides_around_mid(instance):
    h = mm(instance)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        got = h.intents()
        assert len(got) == 2
        s = by_side(got)
        # mid 100005, half spread 2 ticks: 100003 / 100007, post-only, 1 lot each
        assert (s[M.BUY]["price"], s[M.SELL]["price"]) == (100003, 100007)
        assert all(i["kind"] == M.SUBMIT_ORDER and i["tif"] == M.POST_ONLY and i["qty"] == 1 for i in got)
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        assert h.intents() == []  # same targets: the resting quotes stay
    finally:
        h.close()


def test_on_book_when_market_spread_is_one_tick_then_quotes_at_least_spread_ticks_apart(instance):
    h = mm(instance)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100001, 5)])
        h.work()
        s = by_side(h.intents())
        assert s[M.SELL]["price"] - s[M.BUY]["price"] >= 4
        assert s[M.BUY]["price"] <= 100000 and s[M.SELL]["price"] >= 100001
    finally:
        h.close()


def test_on_book_when_long_then_quotes_skew_down_and_stale_quote_is_requoted(instance):
    h = mm(instance)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        s = by_side(h.intents())
        h.accept(s[M.BUY])
        h.accept(s[M.SELL])
        h.fill(s[M.BUY])  # long 1 lot of max 2: fair moves down by 2 * 1/2 = 1 tick
        h.work()
        assert h.engine.states["mm"].positions[BTC].qty == 1
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        got = h.intents()
        new_bid = [i for i in got if i["kind"] == M.SUBMIT_ORDER and i["side"] == M.BUY]
        cancels = [i for i in got if i["kind"] == M.CANCEL_ORDER]
        assert [i["price"] for i in new_bid] == [100002]
        assert [c["client_tag"] for c in cancels] == [s[M.SELL]["client_tag"]]  # ask 100007 -> wants 100006
        h.event(s[M.SELL], M.ORDER_CANCELED)
        h.work()
        replaced = h.intents()  # the confirmed cancel puts the new ask out at once
        assert [(i["side"], i["price"]) for i in replaced] == [(M.SELL, 100006)]
    finally:
        h.close()


def test_on_book_when_move_is_below_requote_threshold_then_keeps_quotes(instance):
    h = mm(instance, requote_ticks=3)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        h.intents()
        h.publish_book(BTC, [(100002, 5)], [(100012, 5)])  # targets move 2 ticks < 3
        h.work()
        assert h.intents() == []
        h.publish_book(BTC, [(100003, 5)], [(100013, 5)])  # 3 ticks: both requoted
        h.work()
        assert sorted(i["kind"] for i in h.intents()) == [M.CANCEL_ORDER, M.CANCEL_ORDER]
    finally:
        h.close()


def test_on_book_when_at_max_position_then_does_not_quote_the_side_that_adds(instance):
    h = mm(instance, max_position="0.001")
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        s = by_side(h.intents())
        h.fill(s[M.BUY])  # long 1 lot = max
        h.work()
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        got = h.intents()
        assert not [i for i in got if i["kind"] == M.SUBMIT_ORDER and i["side"] == M.BUY]
    finally:
        h.close()


def test_on_book_when_microprice_then_fair_leans_to_the_thin_side(instance):
    h = mm(instance, price_ref="microprice")
    try:
        h.publish_book(BTC, [(100000, 90)], [(100010, 10)])  # heavy bid: microprice 100009
        h.work()
        s = by_side(h.intents())
        assert s[M.BUY]["price"] == 100007 and s[M.SELL]["price"] == 100011
    finally:
        h.close()


def test_on_book_when_resyncing_then_cancels_quotes(instance):
    h = mm(instance)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        h.intents()
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)], flags=M.BOOK_RESYNCING)
        h.work()
        assert [i["kind"] for i in h.intents()] == [M.CANCEL_ORDER, M.CANCEL_ORDER]
    finally:
        h.close()


def test_start_when_param_is_misspelled_then_fails_naming_the_field(instance):
    with pytest.raises(ConfigError, match="quote_qtty"):
        mm(instance, quote_qtty="0.001")
    from shm.inspect import clean
    clean(instance, force=True)
