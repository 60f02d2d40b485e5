"""Every figure of ``b25 report`` against a small session computed by hand.

Two strategies on two symbols across a UTC midnight (2024-08-08 -> 09), capital 10000 USDT:

* ``mm`` (7) on BTCUSDT (ticks of 0.1, lots of 0.001):
  a1 buys 0.002 @ 60000.0 at 23:58:10, maker, fee 0.012;
  a2 sells 0.002 @ 60010.0 at 23:59:10, taker, fee 0.048 -> realized +0.02; trip 1: 0.02 - 0.06 = -0.04, held 60 s;
  a3 buys 0.001 @ 60020.0 at 00:00:10 (day 2), maker, fee 0.006;
  a4 sells 0.003 @ 60050.0 at 00:01:10, taker, fee 0.06: closes 0.001 (+0.03, a third of the fee:
  0.02) -> trip 2: 0.03 - 0.006 - 0.02 = +0.004, held 60 s; opens a short 0.002 @ 60050 (trip 3, open).
  Final mark 60040.0: unrealized (60040 - 60050) * -0.002 = +0.02.
  mm: realized 0.05, fees 0.126, net 0.05 - 0.126 + 0.02 = -0.056.
* ``taker`` (8) on ETHUSDT (ticks of 0.01): b1 buys 1.000 @ 3000.00 at 23:58:30, taker, fee 1.2; final
  mark 2990.00 -> unrealized -10; net -11.2. b2 denied (max_position), b3 rejected (post_only), b4 canceled.

Equity (net P&L, marked at the last fill price) after each fill: -0.012, -1.212, -1.24, -1.246, -1.276,
then -11.256 at the final marks. Acks after 300, 500, 700, 900 (mm) and 100, 200 (taker) us.
"""

from __future__ import annotations

import math
import statistics
from decimal import Decimal

import pytest

from procs.core import messages as M
from procs.execution.journal import REC_POSITION, JournalRecord
from procs.tools.report.metrics import Session, build_report

T0 = 1723161480 * 10**9  # 2024-08-08T23:58:00Z
S = 10**9
INSTRUMENTS = {"BTCUSDT": {"price_scale": 1, "qty_scale": 3, "contract_size": "1"},
               "ETHUSDT": {"price_scale": 2, "qty_scale": 3, "contract_size": "1"}}
SESSION = Session(["BTCUSDT", "ETHUSDT"], INSTRUMENTS, {7: "mm", 8: "taker"}, Decimal(10000),
                  {"BTCUSDT": Decimal("60040.0"), "ETHUSDT": Decimal("2990.00")}, "recorded book mid", "replay")
WALL = 1_800_000_000 * 10**9  # host clock: years from the recording's


def rec(kind: int, cid: str, st: int, sym: int, side: int = M.BUY, *, t: int = 0, wall_us: int = 0, px: int = 0,
        qty: int = 0, fee_e8: int = 0, reason: int = 0, maker: bool = False) -> JournalRecord:
    return JournalRecord(kind, cid, st, sym, side, M.LIMIT, M.GTC, px, qty, last_px=px if qty else 0,
                         last_qty=qty, fee_e8=fee_e8, reason=reason, ts_event=t, wall_ns=WALL + wall_us * 1000,
                         flags=M.FLAG_MAKER if maker else 0)


def journal() -> list[JournalRecord]:
    A, B = 7, 8
    return [
        rec(M.ORDER_SENT, "a1", A, 0, wall_us=0),
        rec(M.ORDER_ACCEPTED, "a1", A, 0, t=T0 + 1 * S, wall_us=300),
        rec(M.ORDER_FILLED, "a1", A, 0, t=T0 + 10 * S, px=600000, qty=2, fee_e8=1_200_000, maker=True),
        rec(M.ORDER_SENT, "b1", B, 1, wall_us=1000),
        rec(M.ORDER_ACCEPTED, "b1", B, 1, t=T0 + 20 * S, wall_us=1100),
        rec(M.ORDER_FILLED, "b1", B, 1, t=T0 + 30 * S, px=300000, qty=1000, fee_e8=120_000_000),
        rec(M.ORDER_DENIED, "", B, 1, reason=M.DENY_MAX_POSITION),
        rec(M.ORDER_SENT, "b3", B, 1, wall_us=2000),
        rec(M.ORDER_REJECTED, "b3", B, 1, t=T0 + 40 * S, reason=M.REJECT_POST_ONLY),
        rec(M.ORDER_SENT, "b4", B, 1, wall_us=3000),
        rec(M.ORDER_ACCEPTED, "b4", B, 1, t=T0 + 45 * S, wall_us=3200),
        rec(M.ORDER_CANCELED, "b4", B, 1, t=T0 + 50 * S),
        rec(M.ORDER_SENT, "a2", A, 0, M.SELL, wall_us=4000),
        rec(M.ORDER_ACCEPTED, "a2", A, 0, M.SELL, t=T0 + 60 * S, wall_us=4500),
        rec(M.ORDER_FILLED, "a2", A, 0, M.SELL, t=T0 + 70 * S, px=600100, qty=2, fee_e8=4_800_000),
        rec(M.ORDER_SENT, "a3", A, 0, wall_us=5000),
        rec(M.ORDER_ACCEPTED, "a3", A, 0, t=T0 + 125 * S, wall_us=5700),
        rec(M.ORDER_FILLED, "a3", A, 0, t=T0 + 130 * S, px=600200, qty=1, fee_e8=600_000, maker=True),
        rec(M.ORDER_SENT, "a4", A, 0, M.SELL, wall_us=6000),
        rec(M.ORDER_ACCEPTED, "a4", A, 0, M.SELL, t=T0 + 185 * S, wall_us=6900),
        rec(M.ORDER_FILLED, "a4", A, 0, M.SELL, t=T0 + 190 * S, px=600500, qty=3, fee_e8=6_000_000),
        JournalRecord(REC_POSITION),  # journal-only: ignored
    ]


def by_hand_returns() -> list[float]:
    """End-of-minute equity 23:59 -1.212, 00:00 -1.24, 00:01 -1.246, 00:02 -11.256 (final marks)."""
    values = [0.0, -1.212, -1.24, -1.246, -11.256]
    return [(b - a) / (10000 + a) for a, b in zip(values, values[1:], strict=False)]


def test_total_when_two_strategies_across_midnight_then_every_figure_as_computed_by_hand() -> None:
    rep = build_report(journal(), SESSION)
    t = rep["total"]
    assert (t["realized_pnl"], t["fees"], t["unrealized_pnl"], t["net_pnl"]) == (0.05, 1.326, -9.98, -11.256)
    assert t["max_drawdown"] == 11.256 and t["max_drawdown_pct"] == pytest.approx(0.11256, abs=1e-9)
    assert t["minutes"] == 4
    assert t["equity_curve"] == [[(T0 + 60 * S) // 10**6, -1.212], [(T0 + 120 * S) // 10**6, -1.24],
                                 [(T0 + 180 * S) // 10**6, -1.246], [(T0 + 240 * S) // 10**6, -11.256]]
    r = by_hand_returns()
    sharpe = statistics.mean(r) / statistics.stdev(r) * math.sqrt(525600)
    sortino = statistics.mean(r) / math.sqrt(statistics.mean([min(x, 0.0) ** 2 for x in r])) * math.sqrt(525600)
    assert t["sharpe"] == pytest.approx(sharpe, rel=1e-6) and t["sortino"] == pytest.approx(sortino, rel=1e-6)
    assert t["round_trips"] == {"count": 2, "wins": 1, "losses": 1, "win_rate": 0.5, "profit_factor": 0.1,
                                "avg_win": 0.004, "avg_loss": -0.04, "expectancy": -0.018, "net_pnl": -0.036,
                                "avg_holding_s": 60.0, "median_holding_s": 60.0, "open": 2}
    notional = 120 + 120.02 + 60.02 + 180.15 + 3000
    assert t["volume"] == pytest.approx(notional) and t["turnover"] == pytest.approx(notional / 10000)
    assert (t["fills"], t["maker_fills"], t["taker_fills"], t["maker_share"]) == (5, 2, 3, 0.4)
    assert t["maker_share_notional"] == pytest.approx((120 + 60.02) / notional, abs=1e-8)
    assert (t["orders_sent"], t["orders_filled"]) == (7, 5)
    assert t["fill_ratio"] == round(5 / 7, 6) and t["fills_per_order"] == round(5 / 7, 6)
    # acks 100 200 300 500 700 900 us: linear percentiles
    assert t["order_to_ack_us"] == {"count": 6, "p50": 400.0, "p90": 800.0, "p99": 890.0, "p99_9": 899.0,
                                    "max": 900.0, "mean": 450.0}
    assert t["rejections"] == {"post_only": 1} and t["denials"] == {"max_position": 1}
    assert t["cancels"] == 1
    assert rep["marks"] == {"BTCUSDT": 60040.0, "ETHUSDT": 2990.0} and rep["capital"] == 10000.0
    assert rep["from"] == "2024-08-08T23:58:01.000Z"


def test_strategies_and_symbols_when_split_then_their_own_figures_and_they_sum_to_the_total() -> None:
    rep = build_report(journal(), SESSION)
    mm, taker = rep["strategies"]["mm"], rep["strategies"]["taker"]
    assert (mm["realized_pnl"], mm["fees"], mm["unrealized_pnl"], mm["net_pnl"]) == (0.05, 0.126, 0.02, -0.056)
    assert (taker["realized_pnl"], taker["fees"], taker["unrealized_pnl"], taker["net_pnl"]) == (0.0, 1.2, -10.0, -11.2)
    assert mm["max_drawdown"] == 0.076 and mm["max_drawdown_pct"] == pytest.approx(0.00076, abs=1e-9)
    assert mm["round_trips"]["count"] == 2 and mm["round_trips"]["open"] == 1
    assert taker["round_trips"]["count"] == 0 and taker["round_trips"]["open"] == 1
    assert taker["round_trips"]["win_rate"] is None and taker["round_trips"]["profit_factor"] is None
    assert mm["order_to_ack_us"]["p50"] == 600.0 and taker["order_to_ack_us"]["p50"] == 150.0
    assert (mm["orders_sent"], mm["fill_ratio"], taker["orders_sent"], taker["fill_ratio"]) == (4, 1.0, 3, round(1 / 3, 6))
    assert mm["maker_share"] == 0.5 and taker["maker_share"] == 0.0
    assert taker["rejections"] == {"post_only": 1} and mm["rejections"] == {}
    assert rep["symbols"]["BTCUSDT"]["net_pnl"] == -0.056 and rep["symbols"]["ETHUSDT"]["net_pnl"] == -11.2
    for f in ("realized_pnl", "fees", "unrealized_pnl", "net_pnl", "volume"):
        assert sum(g[f] for g in rep["strategies"].values()) == pytest.approx(rep["total"][f])
        assert sum(g[f] for g in rep["symbols"].values()) == pytest.approx(rep["total"][f])


def test_days_when_the_session_crosses_midnight_then_each_day_has_its_own_pnl_and_trips() -> None:
    rep = build_report(journal(), SESSION)
    d1, d2 = rep["days"]["2024-08-08"], rep["days"]["2024-08-09"]
    # day 1 ends marked at the last fill prices (BTC flat, ETH 3000): no unrealized
    assert (d1["realized_pnl"], d1["fees"], d1["unrealized_pnl"], d1["net_pnl"]) == (0.02, 1.26, 0.0, -1.24)
    assert (d2["realized_pnl"], d2["fees"], d2["unrealized_pnl"], d2["net_pnl"]) == (0.03, 0.066, -9.98, -10.016)
    assert d1["net_pnl"] + d2["net_pnl"] == pytest.approx(rep["total"]["net_pnl"])
    assert d1["round_trips"]["count"] == 1 and d1["round_trips"]["losses"] == 1
    assert d2["round_trips"]["count"] == 1 and d2["round_trips"]["wins"] == 1
    assert (d1["fills"], d2["fills"]) == (3, 2) and (d1["minutes"], d2["minutes"]) == (2, 2)
    # a3 was sent (session time: the last exchange time before it, 23:59:10) on day 1
    assert (d1["orders_sent"], d2["orders_sent"]) == (6, 1)
    assert d1["max_drawdown"] == 1.24 and d2["max_drawdown"] == pytest.approx(10.016)


def test_window_when_from_and_to_given_then_only_what_happened_inside_counts() -> None:
    rep = build_report(journal(), SESSION, start_ns=T0 + 65 * S, end_ns=T0 + 135 * S)
    t = rep["total"]
    # a2 (realized +0.02, fee 0.048) and a3 (fee 0.006); no final marks: ETH still at 3000, BTC at 60020
    assert (t["fills"], t["realized_pnl"], t["fees"]) == (2, 0.02, 0.054)
    assert t["net_pnl"] == -0.034 and t["unrealized_pnl"] == 0.0
    assert rep["marks"] == {"BTCUSDT": 60020.0, "ETHUSDT": 3000.0}


def test_no_capital_when_unknown_then_ratios_and_percentages_are_null_not_made_up() -> None:
    s = Session(SESSION.symbols, INSTRUMENTS, SESSION.strategies, Decimal(0), SESSION.marks)
    t = build_report(journal(), s)["total"]
    assert t["sharpe"] is None and t["sortino"] is None and t["max_drawdown_pct"] is None and t["turnover"] is None
    assert t["net_pnl"] == -11.256 and t["max_drawdown"] == 11.256
