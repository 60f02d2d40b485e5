"""Risk's account: the exchange's mark with the mid as fallback, the wallet that follows the
exchange, the margin-ratio and leverage limits (REDUCING, then HALTED) and crisis mode's four
triggers with their operator-only exit (procs/risk/engine.py, procs/risk/crisis.py)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import numpy as np

from procs.core import control as C
from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.exchange_sim.trading.settings import brackets
from procs.risk import alerts as A
from procs.risk import crisis as X
from procs.risk import state as S
from procs.risk.config import RiskConfig, SymbolLimits
from procs.risk.engine import ReconcileResult, RiskEngine
from procs.venue.binance.account import _brackets, margin_tiers

BTC = Instrument(symbol="BTCUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")
ETH = Instrument(symbol="ETHUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")
S_NS = 1_000_000_000
TIERS = margin_tiers(_brackets.decode(msgspec.json.encode([{"symbol": s, "brackets": brackets()}
                                                           for s in ("BTCUSDT", "ETHUSDT")])))


class Harness:
    def __init__(self, **cfg: object) -> None:
        self.alerts: list[tuple[int, int, int, float, str]] = []
        self.eng = RiskEngine(RiskConfig(holds_file="-", **cfg), [BTC, ETH], lambda *a: self.alerts.append(a),
                              lambda why: True, now_wall=86400.0 * 20000)
        self.t = 10 * S_NS
        self.rec = np.zeros(1, M.RiskState)

    def codes(self) -> list[int]:
        return [a[1] for a in self.alerts]

    def account(self, wallet: str = "10000") -> None:
        self.eng.on_reconcile(ReconcileResult(ok=True, wallet_balance=wallet, leverage={"BTCUSDT": 10},
                                              tiers=TIERS, positions={"BTCUSDT": BTC.lots_to_qty(
                                                  self.eng.ledger.total[0].pos)}))

    def book(self, bid: str, ask: str, sid: int = 0) -> None:
        self.eng.on_book(sid, BTC.price_to_ticks(bid), BTC.price_to_ticks(ask), self.t)

    def tick(self, seconds: float = 0.1) -> None:
        self.t += int(seconds * S_NS)
        self.eng.tick(self.t)

    def state(self) -> np.void:
        self.eng.write_state(self.rec, self.t)  # one record, as the agent's (limits are written once into it)
        return self.rec[0].copy()


def test_mark_when_the_exchange_mark_is_fresh_then_used_else_the_mid_and_state_says_which() -> None:
    h = Harness(mark_max_age_s=3.0)
    h.book("59999", "60001")
    assert h.state()["mark"][0] == BTC.price_to_ticks("60000") and h.state()["mark_source"][0] == M.MARK_MID
    h.eng.on_venue_mark(0, BTC.price_to_ticks("60010.5"), h.t)
    h.book("59990", "59992")  # the book moves; the exchange's mark stays the mark
    assert h.state()["mark"][0] == BTC.price_to_ticks("60010.5") and h.state()["mark_source"][0] == M.MARK_VENUE
    h.tick(2.0)
    assert h.state()["mark_source"][0] == M.MARK_VENUE
    h.tick(1.5)  # 3.5 s without an exchange mark: the mid
    st = h.state()
    assert st["mark"][0] == BTC.price_to_ticks("59991") and st["mark_source"][0] == M.MARK_MID
    assert A.MARK_SOURCE_CHANGED in h.codes()
    h.eng.on_venue_mark(0, BTC.price_to_ticks("59995"), h.t)  # it comes back
    assert h.state()["mark_source"][0] == M.MARK_VENUE and h.state()["mark_source"][1] == M.MARK_UNKNOWN


def test_account_when_filled_after_a_reconciliation_then_wallet_follows_and_figures_in_state() -> None:
    h = Harness()
    h.account("10000")
    h.eng.on_fill(1, 0, M.BUY, BTC.qty_to_lots("1"), BTC.price_to_ticks("60000"), 6_000_000_000)  # fee 60
    h.eng.on_venue_mark(0, BTC.price_to_ticks("59000"), h.t)
    h.tick()
    st = h.state()
    assert st["wallet_e8"] == (10000 - 60) * 10**8  # the exchange's wallet minus our fee since
    assert st["unrealized_e8"] == -1000 * 10**8 and st["margin_balance_e8"] == 8940 * 10**8
    assert st["maint_margin_e8"] == 245 * 10**8
    assert st["margin_ratio_e6"] == int(Decimal(245) / Decimal(8940) * 10**6)
    assert st["available_e8"] == (8940 - 5900) * 10**8  # initial margin at the account's 10x
    assert st["leverage_sym_e6"][0] == int(Decimal(59000) / Decimal(8940) * 10**6)
    lp = (Decimal(9940) + 50 - 60000) / (Decimal("0.005") - 1)
    assert st["liquidation_px"][0] == int(lp.scaleb(2).to_integral_value())
    assert st["account_flags"] == M.ACCOUNT_WALLET_FROM_VENUE | M.ACCOUNT_BRACKETS_FROM_VENUE
    h.account("9940")  # the next reconciliation counted the fee: no double count
    h.tick()
    assert h.state()["wallet_e8"] == 9940 * 10**8


def test_account_when_no_exchange_then_wallet_from_capital() -> None:
    h = Harness(capital="5000")
    h.eng.on_fill(1, 0, M.SELL, BTC.qty_to_lots("0.1"), BTC.price_to_ticks("60000"), 0)
    h.book("60099", "60101")
    h.tick()
    st = h.state()
    assert st["wallet_e8"] == 5000 * 10**8 and st["account_flags"] == 0
    assert st["maint_margin_e8"] == -1 and st["margin_ratio_e6"] == -1 and st["liquidation_px"][0] == 0
    assert A.MARGIN_UNKNOWN in h.codes()


def test_leverage_when_over_its_max_then_reducing_then_halted_when_it_lasts() -> None:
    h = Harness(default=SymbolLimits(max_leverage="3"), limit_halt_after_s=10.0)
    h.account("10000")
    h.eng.on_fill(1, 0, M.BUY, BTC.qty_to_lots("0.4"), BTC.price_to_ticks("60000"), 0)
    h.eng.on_venue_mark(0, BTC.price_to_ticks("60000"), h.t)
    h.tick()
    assert h.eng.ts.state == M.ACTIVE  # 24000 / 10000 = 2.4x
    h.eng.on_fill(1, 0, M.BUY, BTC.qty_to_lots("0.2"), BTC.price_to_ticks("60000"), 0)
    h.tick()
    assert h.eng.ts.state == M.REDUCING and h.eng.ts.reason == S.REASON_LEVERAGE  # 3.6x
    assert A.LEVERAGE_BREACHED in h.codes()
    assert h.state()["limit_breach_ns"] > 0 and h.state()["max_leverage_e6"][0] == 3_000_000
    h.tick(5)
    assert h.eng.ts.state == M.REDUCING
    h.tick(5.1)
    assert h.eng.ts.state == M.HALTED and A.LIMIT_ESCALATED in h.codes()
    h.eng.on_command(C.SetTradingState(state="REDUCING", operator="ops"))  # the operator lets it reduce
    h.tick()
    assert h.eng.ts.state == M.REDUCING and h.eng.ts.reason == S.REASON_LEVERAGE  # still over: held again
    h.eng.on_fill(1, 0, M.SELL, BTC.qty_to_lots("0.3"), BTC.price_to_ticks("60000"), 0)
    h.tick()
    assert h.eng.ts.state == M.REDUCING and not h.eng.ts.held(S.REASON_LEVERAGE)  # the operator's hold stays
    assert A.LIMIT_CLEARED in h.codes()


def test_margin_ratio_when_over_its_max_then_reducing_and_released_when_back() -> None:
    h = Harness(max_margin_ratio="0.15")
    h.account("1000")
    h.eng.on_fill(1, 0, M.BUY, BTC.qty_to_lots("0.5"), BTC.price_to_ticks("60000"), 0)

    def at(mark: str) -> int:
        h.eng.on_venue_mark(0, BTC.price_to_ticks(mark), h.t)
        h.tick()
        return int(h.state()["margin_ratio_e6"])

    assert at("60000") == 120_000 and h.eng.ts.state == M.ACTIVE  # 30000 * 0.004 / 1000
    assert at("59600") == int(Decimal("119.2") / 800 * 10**6) and h.eng.ts.state == M.ACTIVE
    assert at("59500") == int(Decimal(119) / 750 * 10**6)  # 0.1587
    assert h.eng.ts.state == M.REDUCING and h.eng.ts.reason == S.REASON_MARGIN
    assert A.MARGIN_RATIO_BREACHED in h.codes() and h.state()["max_margin_ratio_e6"] == 150_000
    at("59800")
    assert h.eng.ts.state == M.ACTIVE and A.LIMIT_CLEARED in h.codes()


# -- crisis mode ----------------------------------------------------------------------------
def _crisis_entered(h: Harness, trigger: int) -> None:
    assert h.eng.ts.state == M.REDUCING and h.eng.ts.reason == S.REASON_CRISIS
    assert h.state()["crisis_entered"] & trigger
    assert any(a[1] == A.CRISIS_ENTERED and X.NAMES[trigger] in a[4] for a in h.alerts)


def _operator_clears(h: Harness) -> None:
    h.eng.on_command(C.SetTradingState(state="ACTIVE", operator=""))  # nameless: refused
    assert h.eng.ts.state == M.REDUCING
    h.eng.on_command(C.SetTradingState(state="ACTIVE", operator="ops"))
    assert h.eng.ts.state == M.ACTIVE and h.state()["crisis_entered"] == 0


def test_crisis_when_volatility_over_threshold_then_reducing_until_an_operator_clears_it() -> None:
    h = Harness(crisis_max_volatility_bps=20, crisis_volatility_window_s=30)
    for i in range(12):  # a quiet market: 1 bp moves
        p = 60000 + (i % 2) * 6
        h.book(str(p - 1), str(p + 1))
        h.tick(1.0)
    assert h.eng.ts.state == M.ACTIVE and 0 < h.state()["volatility_bps_e2"][0] < 200
    h.book("58799", "58801")  # -2 %
    h.tick(1.0)
    h.book("58799", "58801")
    h.tick(1.0)
    _crisis_entered(h, X.VOLATILITY)
    _operator_clears(h)
    for _ in range(5):  # still volatile within the window: not entered again until it has calmed once
        h.book("58799", "58801")
        h.tick(1.0)
    assert h.eng.ts.state == M.ACTIVE


def test_crisis_when_spread_blows_out_for_long_enough_then_reducing() -> None:
    h = Harness(crisis_max_spread_bps=50, crisis_spread_for_s=2.0)
    h.book("59999", "60001")
    h.tick(1)
    h.book("59700", "60300")  # 100 bps
    h.tick(1)
    h.book("59700", "60300")
    h.tick(0.5)
    assert h.eng.ts.state == M.ACTIVE  # not for 2 s yet
    h.book("59999", "60001")  # it closes: the clock restarts
    h.tick(0.1)
    for _ in range(3):
        h.book("59700", "60300")
        h.tick(1)
    _crisis_entered(h, X.SPREAD)
    assert h.state()["spread_bps_e2"][0] == 10000


def test_crisis_when_the_feed_of_a_held_symbol_goes_stale_then_reducing() -> None:
    h = Harness(crisis_max_feed_age_s=3.0)
    h.book("59999", "60001")
    h.book("2999", "3001", sid=1)
    h.tick(5)  # no books for 5 s, but no position: nothing
    assert h.eng.ts.state == M.ACTIVE
    h.eng.on_fill(1, 1, M.BUY, ETH.qty_to_lots("1"), ETH.price_to_ticks("3000"), 0)
    h.book("59999", "60001")  # BTC's feed is live; ETH's (held) is not
    h.tick(0.1)
    _crisis_entered(h, X.FEED)
    assert "ETHUSDT" in [a for a in h.alerts if a[1] == A.CRISIS_ENTERED][0][4]


def test_crisis_when_equity_falls_fast_then_reducing_and_the_hold_outlives_a_restart(tmp_path) -> None:
    h = Harness(crisis_max_drawdown_velocity="100", crisis_drawdown_window_s=10, capital="10000")
    h.eng.on_fill(1, 0, M.BUY, BTC.qty_to_lots("1"), BTC.price_to_ticks("60000"), 0)
    for p in ("60000", "60050", "59990", "59960"):  # -90 from the high: under the threshold
        h.eng.on_venue_mark(0, BTC.price_to_ticks(p), h.t)
        h.tick(1)
    assert h.eng.ts.state == M.ACTIVE
    h.eng.on_venue_mark(0, BTC.price_to_ticks("59940"), h.t)
    h.tick(1)
    _crisis_entered(h, X.DRAWDOWN_VELOCITY)
    assert h.state()["drawdown_velocity_e8"] == 110 * 10**8
    holds = tmp_path / "holds.json"
    kept = RiskEngine(RiskConfig(holds_file=str(holds)), [BTC, ETH], lambda *a: None, lambda why: True,
                      holds_path=holds)
    kept._change(lambda: kept.ts.hold(S.REASON_CRISIS, M.REDUCING), "crisis")
    again = RiskEngine(RiskConfig(holds_file=str(holds)), [BTC, ETH], lambda *a: None, lambda why: True,
                       holds_path=holds)
    assert again.ts.state == M.REDUCING and again.ts.held(S.REASON_CRISIS)


def test_crisis_when_thresholds_reloaded_then_the_new_ones_apply() -> None:
    h = Harness()
    h.book("59700", "60300")
    for _ in range(4):
        h.tick(1)
    assert h.eng.ts.state == M.ACTIVE  # off by default
    assert h.eng.reload(RiskConfig(holds_file="-", crisis_max_spread_bps=50, crisis_spread_for_s=1))
    h.book("59700", "60300")
    h.tick(0.5)
    h.book("59700", "60300")
    h.tick(1)
    _crisis_entered(h, X.SPREAD)
