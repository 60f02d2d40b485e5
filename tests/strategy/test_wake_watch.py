"""Engine.on_wake: after market_data's prewake finds md.* empty, the engine watches the md
cursors for the announced record instead of running duty cycles in front of it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from procs.core.config import ConfigError
from tests.support.strategy_harness import BTC, Harness, engine_config


def count_calls(h: Harness, before_call: Callable[[int], None] | None = None) -> list[int]:
    """Count md.book has_data calls on the engine's consumer; before_call(n) runs before the nth."""
    calls: list[int] = []
    books = h.engine._books
    assert books is not None
    real = books.has_data

    def has_data() -> bool:
        calls.append(len(calls) + 1)
        if before_call is not None:
            before_call(len(calls))
        return real()

    books.has_data = has_data  # type: ignore[method-assign]
    return calls


def test_on_wake_when_the_book_lands_during_the_watch_then_returns_with_it_unread(instance):
    h = Harness(instance, [], wake_watch_us=1000.0)
    try:
        # the record is published between the 5th and 6th look at the cursor, as market_data
        # would publish it while the strategy watches
        calls = count_calls(h, lambda n: n == 6 and h.publish_book(BTC, [(100, 1)], [(101, 1)]))
        h.engine.on_wake()
        assert len(calls) == 6  # it stopped watching the moment the cursor moved
        assert h.engine._books.available() == 1  # and left the book for do_work to read
    finally:
        h.close()


def test_on_wake_when_nothing_lands_then_watches_for_wake_watch_us_and_returns(instance):
    h = Harness(instance, [], wake_watch_us=300.0)
    try:
        calls = count_calls(h)
        t0 = time.monotonic_ns()
        h.engine.on_wake()
        assert time.monotonic_ns() - t0 >= 300_000  # the whole watch (a lower bound: never flaky)
        assert len(calls) > 2 and h.engine._books.available() == 0
    finally:
        h.close()


@pytest.mark.parametrize("ring", ["book", "exec"])
def test_on_wake_when_a_record_is_already_there_then_no_watch(instance, ring):
    # a record's own post (not a prewake): do_work reads it now
    h = Harness(instance, [], wake_watch_us=1000.0)
    try:
        if ring == "book":
            h.publish_book(BTC, [(100, 1)], [(101, 1)])
        else:
            h.exec.try_claim()
            h.exec.publish()
        calls = count_calls(h)
        h.engine.on_wake()
        assert len(calls) == 1  # one look, and back to do_work
    finally:
        h.close()


def test_on_wake_when_wake_watch_us_is_zero_then_never_watches(instance):
    h = Harness(instance, [], wake_watch_us=0.0)
    try:
        calls = count_calls(h)
        h.clock.advance(5_000_000)
        h.engine.on_wake()
        assert calls == []
        assert h.engine._last_busy == h.clock.t  # the wake-up still counts as activity (keep_warm waits)
    finally:
        h.close()


@pytest.mark.parametrize("bad", [-1.0, 1000.5, float("nan")])
def test_config_when_wake_watch_us_out_of_range_then_rejected_with_the_field(bad):
    with pytest.raises((ConfigError, ValueError), match="wake_watch_us"):
        engine_config([], wake_watch_us=bad)
