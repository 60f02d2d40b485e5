"""Orders a killed strategy process left working (issue 16): the restarted engine asks execution
for them (REPORT_ORDERS), then adopts or cancels each, per ``recovered_orders``; fills are counted
exactly once across the kill. Real engine, real rings; the test plays execution."""

from __future__ import annotations

import time
from pathlib import Path

from procs.core import messages as M
from procs.strategy.config import strategy_number
from tests.support.strategy_harness import BTC, Harness

MM = "strategies.market_maker:MarketMaker"
PARAMS = {"quote_qty": "0.001", "max_position": "0.005", "spread_ticks": 4, "skew_ticks": 0.0, "stale_ms": 0}
BOOK = ([(100000, 5)], [(100010, 5)])  # mid 100005: quotes 100003 / 100007


def mm_entry(mode: str = "cancel", sid: str = "mm") -> dict:
    return {"id": sid, "class": MM, "symbols": ["BTCUSDT"], "params": PARAMS, "recovered_orders": mode}


def quoting(instance: str, tmp_path: Path, mode: str = "cancel", **engine) -> tuple[Harness, dict[int, dict]]:
    """A market maker with both quotes accepted by 'execution'; its state file in tmp_path."""
    h = Harness(instance, [mm_entry(mode)], answer_report=True, state_file=str(tmp_path / "state.json"), **engine)
    h.work()
    h.publish_book(BTC, *BOOK)
    h.work()
    quotes = {i["side"]: i for i in h.intents()}
    assert sorted(quotes) == [M.SELL, M.BUY]
    for q in quotes.values():
        h.accept(q)
    h.work()
    return h, quotes


def test_restart_when_quotes_were_working_then_report_asked_and_each_cancelled_by_default(instance, tmp_path):
    h, quotes = quoting(instance, tmp_path)
    try:
        h.restart()
        (ask,) = h.report_requests
        assert ask["strategy_id"] == -1 and ask["source"] == M.SOURCE_STRATEGY
        h.report(list(quotes.values()), ask)
        h.publish_book(BTC, *BOOK)
        h.work()
        got = h.intents()
        cancels = sorted(i["client_tag"] for i in got if i["kind"] == M.CANCEL_ORDER)
        assert cancels == sorted(q["client_tag"] for q in quotes.values())
        # held as canceling: the market maker waits for the cancels before it quotes a side again
        assert [i for i in got if i["kind"] == M.SUBMIT_ORDER] == []
        assert h.counter("orders_recovered_canceled") == 2 and h.counter("orders_adopted") == 0
        for q in quotes.values():
            h.event(q, M.ORDER_CANCELED)
        h.work()
        new = {i["side"]: i for i in h.intents() if i["kind"] == M.SUBMIT_ORDER}
        assert sorted(new) == [M.SELL, M.BUY]  # the confirmed cancels put fresh quotes out
        assert all(n["client_tag"] > max(cancels) for n in new.values())  # tags never repeat
    finally:
        h.close()


def test_restart_when_adopt_then_quotes_are_managed_as_its_own(instance, tmp_path):
    h, quotes = quoting(instance, tmp_path, mode="adopt")
    try:
        h.restart()
        h.report(list(quotes.values()), h.report_requests[0])
        h.publish_book(BTC, *BOOK)
        h.work()
        assert h.intents() == []  # adopted at their targets: kept, nothing new, nothing cancelled
        st = h.engine.states["mm"]
        assert sorted(st.orders) == sorted(q["client_tag"] for q in quotes.values())
        assert h.counter("orders_adopted") == 2
        h.publish_book(BTC, [(100020, 5)], [(100030, 5)])  # the market moved: the adopted quotes move
        h.work()
        moved = h.intents()
        assert sorted((i["kind"], i["client_tag"]) for i in moved) == sorted(
            (M.CANCEL_ORDER, q["client_tag"]) for q in quotes.values())
        for q in quotes.values():
            h.event(q, M.ORDER_CANCELED)
        h.work()
        new = {i["side"]: i["price"] for i in h.intents() if i["kind"] == M.SUBMIT_ORDER}
        assert new == {M.BUY: 100023, M.SELL: 100027}
    finally:
        h.close()


def test_adopt_when_two_orders_rest_on_one_side_then_market_maker_keeps_one_quote(instance, tmp_path):
    h, quotes = quoting(instance, tmp_path, mode="adopt")
    try:
        extra = dict(quotes[M.BUY], client_tag=quotes[M.BUY]["client_tag"] + 100, price=99990)
        h.restart()
        h.report([quotes[M.BUY], extra, quotes[M.SELL]], h.report_requests[0])
        h.work()
        (c,) = h.intents()
        assert (c["kind"], c["client_tag"]) == (M.CANCEL_ORDER, extra["client_tag"])
        assert h.engine.states["mm"].next_tag > extra["client_tag"]
    finally:
        h.close()


def test_report_when_order_belongs_to_no_configured_strategy_then_cancelled_by_its_number(instance, tmp_path):
    h, _ = quoting(instance, tmp_path)
    try:
        gone = {"strategy_id": strategy_number("removed"), "symbol_id": BTC, "side": M.BUY, "order_type": M.LIMIT,
                "tif": M.GTC, "client_tag": 77, "price": 99000, "qty": 1, "intent_id": 5}
        h.report([gone], None)  # execution's own report after its restart
        h.work()
        (c,) = h.intents()
        assert (c["kind"], c["strategy_id"], c["client_tag"]) == (M.CANCEL_ORDER, gone["strategy_id"], 77)
    finally:
        h.close()


def test_execution_restart_when_report_misses_an_acknowledged_order_then_it_is_dropped(instance, tmp_path):
    h, quotes = quoting(instance, tmp_path)
    try:
        h.report([quotes[M.BUY]], None)  # execution restarted and no longer holds the ask open
        h.work()
        st = h.engine.states["mm"]
        assert list(st.orders) == [quotes[M.BUY]["client_tag"]]
        assert h.counter("orders_gone") == 1
        h.publish_book(BTC, *BOOK)
        h.work()
        (new,) = h.intents()  # the ask side is free again: a fresh quote
        assert (new["kind"], new["side"]) == (M.SUBMIT_ORDER, M.SELL)
    finally:
        h.close()


def test_report_when_not_answered_within_adopt_timeout_then_asked_again(instance, tmp_path):
    h = Harness(instance, [mm_entry()], state_file=str(tmp_path / "s.json"), adopt_timeout_s=0.2)
    try:
        (first,) = h.report_requests
        deadline = time.monotonic() + 10
        again: list[dict] = []
        while not again and time.monotonic() < deadline:
            h.clock.advance(200_000_000)  # housekeeping runs on the engine clock
            h.work()
            again = [i for i in h.intents() if i["kind"] == M.REPORT_ORDERS]
            time.sleep(0.05)
        assert again and again[0]["intent_id"] > first["intent_id"]
        h.report([], again[0])
        h.work()
        assert h.engine._report_intent is None
    finally:
        h.close()


def fill_then(h: Harness, quotes: dict[int, dict], stop: str) -> None:
    """The bid fills; the engine reads it and then dies: after its save ('saved'), before it
    ('unsaved'), or after both the save and the stored position ('stored')."""
    h.fill(quotes[M.BUY], fee_e8=100)
    if stop == "stored":
        h.work()
        return
    h.engine._drain_exec()  # the fill is applied in memory, the read position not stored
    if stop == "saved":
        h.engine.save_state()


def test_restart_when_killed_around_a_fill_then_position_counts_it_exactly_once(instance, tmp_path):
    for stop in ("unsaved", "saved", "stored"):
        h, quotes = quoting(instance, tmp_path / stop)
        try:
            fill_then(h, quotes, stop)
            replayed = h.counter("events_replayed")
            h.restart()
            h.report([quotes[M.SELL]], h.report_requests[0])
            h.work()
            p = h.engine.states["mm"].positions[BTC]
            assert (stop, p.qty, p.fills) == (stop, 1, 1)
            # read again after the restart: skipped only when the saved state already held it
            assert (stop, h.counter("events_replayed") - replayed) == (stop, 1 if stop == "saved" else 0)
        finally:
            h.close()


def test_report_when_an_order_was_never_reported_on_then_it_is_kept(instance, tmp_path):
    """An intent execution has not read yet (it was down, or busy) is not in its report: an order
    it never said anything about stays in the working set, even once a cancel of it is written."""
    h = Harness(instance, [mm_entry()], answer_report=True, state_file=str(tmp_path / "s.json"))
    try:
        h.work()
        h.publish_book(BTC, *BOOK)
        h.work()
        quotes = {i["side"]: i for i in h.intents()}
        h.publish_book(BTC, [(100020, 5)], [(100030, 5)])  # requote: both quotes now canceling
        h.work()
        assert sorted(i["kind"] for i in h.intents()) == [M.CANCEL_ORDER, M.CANCEL_ORDER]
        h.report([], None)  # execution restarted before it read any of these intents
        h.work()
        assert sorted(h.engine.states["mm"].orders) == sorted(q["client_tag"] for q in quotes.values())
        assert h.counter("orders_gone") == 0
    finally:
        h.close()
