"""Engine.keep_warm: the per-event code runs on scratch targets; nothing real changes."""

from __future__ import annotations

import sys

import pytest

from procs.core import messages as M
from procs.core.config import ConfigError
from procs.strategy.agent import make_engine_idle
from shm.counters import read_counters
from shm.idle import BackoffIdle, Waiter
from shm.segment import list_fifos, list_segments, list_semaphores
from tests.support.strategy_harness import BTC, ETH, Harness, engine_config

RECORDER = """
from procs.strategy import BUY, Strategy, StrategyConfig

CALLS = []

class RecorderConfig(StrategyConfig):
    pass

class Recorder(Strategy):
    def on_book(self, book):
        CALLS.append(("book", book.seq))
        self.api.submit_limit(book.symbol_id, BUY, book.best_bid - 100, 1)
        self.api.signal(book.symbol_id, 1.0)

    def on_trade(self, trade):
        CALLS.append(("trade", trade.trade_id))

    def on_order_event(self, event, order):
        CALLS.append(("event", event.kind))

    def on_timer(self, token, now_ns):
        CALLS.append(("timer", token))
"""


def recorder(plugins) -> tuple[dict, list]:
    mod = plugins.module(RECORDER)
    __import__(mod)
    return {"id": "rec", "class": f"{mod}:Recorder", "symbols": ["BTCUSDT", "ETHUSDT"]}, sys.modules[mod].CALLS


def real_view(h: Harness) -> dict:
    """What keep_warm must leave alone: counters, histograms, state, ring cursors, marks, shm."""
    e = h.engine
    counters, hists = read_counters(h.counters.seg)
    st = e.states["rec"]
    return {
        "counters": counters, "hists": {k: v.tolist() for k, v in hists.items()},
        "orders": {t: (o.status, o.price, o.qty) for t, o in st.orders.items()},
        "by_symbol": [[o.tag for o in lst] for lst in st.by_symbol], "next_tag": st.next_tag,
        "positions": [(p.qty, p.fills) for p in st.positions], "closed": sorted(st.closed),
        "book_pos": e._books.position, "orders_seq": e._orders.next_sequence,
        "signals_seq": e._signals.next_sequence, "bid": list(e._bid), "ask": list(e._ask),
        "trace": (e._c_recv, e._c_seq, e._c_pub), "view": e._book_view._v,
        "routes": [[s.id for s in r] for r in e._book_routes], "slots": sorted(e.slots),
        "shm": sorted(list_segments(h.instance) + list_semaphores(h.instance) + list_fifos(h.instance)),
    }


def test_keep_warm_when_run_then_nothing_real_changes_and_no_strategy_is_called(instance, plugins):
    entry, calls = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=0.0)  # keep_warm only when the test calls it
    try:
        b = h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        (first,) = h.intents()
        assert h.signals_read()
        before, seen = real_view(h), list(calls)
        for _ in range(20):
            assert h.engine.keep_warm()
        assert real_view(h) == before
        assert calls == seen == [("book", b["seq"])]
        scratch, _ = read_counters(h.engine._warm.counters.seg)  # the path ran: submits and cancels
        assert scratch["books_in"] == 20 and scratch["intents_out"] == 20
        assert h.intents() == [] and h.signals_read() == []
        # the next real book is handled as if keep_warm had never run
        b2 = h.publish_book(BTC, [(100020, 5)], [(100030, 5)])
        h.work()
        (i,) = h.intents()
        assert i["client_tag"] == first["client_tag"] + 1 and i["intent_id"] == first["intent_id"] + 1
        assert i["md_seq"] == b2["seq"] and i["ts_md_recv"] == b2["ts_recv"] and i["price"] == 100020 - 100
        assert h.counter("intents_out") == 2 and h.counter("books_in") == 2
        assert h.hist_count("book_to_intent") == 2
        assert calls == [("book", b["seq"]), ("book", b2["seq"])]
    finally:
        h.close()


def test_keep_warm_when_no_book_was_read_yet_then_runs_and_writes_nothing(instance, plugins):
    entry, calls = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=0.0)
    try:
        before = real_view(h)
        assert h.engine.keep_warm()
        assert real_view(h) == before
        assert calls == [] and h.intents() == []
        assert h.counter("intents_out") == 0 and h.hist_count("book_to_intent") == 0
    finally:
        h.close()


def test_keep_warm_when_last_book_is_another_symbol_then_nothing_changes(instance, plugins):
    entry, _ = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=0.0)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        h.publish_book(ETH, [(200000, 5)], [], flags=M.BOOK_RESYNCING)  # one-sided, resyncing
        h.work()
        h.intents()
        before = real_view(h)
        assert h.engine.keep_warm() and h.engine.keep_warm()
        assert real_view(h) == before and h.intents() == []
    finally:
        h.close()


def count_keep_warm(h: Harness) -> list[int]:
    """The clock times at which the engine's keep_warm runs (it still runs)."""
    ran: list[int] = []
    real = h.engine.keep_warm
    h.engine.keep_warm = lambda: ran.append(h.clock.t) or real()  # type: ignore[method-assign]
    return ran


def test_do_work_when_quiet_for_keep_warm_ms_then_keeps_warm_once_per_period(instance, plugins):
    entry, _ = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=1.0)
    ran = count_keep_warm(h)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()  # an event: not quiet
        assert ran == []
        h.clock.advance(500_000)
        h.work()
        assert ran == []  # quiet for 0.5 ms only
        h.clock.advance(600_000)
        h.work()
        h.work()
        assert ran == [h.clock.t]  # once per period
        h.clock.advance(1_000_000)
        h.work()
        assert len(ran) == 2
        assert h.intents() and h.counter("intents_out") == 1  # only the real book's intent
    finally:
        h.close()


def test_do_work_when_just_woken_by_a_producer_then_keep_warm_waits_a_period(instance, plugins):
    # market_data's prewake wakes the engine as a frame arrives: a keep-warm run then would hold
    # the real book behind scratch work, so the wake-up counts as activity
    entry, _ = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=1.0)
    ran = count_keep_warm(h)
    try:
        h.clock.advance(5_000_000)  # quiet for 5 ms
        h.engine.on_wake()
        h.work()
        assert ran == []
        h.clock.advance(900_000)
        h.work()
        assert ran == []  # 0.9 ms after the wake-up
        h.clock.advance(200_000)
        h.work()
        assert ran == [h.clock.t]  # a whole period after it with nothing real: keep warm again
    finally:
        h.close()


def test_do_work_when_keep_warm_ms_is_zero_then_never_keeps_warm(instance, plugins):
    entry, _ = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=0.0)
    h.engine.keep_warm = lambda: pytest.fail("keep_warm ran with keep_warm_ms = 0")  # type: ignore[method-assign]
    try:
        for _ in range(5):
            h.clock.advance(10_000_000)
            h.work()
    finally:
        h.close()


def test_config_when_keep_warm_ms_negative_then_rejected():
    with pytest.raises((ConfigError, ValueError), match="keep_warm_ms"):
        engine_config([], keep_warm_ms=-1.0)


def test_make_engine_idle_parks_at_most_keep_warm_ms(instance):
    waiter = Waiter(instance, "strategy")
    try:
        idle = make_engine_idle(engine_config([], keep_warm_ms=1.0, timer_resolution_ms=10.0), waiter)
        assert isinstance(idle, BackoffIdle) and idle.timeout_s == pytest.approx(0.001)
        idle = make_engine_idle(engine_config([], keep_warm_ms=0.0, timer_resolution_ms=5.0), waiter)
        assert idle.timeout_s == pytest.approx(0.005)
    finally:
        waiter.close()


def test_keep_warm_when_it_fails_then_turns_off_and_restores_the_real_targets(instance, plugins, capfd):
    entry, calls = recorder(plugins)
    h = Harness(instance, [entry], keep_warm_ms=1.0)
    try:
        before = real_view(h)

        def broken(sid: int) -> tuple:
            raise RuntimeError("scratch record")

        h.engine._warm_record = broken  # type: ignore[method-assign]
        assert h.engine.keep_warm() is False
        assert h.engine._warm_ns == 0 and real_view(h) == before
        assert "keep_warm_failed" in capfd.readouterr().err
        b = h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.clock.advance(5_000_000)
        h.work()
        (i,) = h.intents()
        assert i["md_seq"] == b["seq"] and calls == [("book", b["seq"])]
    finally:
        h.close()
