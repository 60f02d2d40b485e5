"""No orphaned orders (issue 16): a strategy SIGKILLed with working orders comes back and, within
``[strategy] adopt_timeout_s``, every order its previous process left at the venue is cancelled
(``recovered_orders = "cancel"``, the default) or managed as its own (``"adopt"``); the same
after a SIGKILL of execution while the strategy lives on. Every real process on the simulator."""

from __future__ import annotations

import time

import pytest

from procs.core import messages as M
from procs.tools.stack import Stack
from tests.support.system import NO_STRATEGIES

pytestmark = pytest.mark.proc

ADOPT_TIMEOUT_S = 5.0


def market_maker(mode: str, requote_ticks: int = 1) -> dict:
    return {"id": "mm_btc", "class": "strategies.market_maker:MarketMaker", "symbols": ["BTCUSDT"],
            "recovered_orders": mode,
            "params": {"quote_qty": "0.002", "max_position": "0.01", "spread_ticks": 400,
                       "requote_ticks": requote_ticks, "stale_ms": 0}}


def overrides() -> dict:
    return {**NO_STRATEGIES, "strategy": {**NO_STRATEGIES["strategy"], "adopt_timeout_s": ADOPT_TIMEOUT_S}}


def venue_quotes(stack: Stack) -> dict[str, list[str]]:
    """The simulator's open orders by side (client order ids)."""
    out: dict[str, list[str]] = {"BUY": [], "SELL": []}
    for o in stack.open_orders("BTCUSDT"):
        out["BUY" if o.side == M.BUY else "SELL"].append(o.client_order_id)
    return out


def two_quotes(stack: Stack) -> dict[str, list[str]]:
    def check() -> dict[str, list[str]] | None:
        q = venue_quotes(stack)
        return q if len(q["BUY"]) == len(q["SELL"]) == 1 else None

    return stack.wait_for(check, "one quote a side at the venue", timeout=30)


def strategy_open_orders(stack: Stack) -> int:
    return stack.counters("strategy")[0]["open_orders"]


def settled(stack: Stack, before: dict[str, list[str]]) -> dict[str, list[str]]:
    """Once the pre-kill quotes are gone or kept: one order a side, each known to the strategy."""
    def check() -> dict[str, list[str]] | None:
        q = venue_quotes(stack)
        if len(q["BUY"]) > 1 or len(q["SELL"]) > 1:
            return None
        return q if strategy_open_orders(stack) == len(q["BUY"]) + len(q["SELL"]) else None

    return stack.wait_for(check, "no more than one order a side, all in the strategy's working set",
                          timeout=ADOPT_TIMEOUT_S + 5)


def order_events(stack: Stack, cid: str) -> list[str]:
    return [e["event"] for e in stack.order_log() if e["clientOrderId"] == cid]


def test_strategy_when_sigkilled_with_working_quotes_then_restart_cancels_them(make_stack):
    stack = make_stack(overrides=overrides(), strategies=[market_maker("cancel")])
    before = two_quotes(stack)
    stack.kill("strategy")
    t0 = time.monotonic()
    stack.start_proc("strategy")
    stack.wait_running(["strategy"])
    for cid in before["BUY"] + before["SELL"]:  # each left behind is cancelled, within adopt_timeout_s
        stack.wait_for(lambda c=cid: "CANCELED" in order_events(stack, c) or "FILLED" in order_events(stack, c),
                       f"{cid} closed at the venue", timeout=ADOPT_TIMEOUT_S + 10)
    assert time.monotonic() - t0 < ADOPT_TIMEOUT_S + 10
    after = settled(stack, before)
    assert not set(after["BUY"] + after["SELL"]) & set(before["BUY"] + before["SELL"])
    counters = stack.counters("strategy")[0]
    assert counters["orders_recovered_canceled"] >= 1 and counters["orders_adopted"] == 0
    two_quotes(stack)  # and it quotes again


def test_strategy_when_sigkilled_and_adopting_then_its_quotes_are_managed_as_its_own(make_stack):
    # requote_ticks wide: the adopted quotes are at the new process's targets and stay
    stack = make_stack(overrides=overrides(), strategies=[market_maker("adopt", requote_ticks=10_000)])
    before = two_quotes(stack)
    stack.kill("strategy")
    stack.start_proc("strategy")
    stack.wait_running(["strategy"])
    stack.wait_for(lambda: stack.counters("strategy")[0]["orders_adopted"] == 2, "both quotes adopted",
                   timeout=ADOPT_TIMEOUT_S + 5)
    after = settled(stack, before)
    assert after == before  # the same two orders, managed: nothing new placed beside them
    assert stack.log_events("strategy", "order_adopted")
    # managed as its own: the strategy's cancel-all reaches them
    from procs.core.control import CancelAll
    stack.send("strategy", CancelAll(operator="test"))
    for cid in before["BUY"] + before["SELL"]:
        stack.wait_for(lambda c=cid: "CANCELED" in order_events(stack, c), f"{cid} cancelled by the strategy")


def test_execution_when_sigkilled_while_strategy_lives_then_every_quote_stays_managed(make_stack):
    stack = make_stack(overrides=overrides(), strategies=[market_maker("cancel")])
    before = two_quotes(stack)
    stack.kill("execution")
    stack.start_proc("execution")
    stack.wait_running(["execution"])
    stack.wait_for(lambda: stack.log_events("execution", "orders_reported"), "execution's report after its restart")
    settled(stack, before)
    assert stack.counters("strategy")[0]["reports"] >= 2  # its own at start, then execution's
    two_quotes(stack)
