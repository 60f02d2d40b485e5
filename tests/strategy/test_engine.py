"""The engine on real shm rings in this process: trace fields, routing, faults, state, timers."""

from __future__ import annotations

import json
import time

import pytest

from procs.core import messages as M
from procs.strategy.config import strategy_number
from procs.strategy.state import Position
from tests.support.strategy_harness import BTC, ETH, RAISER, Harness

ECHO = "strategies.echo:Echo"

TIMED = """
from procs.strategy import BUY, Strategy, StrategyConfig

class TimedConfig(StrategyConfig):
    period_ms: int = 100

class Timed(Strategy):
    def on_start(self):
        self.fired = []
        self.api.set_timer(7, self.config.period_ms * 1_000_000, self.config.period_ms * 1_000_000)

    def on_timer(self, token, now_ns):
        self.fired.append((token, now_ns))
        self.api.submit_limit(self.api.symbol_ids[0], BUY, 90000, 1)
"""


def echo(sid: str = "echo", symbols: tuple[str, ...] = ("BTCUSDT",), **params) -> dict:
    return {"id": sid, "class": ECHO, "symbols": list(symbols), "params": {"offset_ticks": 100, **params}}


def test_on_book_when_strategy_submits_then_intent_carries_trace_fields(instance):
    h = Harness(instance, [echo()])
    try:
        b = h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        before = time.monotonic_ns()
        h.work()
        (i,) = h.intents()
        assert i["kind"] == M.SUBMIT_ORDER and i["source"] == M.SOURCE_STRATEGY
        assert i["strategy_id"] == strategy_number("echo") and i["symbol_id"] == BTC
        assert (i["side"], i["price"], i["qty"]) == (M.BUY, 100000 - 100, 1)
        assert i["ts_md_recv"] == b["ts_recv"] and i["md_seq"] == b["seq"]
        assert b["ts_pub"] <= before <= i["ts_intent"] <= time.monotonic_ns()
        assert i["client_tag"] > 0 and i["intent_id"] == h.report_requests[0]["intent_id"] + 1  # the ring sequence
        assert h.hist_count("book_to_intent") == 1
        assert h.counter("intents_out") == 1 and h.counter("books_in") == 1
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        (c,) = h.intents()  # echo alternates: the next update cancels that order by its tag
        assert c["kind"] == M.CANCEL_ORDER and c["client_tag"] == i["client_tag"] and c["intent_id"] == i["intent_id"] + 1
    finally:
        h.close()


def test_on_book_when_strategies_trade_different_symbols_then_each_gets_only_its_own(instance):
    h = Harness(instance, [echo("e_btc"), echo("e_eth", ("ETHUSDT",))])
    try:
        h.publish_book(ETH, [(300000, 5)], [(300010, 5)])
        h.work()
        (i,) = h.intents()
        assert i["strategy_id"] == strategy_number("e_eth") and i["symbol_id"] == ETH
    finally:
        h.close()


def test_on_book_when_a_strategy_raises_then_it_is_paused_and_the_other_keeps_trading(instance, plugins, capfd):
    mod = plugins.module(RAISER)
    h = Harness(instance, [{"id": "bad", "class": f"{mod}:Raiser", "symbols": ["BTCUSDT"]}, echo()])
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        first = h.intents()
        assert sorted(i["strategy_id"] for i in first) == sorted([strategy_number("bad"), strategy_number("echo")])
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()  # "bad" raises: paused, its open order cancelled; echo answers as usual
        got = h.intents()
        bad_order = next(i for i in first if i["strategy_id"] == strategy_number("bad"))
        cancels = [i for i in got if i["strategy_id"] == strategy_number("bad")]
        assert [(c["kind"], c["client_tag"]) for c in cancels] == [(M.CANCEL_ORDER, bad_order["client_tag"])]
        assert [i["strategy_id"] for i in got if i not in cancels] == [strategy_number("echo")]
        assert h.engine.slots["bad"].paused and not h.engine.slots["echo"].paused
        assert h.counter("exceptions") == 1 and h.counter("paused") == 1 and h.counter("running") == 1
        for _ in range(3):
            h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
            h.work()
            assert {i["strategy_id"] for i in h.intents()} == {strategy_number("echo")}
        err = capfd.readouterr().err
        assert err.count('"strategy_failed"') == 1 and "boom in on_book" in err
        assert err.count('"strategy_paused"') == 1
    finally:
        h.close()


def test_on_order_event_when_fills_arrive_then_position_and_pnl_follow(instance):
    h = Harness(instance, [echo(mode="new")])
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        (i,) = h.intents()
        h.accept(i)
        h.fill(i, qty=1, px=99900, fee_e8=2_000_000)  # 0.02 USDT fee
        h.fill(i, qty=1, px=99900, fee_e8=2_000_000)  # a repeated report (same cum_qty) is not applied twice
        h.work()
        st = h.engine.states["echo"]
        p = st.positions[BTC]
        assert (p.qty, p.avg_px, p.fills) == (1, 99900.0, 1)
        assert abs(p.fees - 0.02) < 1e-12
        realized, unrealized, fees = h.engine.slots["echo"].api.pnl(BTC)
        # mark = mid 100005 ticks of 0.01, 1 lot of 0.001: (100005 - 99900) * 1e-5 = 0.00105
        assert realized == 0.0 and abs(unrealized - 0.00105) < 1e-12
        assert i["client_tag"] not in st.orders  # filled: no longer open
        assert h.counter("fills") == 1
        rep = h.engine.pnl_report()["echo"]["symbols"]["BTCUSDT"]
        assert rep["position"] == 1
    finally:
        h.close()


def test_apply_fill_when_position_flips_then_realizes_the_closed_part():
    p = Position(0, unit=1.0)
    p.apply_fill(M.BUY, 100, 2, 0.0)
    p.apply_fill(M.SELL, 110, 3, 0.5)
    assert (p.qty, p.avg_px, p.realized, p.fees) == (-1, 110.0, 20.0, 0.5)
    assert p.unrealized(100.0) == 10.0
    p.apply_fill(M.BUY, 105, 1, 0.0)
    assert (p.qty, p.avg_px, p.realized) == (0, 0.0, 25.0)


def test_do_work_when_exec_has_events_of_other_strategies_then_drains_and_counts_them(instance):
    h = Harness(instance, [echo()])
    try:
        foreign = {"strategy_id": 424242, "symbol_id": BTC, "side": M.BUY, "order_type": M.LIMIT,
                   "client_tag": 1, "price": 1, "qty": 1, "intent_id": 0}
        for _ in range(10):
            h.event(foreign, M.ORDER_ACCEPTED)
        h.work()
        assert h.counter("foreign_events") == 10 and h.counter("exec_events_in") == 10
        assert h.engine._exec.available() == 0
    finally:
        h.close()


def test_on_timer_when_clock_passes_deadline_then_fires_and_repeats(instance, plugins):
    mod = plugins.module(TIMED)
    h = Harness(instance, [{"id": "t", "class": f"{mod}:Timed", "symbols": ["BTCUSDT"]}])
    try:
        s = h.engine.slots["t"].strategy
        h.work()
        assert s.fired == []
        h.clock.advance(100_000_000)
        h.work()
        h.clock.advance(100_000_000)
        h.work()
        assert [t for t, _ in s.fired] == [7, 7]
        got = h.intents()
        assert len(got) == 2 and all(i["ts_md_recv"] == 0 and i["md_seq"] == 0 for i in got)
        assert h.counter("timers_fired") == 2
    finally:
        h.close()


def test_signal_when_decision_is_unchanged_then_rate_limited(instance):
    mm = {"id": "mm", "class": "strategies.market_maker:MarketMaker", "symbols": ["BTCUSDT"],
          "params": {"stale_ms": 0}}
    h = Harness(instance, [mm], signal_interval_ms=100)
    try:
        for _ in range(5):
            h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
            h.work()
        assert len(h.signals_read()) == 1
        h.clock.advance(100_000_000)
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        (sig,) = h.signals_read()
        assert sig["strategy_id"] == strategy_number("mm") and sig["decision"] == 2 and sig["md_seq"] == 6
    finally:
        h.close()


def test_submit_when_orders_ring_is_full_then_returns_code_and_counts(instance):
    h = Harness(instance, [echo(mode="new")])
    try:
        cap = h.engine._orders.capacity
        for _ in range(cap // 512 + 1):
            for _ in range(512):
                h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
            while h.work():
                pass
        assert h.counter("intents_out") == cap
        assert h.counter("intents_dropped") == (cap // 512 + 1) * 512 - cap
        assert len(h.engine.states["echo"].orders) == cap  # a dropped intent leaves no phantom order
        assert len(h.intents()) == cap
    finally:
        h.close()


TRADES = """
from procs.strategy import Strategy, StrategyConfig

class TapeConfig(StrategyConfig):
    pass

class Tape(Strategy):
    def on_start(self):
        self.seen = []

    def on_trade(self, trade):
        self.seen.append((trade.symbol_id, trade.price, trade.qty, trade.aggressor))
"""


def test_on_trade_when_trades_arrive_then_only_subscribers_of_the_symbol_get_them(instance, plugins):
    mod = plugins.module(TRADES)
    h = Harness(instance, [{"id": "tape", "class": f"{mod}:Tape", "symbols": ["ETHUSDT"]}, echo()])
    try:
        h.publish_trade(BTC, 100000, 3)
        h.publish_trade(ETH, 300000, 2, buyer_maker=True)
        h.work()
        assert h.engine.slots["tape"].strategy.seen == [(ETH, 300000, 2, M.SELL)]
        assert h.counter("trades_in") == 2
    finally:
        h.close()


def run_with_a_fill(instance: str, state: str, venue_session: str = "") -> int:
    """One Echo order filled (1 lot at 99900, fee 0.01), saved to ``state``; the order's tag."""
    h = Harness(instance, [echo(mode="new")], state_file=state, venue_session=venue_session)
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()
        (i,) = h.intents()
        h.fill(i, qty=1, px=99900, fee_e8=1_000_000)
        h.work()
        return i["client_tag"]
    finally:
        h.close()  # saves the snapshot


@pytest.mark.parametrize(("saved", "now", "restored"), [
    ("sim-a", "sim-a", True),  # the same simulator process
    ("sim-a", "sim-b", False),  # a fresh simulator: its account is flat
    ("", "sim-b", False),  # saved against a real venue, now on a simulator
    ("sim-a", "", True),  # exchangeInfo from a file or a real venue: nothing says otherwise
    (None, "sim-b", True),  # a file saved before sessions were recorded
])
def test_open_when_the_venue_session_changed_then_positions_start_flat_and_the_file_is_kept(
        instance, tmp_path, saved, now, restored):
    import json

    state = tmp_path / "state.json"
    run_with_a_fill(instance, str(state), saved or "")
    data = json.loads(state.read_text())
    assert data["venue_session"] == (saved or "")
    if saved is None:
        del data["venue_session"]
        state.write_text(json.dumps(data))
    h = Harness(instance, [echo(mode="new")], state_file=str(state), venue_session=now)
    try:
        p = h.engine.states["echo"].positions[BTC]
        assert (p.qty, p.fills) == ((1, 1) if restored else (0, 0))
        archived = list(tmp_path.glob("state.json.*"))
        assert len(archived) == (0 if restored else 1)
        if archived:  # nothing is lost: the old session's snapshot is kept beside
            assert json.loads(archived[0].read_text())["strategies"]["echo"] == data["strategies"]["echo"]
    finally:
        h.close()
    assert json.loads(state.read_text())["venue_session"] == now  # saved against the session now


def test_open_when_state_set_aside_again_and_again_then_only_the_newest_archives_stay(instance, tmp_path):
    from procs.strategy.engine import KEEP_STATE_ARCHIVES

    state = tmp_path / "state.json"
    for k in range(KEEP_STATE_ARCHIVES + 2):  # older archives, as earlier sessions left them
        (tmp_path / f"state.json.{1000 + k}").write_text("{}")
    (tmp_path / "state.json.notes").write_text("not ours")
    run_with_a_fill(instance, str(state), "sim-a")
    h = Harness(instance, [echo(mode="new")], state_file=str(state), venue_session="sim-b")
    h.close()
    left = sorted(p.name for p in tmp_path.glob("state.json.*"))
    assert len(left) == KEEP_STATE_ARCHIVES + 1 and "state.json.notes" in left  # only numbered ones go
    assert "state.json.1000" not in left and "state.json.1001" not in left and "state.json.1002" not in left


def test_open_when_a_state_snapshot_exists_then_positions_survive_a_restart(instance, tmp_path):
    state = str(tmp_path / "state.json")
    last_tag = run_with_a_fill(instance, state)
    h = Harness(instance, [echo(mode="new")], state_file=state)
    try:
        st = h.engine.states["echo"]
        p = st.positions[BTC]
        assert (p.qty, p.avg_px, p.fills) == (1, 99900.0, 1) and abs(p.fees - 0.01) < 1e-12
        assert st.next_tag > last_tag
    finally:
        h.close()


def test_status_when_a_strategy_raises_then_the_file_shows_it_paused_with_its_last_error(instance, plugins, tmp_path):
    mod = plugins.module(RAISER)
    h = Harness(instance, [{"id": "bad", "class": f"{mod}:Raiser", "symbols": ["BTCUSDT"]}, echo()],
                state_file=str(tmp_path / "strategy.state.json"))
    status = tmp_path / "strategy.status.json"
    try:
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.engine.write_status()
        doc = json.loads(status.read_text())
        assert {sid: s["state"] for sid, s in doc["strategies"].items()} == {"bad": "running", "echo": "running"}
        bad = doc["strategies"]["bad"]
        assert bad["last_error"] is None and bad["open_orders"] == []
        h.work()
        h.engine.write_status()
        bad = json.loads(status.read_text())["strategies"]["bad"]
        [order] = bad["open_orders"]
        assert (order["symbol"], order["side"], order["price"], order["qty"], order["status"]) == (
            "BTCUSDT", M.BUY, 99900, 1, "submitted")
        h.publish_book(BTC, [(100000, 5)], [(100010, 5)])
        h.work()  # raises: paused
        h.engine.write_status()
        doc = json.loads(status.read_text())
        bad = doc["strategies"]["bad"]
        assert bad["state"] == "paused" and doc["strategies"]["echo"]["state"] == "running"
        assert (bad["last_error"]["callback"], bad["last_error"]["error"], bad["last_error"]["message"]) == (
            "on_book", "RuntimeError", "boom in on_book")
        assert status.stat().st_mode & 0o777 == 0o600
    finally:
        h.close()
    assert {s["state"] for s in json.loads(status.read_text())["strategies"].values()} == {"stopped"}
