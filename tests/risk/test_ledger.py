"""Ledger: positions, average entry, realized/unrealized P&L, fees, flips, exactness."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from procs.core.instruments import Instrument
from procs.core.messages import BUY, SELL
from procs.risk.ledger import MANUAL, Ledger, div_round

BTC = Instrument(symbol="BTCUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")
ETH = Instrument(symbol="ETHUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")


def px(text: str) -> int:
    return BTC.price_to_ticks(text)


def qty(text: str) -> int:
    return BTC.qty_to_lots(text)


def money(led: Ledger, v: int) -> Decimal:
    return led.to_decimal(v)


def test_fill_when_buying_then_position_cost_and_avg_entry() -> None:
    led = Ledger([BTC, ETH])
    led.fill(1, 0, BUY, qty("1"), px("100"))
    led.fill(1, 0, BUY, qty("2"), px("101"))
    p = led.position(0, 1)
    assert p.pos == qty("3")
    assert money(led, p.cost) == Decimal("302")
    assert led.avg_entry(0, 1) == Decimal("302") / 3
    assert led.money_scale == 8 and led.factor == [1000, 1000]


def test_fill_when_partial_close_then_realized_rounded_and_total_exact() -> None:
    led = Ledger([BTC])
    led.fill(1, 0, BUY, qty("1"), px("100"))
    led.fill(1, 0, BUY, qty("2"), px("101"))
    led.fill(1, 0, SELL, qty("1"), px("102"))
    p = led.position(0, 1)
    # avg 100.666..., closing 1 realizes 1.333...; the unit rounding stays in the cost basis
    assert money(led, p.realized) == Decimal("1.33333333")
    led.set_mark(0, px("103"))
    # realized + unrealized == cash flows + pos * mark, exactly
    assert money(led, p.realized + led.unrealized(0, 1)) == Decimal(-100 - 202 + 102 + 2 * 103)


def test_fill_when_position_closes_then_cost_is_zero_and_realized_exact() -> None:
    led = Ledger([BTC])
    led.fill(1, 0, BUY, qty("0.003"), px("100.01"))
    led.fill(1, 0, BUY, qty("0.007"), px("100.07"))
    led.fill(1, 0, SELL, qty("0.001"), px("99.99"))
    led.fill(1, 0, SELL, qty("0.009"), px("100.50"))
    p = led.position(0, 1)
    assert p.pos == 0 and p.cost == 0
    cash = (-Decimal("0.003") * Decimal("100.01") - Decimal("0.007") * Decimal("100.07")
            + Decimal("0.001") * Decimal("99.99") + Decimal("0.009") * Decimal("100.50"))
    assert money(led, p.realized) == cash
    assert led.avg_entry(0, 1) == 0


def test_fill_when_short_then_covering_below_entry_realizes_profit() -> None:
    led = Ledger([BTC])
    led.fill(2, 0, SELL, qty("2"), px("100"))
    led.set_mark(0, px("98"))
    assert money(led, led.unrealized(0, 2)) == Decimal("4")
    led.fill(2, 0, BUY, qty("1"), px("99"))
    assert money(led, led.realized(2)) == Decimal("1")
    assert led.position(0, 2).pos == -qty("1")
    assert led.avg_entry(0, 2) == Decimal("100")


def test_fill_when_it_flips_through_zero_then_rest_opens_other_side_at_fill_price() -> None:
    led = Ledger([BTC])
    led.fill(1, 0, BUY, qty("1"), px("100"))
    led.fill(1, 0, SELL, qty("3"), px("110"))
    p = led.position(0, 1)
    assert money(led, p.realized) == Decimal("10")
    assert p.pos == -qty("2")
    assert led.avg_entry(0, 1) == Decimal("110")
    led.fill(1, 0, BUY, qty("2.5"), px("105"))  # and back through zero again
    assert money(led, p.realized) == Decimal("20")
    assert p.pos == qty("0.5") and led.avg_entry(0, 1) == Decimal("105")


def test_fill_when_fees_and_rebates_then_net_pnl_subtracts_them() -> None:
    led = Ledger([BTC])
    led.fill(1, 0, BUY, qty("1"), px("100"), fee_e8=5_000_000)  # 0.05 taker fee
    led.fill(1, 0, SELL, qty("1"), px("101"), fee_e8=-2_000_000)  # 0.02 maker rebate
    assert money(led, led.fees(1)) == Decimal("0.03")
    assert money(led, led.net_pnl(1)) == Decimal("0.97")
    assert money(led, led.net_pnl()) == Decimal("0.97")


def test_fill_when_several_strategies_then_total_nets_and_pnl_sums_exactly() -> None:
    rnd = random.Random(7)
    led = Ledger([BTC, ETH])
    cash = Decimal(0)
    pos = {0: 0, 1: 0}
    for _ in range(500):
        sid = rnd.choice([1, 2, MANUAL])
        sym = rnd.randrange(2)
        side = rnd.choice([BUY, SELL])
        q = rnd.randint(1, 5000)
        p = rnd.randint(9_000_00, 11_000_00)
        fee = rnd.randint(-500, 2000)
        led.fill(sid, sym, side, q, p, fee)
        cash += Decimal(-side * q * p).scaleb(-5) - Decimal(fee).scaleb(-8)
        pos[sym] += side * q
    led.set_mark(0, 10_000_00)
    led.set_mark(1, 10_123_45)
    expect = cash + sum(Decimal(pos[s] * led.marks[s]).scaleb(-5) for s in (0, 1))
    assert money(led, led.net_pnl()) == expect
    assert sum(led.net_pnl(s) for s in (1, 2, MANUAL)) == led.net_pnl()
    assert [led.position(s).pos for s in (0, 1)] == [pos[0], pos[1]]


def test_exposure_when_marked_then_abs_position_times_mark() -> None:
    led = Ledger([BTC, ETH])
    led.fill(1, 0, SELL, qty("0.5"), px("60000"))
    assert led.exposure(0) == 0  # no mark yet
    led.set_mark(0, px("61000"))
    assert money(led, led.exposure(0)) == Decimal("30500")
    assert led.gross_exposure() == led.exposure(0)


def test_drawdown_when_equity_falls_from_peak_then_measured_from_peak() -> None:
    led = Ledger([BTC], capital=Ledger([BTC]).money("1000"))
    led.fill(1, 0, BUY, qty("1"), px("100"))
    led.set_mark(0, px("120"))
    led.update_peaks()
    led.set_mark(0, px("90"))
    led.update_peaks()
    assert money(led, led.peak) == Decimal("1020")
    assert money(led, led.drawdown()) == Decimal("30")
    assert money(led, led.drawdown(1)) == Decimal("30")
    led.reset_peak()
    assert led.drawdown() == 0


def test_money_scale_when_instrument_finer_than_1e8_then_ledger_uses_finer_unit() -> None:
    fine = Instrument(symbol="X", price_scale=7, qty_scale=3)
    led = Ledger([fine])
    assert led.money_scale == 10 and led.factor == [1]
    led.fill(1, 0, BUY, 1, 1)  # 1e-10 quote: exact here, 0 in e8 at the edge
    assert led.position(0, 1).cost == 1 and led.to_e8(led.position(0, 1).cost) == 0
    with pytest.raises(ValueError, match="finer"):
        Ledger([BTC]).money("0.000000001")


@pytest.mark.parametrize("a,b,q", [(5, 2, 3), (-5, 2, -3), (4, 3, 1), (-4, 3, -1), (0, 7, 0)])
def test_div_round_when_half_then_away_from_zero(a: int, b: int, q: int) -> None:
    assert div_round(a, b) == q
