"""Limits, the trading-state machine, commands, reconciliation verdicts and risk.state contents."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from procs.core import control as C
from procs.core import messages as M
from procs.core.config import ConfigError, load_section
from procs.core.instruments import Instrument
from procs.risk import alerts as A
from procs.risk import state as S
from procs.risk.config import RiskConfig, SymbolLimits, SymbolOverrides
from procs.risk.engine import ReconcileResult, RiskEngine
from procs.risk.ledger import SEED

BTC = Instrument(symbol="BTCUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")
ETH = Instrument(symbol="ETHUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")
DAY = 86400.0 * 20000


class Harness:
    def __init__(self, **cfg: object) -> None:
        self.alerts: list[tuple[int, int, int, float, str]] = []
        self.cancels: list[str] = []
        self.deliver = True
        self.eng = RiskEngine(RiskConfig(**cfg), [BTC, ETH], lambda *a: self.alerts.append(a),
                              self._cancel, now_wall=DAY)

    def _cancel(self, why: str) -> bool:
        self.cancels.append(why)
        return self.deliver

    def codes(self) -> list[int]:
        return [a[1] for a in self.alerts]

    def fill(self, side: int, q: str, p: str, strategy: int = 1, fee_e8: int = 0) -> None:
        self.eng.on_fill(strategy, 0, side, BTC.qty_to_lots(q), BTC.price_to_ticks(p), fee_e8)

    def mark(self, p: str) -> None:
        self.eng.on_mark(0, BTC.price_to_ticks(p))
        self.eng.evaluate(DAY)


# -- limits and breaches -------------------------------------------------------------------
@pytest.mark.parametrize("action,level", [("REDUCING", M.REDUCING), ("HALTED", M.HALTED)])
def test_evaluate_when_daily_loss_breached_then_state_moves_as_configured(action: str, level: int) -> None:
    h = Harness(max_daily_loss="50", on_loss_breach=action)
    h.fill(M.BUY, "1", "1000")
    h.mark("951")
    assert h.eng.ts.state == M.ACTIVE
    h.mark("950")
    assert h.eng.ts.state == level and h.eng.ts.reason == S.REASON_DAILY_LOSS
    assert A.DAILY_LOSS_BREACHED in h.codes() and A.STATE_CHANGED in h.codes()
    assert len(h.cancels) == (1 if level == M.HALTED else 0)
    h.mark("940")  # still breached: no second alert
    assert h.codes().count(A.DAILY_LOSS_BREACHED) == 1


@pytest.mark.parametrize("action,level", [("REDUCING", M.REDUCING), ("HALTED", M.HALTED)])
def test_evaluate_when_drawdown_breached_then_state_moves_as_configured(action: str, level: int) -> None:
    h = Harness(max_drawdown="100", on_drawdown_breach=action, capital="10000")
    h.fill(M.BUY, "1", "1000")
    h.mark("1200")  # peak equity 10200
    h.mark("1101")
    assert h.eng.ts.state == M.ACTIVE
    h.mark("1100")
    assert h.eng.ts.state == level and h.eng.ts.reason == S.REASON_DRAWDOWN
    assert A.DRAWDOWN_BREACHED in h.codes()


def test_evaluate_when_fees_alone_lose_the_limit_then_breach_counts_fees() -> None:
    h = Harness(max_daily_loss="1")
    h.fill(M.BUY, "0.001", "1000", fee_e8=100_000_000)
    h.eng.evaluate(DAY)
    assert h.eng.ts.state == M.HALTED


def test_evaluate_when_utc_day_rolls_then_daily_loss_hold_released_and_base_reset() -> None:
    h = Harness(max_daily_loss="50", on_loss_breach="REDUCING")
    h.fill(M.BUY, "1", "1000")
    h.mark("900")
    assert h.eng.ts.state == M.REDUCING
    h.eng.evaluate(DAY + 86400)
    assert h.eng.ts.state == M.ACTIVE and h.eng.daily_pnl() == 0
    assert A.DAY_ROLLED in h.codes()


def test_on_fill_when_position_passes_max_position_then_one_warning() -> None:
    h = Harness(default=SymbolLimits(max_position="1"))
    h.fill(M.BUY, "1", "100")
    assert A.POSITION_OVER_LIMIT not in h.codes()
    h.fill(M.BUY, "0.5", "100")
    h.fill(M.BUY, "0.5", "100")
    assert h.codes().count(A.POSITION_OVER_LIMIT) == 1


def test_on_fill_when_symbol_id_unknown_then_refused_and_alerted() -> None:
    h = Harness()
    assert not h.eng.on_fill(1, 9, M.BUY, 1, 1, 0)
    assert h.codes() == [A.UNKNOWN_SYMBOL] and h.eng.unknown_symbol == 1


# -- kill switch and operator commands -------------------------------------------------------
def test_kill_switch_when_on_from_anyone_then_halted_and_cancel_all() -> None:
    h = Harness()
    h.eng.on_command(C.SetKillSwitch(on=True))
    assert h.eng.ts.state == M.HALTED and h.eng.ts.reason == S.REASON_KILL_SWITCH
    assert len(h.cancels) == 1 and A.KILL_SWITCH_ON in h.codes() and A.CANCEL_ALL_SENT in h.codes()
    h.eng.on_command(C.SetKillSwitch(on=True))  # again: still halted, cancels again
    assert len(h.cancels) == 2


def test_kill_switch_when_already_halted_by_drawdown_then_still_cancels_all() -> None:
    h = Harness(max_drawdown="10", on_drawdown_breach="HALTED")
    h.fill(M.BUY, "1", "100")
    h.mark("80")
    assert h.eng.ts.state == M.HALTED and len(h.cancels) == 1
    h.eng.on_command(C.SetKillSwitch(on=True))
    assert h.eng.ts.reason == S.REASON_KILL_SWITCH and len(h.cancels) == 2


def test_kill_switch_when_off_without_operator_then_refused_with_reason() -> None:
    h = Harness()
    h.eng.on_command(C.SetKillSwitch(on=True))
    h.eng.on_command(C.SetKillSwitch(on=False, operator="  "))
    assert h.eng.ts.state == M.HALTED
    refused = [a for a in h.alerts if a[1] == A.COMMAND_REFUSED]
    assert refused and "operator" in refused[0][4]
    h.eng.on_command(C.SetTradingState(state="ACTIVE"))
    assert h.eng.ts.state == M.HALTED and h.eng.refused == 2


def test_kill_switch_when_off_with_operator_then_active() -> None:
    h = Harness()
    h.eng.on_command(C.SetKillSwitch(on=True))
    h.eng.on_command(C.SetKillSwitch(on=False, operator="alice"))
    assert h.eng.ts.state == M.ACTIVE and A.KILL_SWITCH_OFF in h.codes()


def test_kill_switch_when_off_but_drawdown_holds_then_state_stays_and_says_why() -> None:
    h = Harness(max_drawdown="10", on_drawdown_breach="HALTED")
    h.fill(M.BUY, "1", "100")
    h.mark("80")
    h.eng.on_command(C.SetKillSwitch(on=True))
    h.eng.on_command(C.SetKillSwitch(on=False, operator="alice"))
    assert h.eng.ts.state == M.HALTED and h.eng.ts.reason == S.REASON_DRAWDOWN
    assert "drawdown" in [a for a in h.alerts if a[1] == A.KILL_SWITCH_OFF][0][4]
    h.eng.on_command(C.SetTradingState(state="ACTIVE", operator="alice"))  # acknowledges the drawdown
    assert h.eng.ts.state == M.ACTIVE and h.eng.ledger.drawdown() == 0
    h.mark("80")
    assert h.eng.ts.state == M.ACTIVE


def test_set_trading_state_when_tightening_then_anyone_may() -> None:
    h = Harness()
    h.eng.on_command(C.SetTradingState(state="REDUCING"))
    assert h.eng.ts.state == M.REDUCING and h.eng.ts.reason == S.REASON_OPERATOR
    h.eng.on_command(C.SetTradingState(state="HALTED"))
    assert h.eng.ts.state == M.HALTED and h.eng.ts.reason == S.REASON_KILL_SWITCH and h.cancels
    h.eng.on_command(C.SetTradingState(state="REDUCING", operator="bob"))
    assert h.eng.ts.state == M.REDUCING
    h.eng.on_command(C.SetTradingState(state="bogus"))
    assert h.eng.ts.state == M.REDUCING and h.codes()[-1] == A.COMMAND_REFUSED


def test_set_trading_state_when_active_while_daily_loss_breached_then_refused_until_reload() -> None:
    h = Harness(max_daily_loss="50", on_loss_breach="REDUCING")
    h.fill(M.BUY, "1", "1000")
    h.mark("900")
    h.eng.on_command(C.SetTradingState(state="ACTIVE", operator="alice"))
    assert h.eng.ts.state == M.REDUCING and "max_daily_loss" in h.alerts[-1][4]
    assert h.eng.reload(RiskConfig(max_daily_loss="500", on_loss_breach="REDUCING"))
    h.eng.on_command(C.SetTradingState(state="ACTIVE", operator="alice"))
    assert h.eng.ts.state == M.ACTIVE


def test_cancel_all_when_execution_not_running_then_critical_alert() -> None:
    h = Harness()
    h.deliver = False
    h.eng.on_command(C.SetKillSwitch(on=True))
    assert A.CANCEL_ALL_FAILED in h.codes()


def test_initial_state_when_configured_halted_then_starts_halted() -> None:
    assert Harness(initial_state="HALTED").eng.ts.state == M.HALTED
    assert Harness(initial_state="REDUCING").eng.ts.state == M.REDUCING


# -- reconciliation verdicts ------------------------------------------------------------------
def test_on_reconcile_when_mismatch_confirmed_then_alert_and_reducing() -> None:
    h = Harness(mismatch_confirmations=2)
    res = ReconcileResult(ok=True, positions={"BTCUSDT": "0.010"})
    assert h.eng.on_reconcile(res) == 0 and h.eng.ts.state == M.ACTIVE  # first sighting: maybe in flight
    assert h.eng.on_reconcile(res) == 1
    assert h.eng.ts.state == M.REDUCING and h.eng.ts.reason == S.REASON_RECONCILE
    mm = [a for a in h.alerts if a[1] == A.RECONCILE_MISMATCH]
    assert len(mm) == 1 and mm[0][2] == 0 and mm[0][3] == pytest.approx(0.01)
    h.eng.on_reconcile(res)
    assert h.eng.mismatches == 1  # same difference: not re-alerted


def test_on_reconcile_when_fills_came_since_the_answer_then_matched_and_a_lost_one_still_confirms() -> None:
    """A busy market maker fills many times a second: the venue's answer and our ledger by the time
    it is judged differ by the fills made since it answered (the 30-minute soak: two checks in a
    row differed, and risk held REDUCING for the rest of the run). Ours without those fills, or
    without a later part of those made while we asked, is what the answer saw; a lost fill is not
    explained by any of them and confirms."""
    h = Harness(mismatch_confirmations=2)
    lots, px = BTC.qty_to_lots("0.002"), BTC.price_to_ticks("60000")
    t = 1_700_000_000_000
    h.eng.on_fill(1, 0, M.BUY, lots, px, 0, t * 1_000_000)  # long 0.002
    for k in range(1, 6):
        asked = t + k * 5000
        # a buy while we asked (the answer may or may not hold it) and a sell after the answer
        h.eng.on_fill(1, 0, M.BUY, lots, px, 0, (asked + 10) * 1_000_000)
        h.eng.on_fill(1, 0, M.SELL, lots, px, 0, (asked + 900) * 1_000_000)
        res = ReconcileResult(ok=True, positions={"BTCUSDT": "0.004"}, asked_ms=asked, answered_ms=asked + 20)
        assert h.eng.on_reconcile(res) == 0, k
    assert h.eng.ts.state == M.ACTIVE and h.eng.in_flight_matches == 5 and not h.eng.mismatch_count
    # the venue has a buy we never got: no part of the fills around the request explains 0.006
    lost = ReconcileResult(ok=True, positions={"BTCUSDT": "0.006"}, asked_ms=t + 40_000, answered_ms=t + 40_020)
    assert h.eng.on_reconcile(lost) == 0 and h.eng.on_reconcile(lost) == 1 and h.eng.ts.state == M.REDUCING
    # a fill long before the request that the answer lacks is not in flight either
    h2 = Harness(mismatch_confirmations=1)
    h2.eng.on_fill(1, 0, M.BUY, lots, px, 0, t * 1_000_000)
    old = ReconcileResult(ok=True, positions={"BTCUSDT": "0"}, asked_ms=t + 5000, answered_ms=t + 5020)
    assert h2.eng.on_reconcile(old) == 1
    # an answer of unknown time: every mismatch counts, as before
    h3 = Harness(mismatch_confirmations=2)
    plain = ReconcileResult(ok=True, positions={"BTCUSDT": "0.004"})
    assert h3.eng.on_reconcile(plain) == 0 and h3.eng.on_reconcile(plain) == 1


def test_positions_at_when_fills_around_the_request_then_only_earlier_parts_in_the_venue_order() -> None:
    h = Harness(reconcile_clock_tolerance_ms=100)
    lots, px = BTC.qty_to_lots("0.001"), BTC.price_to_ticks("60000")
    t = 1_700_000_000_000
    for dt, side in ((-5000, M.BUY), (30, M.SELL), (-50, M.BUY), (5000, M.BUY)):  # arrival order differs
        h.eng.on_fill(1, 0, side, lots, px, 0, (t + dt) * 1_000_000)
    res = ReconcileResult(ok=True, asked_ms=t, answered_ms=t + 10)
    # now +2 (lots of 0.001); without the later buy +1; then without the sell at +30: +2; then
    # without the buy at -50 (within the tolerance): +1. The buy 5 s before is in every answer.
    assert h.eng.positions_at(0, res) == {2, 1}
    assert h.eng.positions_at(0, ReconcileResult(ok=True)) == set()


def test_on_reconcile_when_positions_agree_then_nothing() -> None:
    h = Harness(mismatch_confirmations=1)
    h.fill(M.SELL, "0.01", "100")
    for _ in range(3):
        assert h.eng.on_reconcile(ReconcileResult(ok=True, positions={"BTCUSDT": "-0.01", "ETHUSDT": "0"})) == 0
    assert h.eng.ts.state == M.ACTIVE and A.RECONCILE_MISMATCH not in h.codes()


def test_on_reconcile_when_exchange_has_unconfigured_symbol_then_mismatch() -> None:
    h = Harness(mismatch_confirmations=1)
    h.eng.on_reconcile(ReconcileResult(ok=True, positions={"SOLUSDT": "3"}))
    assert h.eng.ts.state == M.REDUCING


def test_on_reconcile_when_request_fails_then_one_warning_per_streak() -> None:
    h = Harness()
    for _ in range(3):
        h.eng.on_reconcile(ReconcileResult(ok=False, error="refused"))
    assert h.codes() == [A.RECONCILE_FAILED] and h.eng.recon_failures == 3 and h.eng.ts.state == M.ACTIVE
    h.eng.on_reconcile(ReconcileResult(ok=True))
    assert h.codes()[-1] == A.RECONCILE_MATCHED


def test_on_reconcile_when_operator_clears_then_active_and_rearmed() -> None:
    h = Harness(mismatch_confirmations=1)
    h.eng.on_reconcile(ReconcileResult(ok=True, positions={"BTCUSDT": "1"}))
    h.eng.on_command(C.SetTradingState(state="ACTIVE", operator="ops"))
    assert h.eng.ts.state == M.ACTIVE and A.BREACH_CLEARED in h.codes()
    h.eng.on_reconcile(ReconcileResult(ok=True, positions={"BTCUSDT": "1"}))
    assert h.eng.ts.state == M.REDUCING


# -- risk.state contents ----------------------------------------------------------------------
def test_write_state_when_limits_and_fills_then_record_carries_them() -> None:
    h = Harness(max_open_orders=40, max_orders_per_s=25, capital="1000",
                default=SymbolLimits(max_order_qty="0.5", max_order_notional="20000", max_position="2",
                                     max_open_orders=7, price_band_bps=150),
                symbols={"ETHUSDT": SymbolOverrides(max_position="10")})
    h.fill(M.BUY, "0.25", "100")
    h.mark("104")
    rec = np.zeros(1, M.RiskState)
    h.eng.write_state(rec, 123)
    r = rec[0]
    assert r["trading_state"] == M.ACTIVE and r["updated_ns"] == 123 and r["halt_reason"] == 0
    assert r["max_open_orders"] == 40 and r["max_orders_per_s"] == 25
    # ETHUSDT's own table replaces max_position only; the rest comes from [risk.default]
    assert list(r["max_order_qty"][:2]) == [500, 500]
    assert list(r["max_order_notional_e8"][:2]) == [20000 * 10**8] * 2
    assert list(r["max_position"][:2]) == [2000, 10000]
    assert list(r["sym_max_open_orders"][:2]) == [7, 7] and list(r["price_band_bps"][:2]) == [150, 150]
    assert list(r["position"][:2]) == [250, 0] and list(r["mark"][:2]) == [10400, 0]
    assert r["equity_e8"] == 1001 * 10**8 and r["drawdown_e8"] == 0
    assert not h.eng.dirty
    v1 = int(r["version"])
    h.eng.on_command(C.SetKillSwitch(on=True))
    h.eng.write_state(rec, 124)
    assert rec[0]["trading_state"] == M.HALTED and rec[0]["halt_reason"] == S.REASON_KILL_SWITCH
    assert rec[0]["version"] > v1


def test_config_when_limit_finer_than_lot_then_refused_naming_symbol() -> None:
    with pytest.raises(ValueError, match="BTCUSDT"):
        Harness(default=SymbolLimits(max_order_qty="0.0001"))
    with pytest.raises(ValueError, match="SOLUSDT"):
        Harness(symbols={"SOLUSDT": SymbolOverrides()})


def test_config_when_toml_has_unknown_field_then_error_names_it(tmp_path: Path) -> None:
    p = tmp_path / "b.toml"
    p.write_text('[risk]\nmax_daily_los = "5"\n')
    with pytest.raises(ConfigError, match="max_daily_los"):
        load_section(p, "risk", RiskConfig)
    p.write_text('[risk]\nmax_drawdown = "-5"\n')
    with pytest.raises(ConfigError, match="max_drawdown"):
        load_section(p, "risk", RiskConfig)
    p.write_text('[risk.symbols.BTCUSDT]\nmax_open_orders = -1\n')
    with pytest.raises(ConfigError, match="max_open_orders"):
        load_section(p, "risk", RiskConfig)
    p.write_text('[risk]\non_loss_breach = "HALTED"\n[risk.default]\nmax_order_qty = "0.1"\n'
                 '[risk.symbols.BTCUSDT]\nmax_position = "1"\n')
    cfg = load_section(p, "risk", RiskConfig)
    btc, eth = cfg.limits_for("BTCUSDT"), cfg.limits_for("ETHUSDT")
    assert (btc.max_position, btc.max_order_qty) == ("1", "0.1") and (eth.max_position, eth.max_order_qty) == ("0", "0.1")


def test_seed_when_exchange_holds_more_than_ledger_then_difference_booked_as_seed() -> None:
    h = Harness(mismatch_confirmations=1)
    h.fill(M.BUY, "0.004", "100")  # the exec backlog, already drained
    n = h.eng.seed(ReconcileResult(ok=True, positions={"BTCUSDT": "0.010", "ETHUSDT": "-1"},
                                   entries={"BTCUSDT": "99.995", "ETHUSDT": "2000.5"}))
    assert n == 2 and h.codes().count(A.POSITION_SEEDED) == 2
    led = h.eng.ledger
    assert led.position(0).pos == 10 and led.position(0, SEED).pos == 6
    assert led.avg_entry(0, SEED) == Decimal("100.00")  # entry rounded half-even to the tick
    assert led.position(1).pos == -1000 and led.avg_entry(1, SEED) == Decimal("2000.5")
    assert h.eng.on_reconcile(ReconcileResult(ok=True, positions={"BTCUSDT": "0.01", "ETHUSDT": "-1"})) == 0
    assert h.eng.ts.state == M.ACTIVE


def test_seed_when_fills_came_around_the_answer_then_each_counted_once() -> None:
    """A 20-fault chaos run: risk seeded a fill the answer held that was still on its way, then
    counted it again from the ring (risk 0.006, venue 0.004). The agent drains the ring once more
    after the settle time; the fills the venue made after it answered are not the seed's."""
    h = Harness(mismatch_confirmations=1)
    lots, px = BTC.qty_to_lots("0.002"), BTC.price_to_ticks("60000")
    t = 1_700_000_000_000
    h.eng.on_fill(1, 0, M.BUY, lots, px, 0, (t - 5000) * 1_000_000)  # the backlog
    h.eng.on_fill(1, 0, M.BUY, lots, px, 0, (t - 2) * 1_000_000)  # in the answer, came after it
    h.eng.on_fill(1, 0, M.SELL, lots, px, 0, (t + 400) * 1_000_000)  # made after the answer
    res = ReconcileResult(ok=True, positions={"BTCUSDT": "0.010"}, asked_ms=t - 10, answered_ms=t)
    assert h.eng.position_when_answered(0, res) == 2 * lots
    assert h.eng.seed(res) == 1 and h.eng.ledger.position(0, SEED).pos == 3 * lots  # 0.010 - 0.004
    assert h.eng.ledger.position(0).pos == 3 * lots + lots  # the seed and ours, the sell included


def test_seed_when_exchange_unreachable_then_warns_and_books_nothing() -> None:
    h = Harness()
    assert h.eng.seed(ReconcileResult(ok=False, error="connection refused")) == 0
    assert h.codes() == [A.RECONCILE_FAILED] and not h.eng.ledger.by_strategy


# -- holds across restarts -------------------------------------------------------------------------
def engine_at(path: Path, day: float = DAY, alerts: list | None = None, **cfg: object) -> RiskEngine:
    sink = alerts if alerts is not None else []
    return RiskEngine(RiskConfig(**cfg), [BTC, ETH], lambda *a: sink.append(a), lambda why: True, now_wall=day,
                      holds_path=path)


def test_restart_when_kill_switch_on_then_it_stays_on_until_an_operator_clears_it(tmp_path: Path) -> None:
    path = tmp_path / "risk" / "holds.json"
    eng = engine_at(path)
    eng.on_command(C.SetKillSwitch(on=True, operator="ops"))
    assert eng.ts.state == M.HALTED
    alerts: list = []
    eng = engine_at(path, alerts=alerts)  # a crash, and supervisord starts risk again
    assert (eng.ts.state, eng.ts.reason) == (M.HALTED, S.REASON_KILL_SWITCH)
    assert [a[1] for a in alerts] == [A.HOLDS_RESTORED] and alerts[0][0] == M.ALERT_CRITICAL
    eng.on_command(C.SetKillSwitch(on=False, operator=""))  # no operator named: refused
    assert eng.ts.state == M.HALTED
    eng.on_command(C.SetKillSwitch(on=False, operator="ops"))
    assert eng.ts.state == M.ACTIVE
    assert engine_at(path).ts.state == M.ACTIVE  # cleared: the next start is ACTIVE
    assert (path.stat().st_mode & 0o777) == 0o600


def test_restart_when_operator_and_loss_holds_then_kept_and_the_loss_only_on_the_same_day(tmp_path: Path) -> None:
    path = tmp_path / "holds.json"
    eng = engine_at(path, max_daily_loss="50", on_loss_breach="REDUCING")
    eng.on_fill(1, 0, M.BUY, BTC.qty_to_lots("1"), BTC.price_to_ticks("1000"), 0)
    eng.on_mark(0, BTC.price_to_ticks("900"))
    eng.evaluate(DAY)
    eng.on_command(C.SetTradingState(state="REDUCING", operator="ops"))
    assert set(eng.ts.holds) == {S.REASON_DAILY_LOSS, S.REASON_OPERATOR}
    same = engine_at(path, max_daily_loss="50")
    assert set(same.ts.holds) == {S.REASON_DAILY_LOSS, S.REASON_OPERATOR} and same.ts.state == M.REDUCING
    next_day = engine_at(path, day=DAY + 86400, max_daily_loss="50")
    assert set(next_day.ts.holds) == {S.REASON_OPERATOR}  # a new UTC day measures the loss afresh


def test_restart_when_reconcile_mismatch_held_then_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "holds.json"
    eng = engine_at(path)
    eng._change(lambda: eng.ts.hold(S.REASON_RECONCILE, M.REDUCING), "test")
    assert eng.ts.state == M.REDUCING
    assert engine_at(path).ts.state == M.ACTIVE  # found again by the next reconciliation if still true


@pytest.mark.parametrize("body", ["{not json", '{"holds": {"kill_switch": "SIDEWAYS"}}', '["holds"]'])
def test_restart_when_holds_file_unreadable_then_starts_halted(tmp_path: Path, body: str) -> None:
    path = tmp_path / "holds.json"
    path.write_text(body)
    alerts: list = []
    eng = engine_at(path, alerts=alerts)
    assert (eng.ts.state, eng.ts.reason) == (M.HALTED, S.REASON_KILL_SWITCH)  # fail closed
    assert alerts[0][1] == A.HOLDS_RESTORED and "unreadable" in alerts[0][4]


def test_holds_when_file_cannot_be_written_then_one_alert(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the directory should be")
    alerts: list = []
    eng = engine_at(tmp_path / "blocker" / "holds.json", alerts=alerts)
    eng.on_command(C.SetTradingState(state="REDUCING", operator="ops"))
    eng.on_command(C.SetKillSwitch(on=True, operator="ops"))  # a second change, a second failed save
    assert [a[1] for a in alerts].count(A.HOLDS_SAVE_FAILED) == 1
    assert eng.ts.state == M.HALTED  # the hold itself still applies
