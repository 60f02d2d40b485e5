"""A strategy's orders through the whole pipeline: fills agree on all sides, reloads keep
positions, a failing strategy does not stop the others (issue 5)."""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest

from procs.core.registry import SIGNALS, build_registry
from procs.strategy.config import strategy_number
from tests.support.system import NO_STRATEGIES, instruments

pytestmark = pytest.mark.proc

# Buys at market until it holds ``target``; publishes VERSION as its signal value, so a test
# sees which code version runs and, in the signal's position field, the engine's position.
TAKER = """
from procs.strategy import BUY, Strategy, StrategyConfig

VERSION = {version}


class TakerConfig(StrategyConfig):
    qty: str = "0.002"
    target: str = "0.006"


class Taker(Strategy):
    config_class = TakerConfig

    def __init__(self, config, api):
        super().__init__(config, api)
        self.lots = {{s: api.qty_to_lots(s, config.qty) for s in api.symbol_ids}}
        self.target = {{s: api.qty_to_lots(s, config.target) for s in api.symbol_ids}}

    def on_book(self, book):
        s = book.symbol_id
        api = self.api
        if book.usable and api.position(s) < self.target[s] and not api.open_orders(s):
            api.submit_market(s, BUY, self.lots[s])
        api.signal(s, VERSION)
"""

RAISER = """
from procs.strategy import Strategy, StrategyConfig


class RaiserConfig(StrategyConfig):
    pass


class Raiser(Strategy):
    def on_book(self, book):
        raise RuntimeError("raised on purpose by the test")
"""

TAKER_ENTRY = {"id": "taker", "class": "b25t_taker:Taker", "symbols": ["BTCUSDT"]}


def _strategy_lots(stack, sid: str, symbol: str) -> int | None:
    pos = stack.strategy_state().get("strategies", {}).get(sid, {}).get("positions", {})
    return pos.get(symbol, {}).get("qty")


def _agree(stack, lots: int) -> bool:
    """Strategy, risk and the simulator all hold ``lots`` of BTCUSDT."""
    inst = instruments(stack)[0]
    return (_strategy_lots(stack, "taker", "BTCUSDT") == lots
            and int(stack.risk_state()["position"][0]) == lots
            and Decimal(str(stack.position_risk("BTCUSDT"))) == Decimal(inst.lots_to_qty(lots)))


def test_strategy_order_when_filled_then_simulator_strategy_and_risk_hold_the_same_position(make_stack, plugins):
    plugins("b25t_taker", TAKER.format(version=1.0))
    stack = make_stack(overrides=NO_STRATEGIES, strategies=[TAKER_ENTRY])
    inst = instruments(stack)[0]
    lots = inst.qty_to_lots("0.006")

    stack.wait_for(lambda: _agree(stack, lots), "the same 0.006 BTC position on all three sides")

    log = stack.order_log()
    assert [r["event"] for r in log if r["symbol"] == "BTCUSDT"].count("TRADE") >= 3
    assert {r["type"] for r in log} == {"MARKET"} and {r["side"] for r in log} == {"BUY"}
    assert all(r["clientOrderId"].startswith("b25-") for r in log)  # execution's ids reached the venue
    st = stack.strategy_state()["strategies"]["taker"]["positions"]["BTCUSDT"]
    assert st["fills"] >= 3 and st["fees"] > 0
    assert stack.risk_state()["trading_state"] == 1  # ACTIVE: reconciliation found no mismatch


def test_reload_when_strategy_code_changes_then_positions_are_kept(make_stack, plugins):
    path = plugins("b25t_taker", TAKER.format(version=1.0))
    stack = make_stack(overrides=NO_STRATEGIES, strategies=[TAKER_ENTRY])
    lots = instruments(stack)[0].qty_to_lots("0.006")
    stack.wait_for(lambda: _agree(stack, lots), "the position built before the reload")
    signals = build_registry().consumer(stack.instance, SIGNALS, None, timeout=5)
    try:
        path.write_text(TAKER.format(version=2.5))  # another size too: no stale .pyc by mtime+size
        stack.send_signal("strategy", signal.SIGHUP)
        num = strategy_number("taker")

        def v2_positions() -> list[int]:
            b = signals.poll()
            signals.commit()
            return [int(p) for p in b[(b["strategy_id"] == num) & (b["value"] == 2.5)]["position"]]

        seen = stack.wait_for(v2_positions, "a signal from the reloaded code")
        assert seen[0] == lots  # the new instance started with the old position
    finally:
        signals.close()
    assert stack.log_events("strategy", "strategy_config_applied")
    assert not stack.log_events("strategy", "reload_failed")
    # had the position been lost, the new code would have bought again
    stack.wait_for(lambda: _agree(stack, lots), "the same position after the reload")
    assert sum(r["event"] == "NEW" for r in stack.order_log()) == 3


def test_strategy_when_it_raises_then_it_is_paused_and_the_others_keep_trading(make_stack, plugins):
    plugins("b25t_raiser", RAISER)
    echo = {"id": "echo_eth", "class": "strategies.echo:Echo", "symbols": ["ETHUSDT"],
            "params": {"qty": "0.04", "mode": "alternate"}}
    raiser = {"id": "raiser", "class": "b25t_raiser:Raiser", "symbols": ["BTCUSDT"]}
    stack = make_stack(overrides=NO_STRATEGIES, strategies=[raiser, echo])

    paused = stack.wait_for(lambda: stack.log_events("strategy", "strategy_paused"), "the raiser paused")
    assert paused[0]["strategy"] == "raiser" and paused[0]["error"] == "RuntimeError"
    n = len(stack.order_log())
    stack.wait_for(lambda: sum(r["symbol"] == "ETHUSDT" and r["event"] == "NEW" for r in stack.order_log(n)) >= 3,
                   "echo's orders after the raiser failed")
    c = stack.counters("strategy")[0]
    assert c["exceptions"] >= 1 and c["paused"] == 1 and c["running"] == 1
    assert stack.status("strategy")["state"] == "RUNNING"
    assert not any(r["symbol"] == "BTCUSDT" for r in stack.order_log())
