"""The deny hold: after execution denies a strategy's order for the system's state (halted,
recovering, risk unavailable, breaker open, journal full) or for the order rate (every
strategy's orders of the last second), its new orders are held (ERR_HELD) for
``deny_hold_ms`` instead of being written only to be denied again; cancels still go."""

from __future__ import annotations

import sys

import pytest

from procs.core import messages as M
from procs.core.config import ConfigError
from procs.strategy import ERR_HELD
from tests.support.strategy_harness import BTC, Harness, engine_config

QUOTER = """
from procs.strategy import BUY, Strategy, StrategyConfig

RESULTS = []

class QuoterConfig(StrategyConfig):
    pass

class Quoter(Strategy):
    def on_book(self, book):
        RESULTS.append(self.api.submit_limit(book.symbol_id, BUY, book.best_bid - 100, 1))
"""


def quoter(plugins) -> tuple[dict, list]:
    mod = plugins.module(QUOTER)
    __import__(mod)
    return {"id": "q", "class": f"{mod}:Quoter", "symbols": ["BTCUSDT"]}, sys.modules[mod].RESULTS


def book(h: Harness) -> list[dict]:
    h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
    h.work()
    return h.intents()


@pytest.mark.parametrize("reason", [M.DENY_HALTED, M.DENY_RECOVERING, M.DENY_RISK_UNAVAILABLE, M.DENY_BREAKER_OPEN,
                                    M.DENY_JOURNAL_FULL, M.DENY_ORDER_RATE])
def test_denied_for_the_system_state_then_new_orders_held_until_the_hold_ends(instance, plugins, reason):
    entry, results = quoter(plugins)
    h = Harness(instance, [entry], deny_hold_ms=200.0)
    try:
        (first,) = book(h)
        h.event(first, M.ORDER_DENIED, reason=reason)
        h.work()  # the denial is read now: the hold runs from here
        for _ in range(3):
            h.clock.advance(50_000_000)
            assert book(h) == []  # held: nothing written
        assert results[1:] == [ERR_HELD] * 3 and h.counter("intents_held") == 3
        h.clock.advance(60_000_000)  # 210 ms after the denial
        (again,) = book(h)  # one try
        assert results[-1] == again["client_tag"] > 0
        h.event(again, M.ORDER_DENIED, reason=reason)  # still denied: held again
        h.work()
        h.clock.advance(1_000_000)
        assert book(h) == [] and results[-1] == ERR_HELD
    finally:
        h.close()


@pytest.mark.parametrize(("reason", "hold_ms"), [
    (M.DENY_MAX_POSITION, 200.0), (M.DENY_PRICE_BAND, 200.0), (M.DENY_REDUCING, 200.0),
    (M.DENY_MAX_OPEN_ORDERS, 200.0),  # denied for the order itself: the next one may pass
    (M.DENY_HALTED, 0.0),  # deny_hold_ms = 0: never held
])
def test_denied_for_the_order_itself_or_hold_off_then_the_next_order_goes(instance, plugins, reason, hold_ms):
    entry, results = quoter(plugins)
    h = Harness(instance, [entry], deny_hold_ms=hold_ms)
    try:
        (first,) = book(h)
        h.event(first, M.ORDER_DENIED, reason=reason)
        h.work()
        h.clock.advance(1_000_000)
        assert len(book(h)) == 1 and h.counter("intents_held") == 0 and ERR_HELD not in results
    finally:
        h.close()


def test_held_then_cancels_still_go(instance, plugins):
    entry, results = quoter(plugins)
    h = Harness(instance, [entry], deny_hold_ms=200.0)
    try:
        (first,) = book(h)
        h.accept(first)
        h.work()
        (second,) = (h.clock.advance(1_000_000), book(h))[1]
        h.event(second, M.ORDER_DENIED, reason=M.DENY_HALTED)
        h.work()
        api = h.engine.slots["q"].api
        assert api.cancel(first["client_tag"]) == first["client_tag"]
        (c,) = h.intents()
        assert c["kind"] == M.CANCEL_ORDER and c["client_tag"] == first["client_tag"]
    finally:
        h.close()


@pytest.mark.parametrize("bad", [-1.0, 60_001.0, float("nan")])
def test_config_when_deny_hold_ms_out_of_range_then_rejected_with_the_field(bad):
    with pytest.raises((ConfigError, ValueError), match="deny_hold_ms"):
        engine_config([], deny_hold_ms=bad)
