"""Margin-aware risk through the real processes on exchange_sim (issue 21 §3): the monitor's
GET /api/account against an independent computation from the simulator's own account endpoints,
the exchange's mark price in risk.state, and each crisis-mode trigger caused by a simulator fault
(price_jump, wide_spread, stall), with its operator-only exit."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal as D

import pytest

from procs.core import control as C
from procs.core import messages as M
from procs.risk import crisis as X
from procs.risk import state as S
from procs.tools.stack import PIPELINE
from tests.support.system import NO_STRATEGIES, ExecEvents, ManualOrders, instruments, wait_mark

pytestmark = pytest.mark.proc

BTC, ETH = 0, 1
# no order or position limits in the way, and a book deep enough for a few BTC at market
OPEN = {"sim": {"generator": {"mean_lots": 500}},
        "risk": {"max_orders_per_s": 0, "max_daily_loss": "0", "max_drawdown": "0", "capital": "100000",
                 "default": {"max_order_notional": "0", "max_order_qty": "0", "max_position": "0", "price_band_bps": 0},
                 "symbols": {"BTCUSDT": {"max_order_qty": "0", "max_position": "0"}}}}


def _sim_post(stack, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(f"{stack.rest_url}{path}", data=data, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _fill(stack, events, orders, sid: int, side: int, qty: int) -> None:
    assert events.outcome(stack, orders.submit(sid, side, qty, order_type=M.MARKET), final=True) == "filled"


# -- the independent computation ------------------------------------------------------------
def _bracket(brackets: list[dict], notional: D) -> dict:
    for b in brackets:
        if notional <= D(str(b["notionalCap"])):
            return b
    return brackets[-1]


def _liquidation(wb: D, other_mm: D, other_upnl: D, amt: D, entry: D, brackets: list[dict]) -> D:
    """Binance's cross-margin one-way formula, iterated to the bracket at the result."""
    side, qty = (1 if amt > 0 else -1), abs(amt)
    b = _bracket(brackets, qty * entry)
    lp = D(0)
    for _ in range(len(brackets)):
        rate, cum = D(str(b["maintMarginRatio"])), D(str(b["cum"]))
        lp = (wb - other_mm + other_upnl + cum - side * qty * entry) / (qty * rate - side * qty)
        nb = _bracket(brackets, qty * lp)
        if nb is b:
            break
        b = nb
    return lp if lp > 0 else D(0)


def test_account_when_positions_open_then_api_account_equals_the_simulators_own_figures(make_stack):
    over = {**NO_STRATEGIES, "sim": OPEN["sim"], "risk": {**OPEN["risk"], "reconcile_interval_s": 1.0}}
    stack = make_stack(overrides=over, procs=(*PIPELINE, "monitor"))
    btc, eth = instruments(stack)
    wait_mark(stack, BTC)
    wait_mark(stack, ETH)
    rest = stack.account().rest  # signed REST on the simulator's account (the venue adapter's client)
    stack.wait_for(lambda: all(stack.risk_state()["mark_source"][:2] == M.MARK_VENUE), "risk on the exchange's marks",
                   timeout=60)
    events, orders = ExecEvents(stack.instance), ManualOrders(stack.instance)
    try:
        # 3 BTC (~180000, the second bracket) on a 100000 wallet: a long with a liquidation price
        _fill(stack, events, orders, BTC, M.BUY, btc.qty_to_lots("3"))
        _fill(stack, events, orders, ETH, M.SELL, eth.qty_to_lots("5"))
        _sim_post(stack, "/sim/pause")  # the market stands still; the mark converges on the mid
        brackets = rest.call("GET", "/fapi/v1/leverageBracket")
        tables = {row["symbol"]: row["brackets"] for row in brackets}
        api = f"http://127.0.0.1:{stack.monitor_port}/api/account"

        def same_moment() -> tuple[dict, dict, list] | None:
            # one mark on both sides, and a reconciliation after the last fill (the wallet's fees)
            a = _get(api)
            sim = rest.call("GET", "/fapi/v2/account")
            rows = rest.call("GET", "/fapi/v2/positionRisk")
            marks = {r["symbol"]: D(r["markPrice"]) for r in rows if D(r["positionAmt"])}
            ours = {s: D(p["mark_price"]) for s, p in a["positions"].items()
                    if D(p["position"]) and p["mark_source"] == "mark_price"}
            again = _get(api)
            if marks != ours or D(a["wallet_balance"]) != D(sim["totalWalletBalance"]) or \
                    {**again, "updated_age_s": 0} != {**a, "updated_age_s": 0}:
                return None
            return a, sim, rows

        a, sim, rows = stack.wait_for(same_moment, "risk and the simulator on the same mark",
                                      timeout=90, every=1.0)
        assert a["wallet_source"] == "venue" and a["margin_brackets"] == "venue"
        assert D(a["margin_balance"]) == D(sim["totalMarginBalance"])
        assert D(a["unrealized_pnl"]) == D(sim["totalUnrealizedProfit"])
        assert D(a["maint_margin"]) == D(sim["totalMaintMargin"]) > 0
        assert abs(D(str(a["margin_ratio"])) - D(sim["totalMaintMargin"]) / D(sim["totalMarginBalance"])) < D("1e-6")
        assert D(a["available_balance"]) == D(sim["availableBalance"])
        open_rows = [r for r in rows if D(r["positionAmt"])]
        assert {r["symbol"] for r in open_rows} == {"BTCUSDT", "ETHUSDT"}
        wb = D(sim["totalWalletBalance"])
        for r in open_rows:
            mine = a["positions"][r["symbol"]]
            others = [o for o in open_rows if o is not r]
            lp = _liquidation(wb, sum((D(o["maintMargin"]) for o in others), D(0)),
                              sum((D(o["unRealizedProfit"]) for o in others), D(0)),
                              D(r["positionAmt"]), D(r["entryPrice"]), tables[r["symbol"]])
            ins = btc if r["symbol"] == "BTCUSDT" else eth
            assert lp > 0 and abs(D(mine["liquidation_price"]) - lp) <= D(1).scaleb(-ins.price_scale), (mine, lp)
            mark = D(r["markPrice"])
            assert abs(D(str(mine["distance_pct"])) - abs(mark - lp) / mark * 100) < D("0.001")
            assert abs(D(str(mine["leverage"])) - abs(D(r["notional"])) / D(sim["totalMarginBalance"])) < D("1e-6")
            assert D(mine["position"]) == D(r["positionAmt"]) and mine["mark_source"] == "mark_price"
        assert abs(D(str(a["leverage"])) - sum(abs(D(r["notional"])) for r in open_rows)
                   / D(sim["totalMarginBalance"])) < D("1e-6")
    finally:
        _sim_post(stack, "/sim/resume")
        orders.close()
        events.close()


CRISIS = {
    "volatility": ({"crisis_max_volatility_bps": 25, "crisis_volatility_window_s": 20},
                   {"fault": "price_jump", "symbol": "BTCUSDT", "bps": -150}, X.VOLATILITY),
    "spread": ({"crisis_max_spread_bps": 20, "crisis_spread_for_s": 1.0},
               {"fault": "wide_spread", "symbol": "ETHUSDT", "bps": 60, "seconds": 6}, X.SPREAD),
    "feed_stale": ({"crisis_max_feed_age_s": 1.5},
                   {"fault": "stall", "symbol": "BTCUSDT", "seconds": 4}, X.FEED),
    "drawdown_velocity": ({"crisis_max_drawdown_velocity": "100", "crisis_drawdown_window_s": 30},
                          {"fault": "price_jump", "symbol": "BTCUSDT", "bps": -100}, X.DRAWDOWN_VELOCITY),
}


@pytest.mark.parametrize("trigger", list(CRISIS))
def test_crisis_when_the_simulator_causes_it_then_reducing_with_an_alert_until_an_operator_clears_it(
        make_stack, trigger):
    settings, fault, bit = CRISIS[trigger]
    over = {**NO_STRATEGIES, "sim": OPEN["sim"], "risk": {**OPEN["risk"], **settings}}
    stack = make_stack(overrides=over)
    btc = instruments(stack)[0]
    wait_mark(stack, BTC)
    wait_mark(stack, ETH)
    events, orders = ExecEvents(stack.instance), ManualOrders(stack.instance)
    try:
        if bit in (X.FEED, X.DRAWDOWN_VELOCITY):  # both need a position in the symbol
            _fill(stack, events, orders, BTC, M.BUY, btc.qty_to_lots("0.5"))
        time.sleep(7)  # a few seconds of a calm market first (volatility needs its samples)
        assert stack.risk_state()["trading_state"] == M.ACTIVE, stack.log_tail("risk")
        assert _sim_post(stack, "/sim/fault", fault).get("fault") == fault["fault"]
        stack.wait_for(lambda: stack.risk_state()["trading_state"] == M.REDUCING, f"crisis ({trigger})", timeout=30)
        rs = stack.risk_state()
        assert rs["halt_reason"] == S.REASON_CRISIS and rs["crisis_entered"] & bit, rs["crisis_entered"]
        alerts = stack.wait_for(lambda: [e for e in stack.log_events("risk", "alert_raised")
                                         if e["code"] == "crisis_entered"], "the crisis alert")
        assert X.NAMES[bit] in alerts[0]["text"]
        time.sleep(1.0)
        # risk never leaves by itself; an operator without a name is refused
        stack.send("risk", C.SetTradingState(state="ACTIVE", operator=""))
        time.sleep(0.5)
        assert stack.risk_state()["trading_state"] == M.REDUCING
        stack.send("risk", C.SetTradingState(state="ACTIVE", operator="test"))
        stack.wait_for(lambda: stack.risk_state()["trading_state"] == M.ACTIVE, "ACTIVE after the operator")
        assert stack.risk_state()["crisis_entered"] == 0
    finally:
        orders.close()
        events.close()
