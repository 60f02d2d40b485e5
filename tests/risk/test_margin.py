"""The margin model: maintenance margin by bracket, margin ratio, available balance, leverage and
the cross-margin liquidation price (procs/risk/margin.py), checked against the exchange's formulas
worked by hand, and the liquidation price against its own definition (margin balance ==
maintenance margin at that price)."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec

from procs.exchange_sim.trading.settings import brackets
from procs.risk import margin as MG
from procs.venue.binance.account import _brackets, margin_tiers

TIERS = [MG.Tier.from_venue(t) for t in
         margin_tiers(_brackets.decode(msgspec.json.encode([{"symbol": "BTCUSDT", "brackets": brackets()}])))["BTCUSDT"]]


def _pos(qty: str, entry: str, mark: str, lev: int = 20) -> MG.PositionInput:
    q, e, m = D(qty), D(entry), D(mark)
    return MG.PositionInput("BTCUSDT", q, e, m, q * (m - e), lev, TIERS)


def test_maint_margin_when_notional_in_a_bracket_then_rate_times_notional_minus_its_amount() -> None:
    assert MG.maint_margin(TIERS, D(40000)) == D(40000) * D("0.004")
    assert MG.maint_margin(TIERS, D(59000)) == D(59000) * D("0.005") - D(50)
    assert MG.maint_margin(TIERS, D(50000)) == D(200)  # the cap belongs to the lower bracket
    assert MG.maint_margin(TIERS, D(0)) == 0


def test_account_when_one_long_then_every_figure_as_the_exchange_computes_it() -> None:
    acct = MG.account(D(10000), [_pos("1", "60000", "59000")], open_order_margin=D(100))
    assert acct.unrealized == D(-1000) and acct.margin_balance == D(9000)
    assert acct.maint_margin == D(245)  # 59000 * 0.005 - 50
    assert acct.margin_ratio == D(245) / D(9000)
    assert acct.available == D(9000) - D(59000) / 20 - D(100)
    (row,) = acct.positions
    assert row.leverage == D(59000) / D(9000) == acct.leverage
    assert row.liquidation_price == (D(10000) + 50 - D(60000)) / (D("0.005") - 1)
    # at the liquidation price the margin balance is exactly the maintenance margin
    lp = row.liquidation_price
    assert abs(D(10000) + (lp - 60000) - (lp * D("0.005") - 50)) < D("1e-20")
    assert row.distance_pct == (D(59000) - lp) / D(59000) * 100


def test_liquidation_when_the_price_crosses_a_bracket_then_recomputed_with_that_bracket() -> None:
    acct = MG.account(D(3000), [_pos("1", "52000", "52000")])
    lp = acct.positions[0].liquidation_price
    assert lp < 50000  # the notional at the liquidation price is in the first bracket
    assert lp == (D(3000) - D(52000)) / (D("0.004") - 1)
    assert abs(D(3000) + (lp - 52000) - lp * D("0.004")) < D("1e-20")


def test_liquidation_when_short_and_other_positions_then_their_margin_and_pnl_count() -> None:
    eth = MG.PositionInput("ETHUSDT", D(-10), D(3000), D(3100), D(-1000), 20, TIERS)
    btc = _pos("-0.5", "60000", "61000")
    acct = MG.account(D(20000), [btc, eth])
    row = acct.positions[0]
    eth_maint = MG.maint_margin(TIERS, D(31000))
    lp = row.liquidation_price
    assert lp > 61000
    mb_at_lp = D(20000) + D(-1000) + D("-0.5") * (lp - 60000)
    assert abs(mb_at_lp - (eth_maint + MG.maint_margin(TIERS, D("0.5") * lp))) < D("1e-18")
    assert acct.maint_margin == eth_maint + MG.maint_margin(TIERS, D(30500))


def test_account_when_no_brackets_or_no_equity_then_unknown_or_exhausted() -> None:
    p = MG.PositionInput("XUSDT", D(1), D(100), D(100), D(0), 20, [])
    acct = MG.account(D(1000), [p])
    assert acct.maint_margin is None and acct.margin_ratio is None and acct.positions[0].liquidation_price == 0
    broke = MG.account(D(100), [_pos("1", "60000", "59000")])  # margin balance -900
    assert broke.margin_ratio == MG.EXHAUSTED and broke.leverage == MG.EXHAUSTED
    flat = MG.account(D(100), [_pos("0", "0", "60000")])
    assert flat.margin_ratio == 0 and flat.positions[0].liquidation_price == 0 and flat.available == D(100)
    # a long the wallet covers at any price: no liquidation price
    assert MG.account(D(100000), [_pos("1", "60000", "60000")]).positions[0].liquidation_price == 0
