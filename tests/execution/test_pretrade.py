"""The pre-trade check as a pure function: each limit denies with its own reason."""

from __future__ import annotations

import numpy as np
import pytest

from procs.core import messages as M
from procs.execution.pretrade import OpenCounts, RiskLimits, check_submit, notional_e8

SCALES = (2, 3)  # BTCUSDT: price 0.01, qty 0.001
PX = 6_000_000  # 60000.00


def chk(lim: RiskLimits | None = None, open_: OpenCounts | None = None, rate: int = 0, **kw: int) -> int:
    a = {"symbol_id": 0, "side": M.BUY, "order_type": M.LIMIT, "price": PX, "qty": 10, "reduce_only": 0}
    a.update(kw)
    return check_submit(a["symbol_id"], a["side"], a["order_type"], a["price"], a["qty"], a["reduce_only"],
                        lim or RiskLimits.permissive(), open_ or OpenCounts(), rate, SCALES)


def lim_with(**kw: object) -> RiskLimits:
    lim = RiskLimits.permissive()
    for k, v in kw.items():
        if isinstance(v, dict):
            arr = getattr(lim, k)
            for i, x in v.items():
                arr[i] = x
        else:
            setattr(lim, k, v)
    return lim


def test_check_when_permissive_then_allows() -> None:
    assert chk() == 0


@pytest.mark.parametrize(("kw", "reason"), [
    ({"qty": 0}, M.DENY_BAD_INTENT), ({"price": 0}, M.DENY_BAD_INTENT), ({"side": 0}, M.DENY_BAD_INTENT),
    ({"order_type": 9}, M.DENY_BAD_INTENT), ({"symbol_id": 99}, M.DENY_BAD_INTENT),
])
def test_check_when_intent_malformed_then_bad_intent(kw: dict, reason: int) -> None:
    assert chk(**kw) == reason


def test_check_when_halted_then_denies_everything() -> None:
    assert chk(lim_with(trading_state=M.HALTED)) == M.DENY_HALTED
    assert chk(lim_with(trading_state=M.HALTED, position={0: 50}), side=M.SELL) == M.DENY_HALTED


def test_check_when_reducing_then_only_position_reducing_orders_pass() -> None:
    lim = lim_with(trading_state=M.REDUCING, position={0: 50})
    assert chk(lim, side=M.SELL, qty=50) == 0
    assert chk(lim, side=M.SELL, qty=51) == M.DENY_REDUCING  # would flip the position
    assert chk(lim, side=M.BUY, qty=1) == M.DENY_REDUCING
    assert chk(lim_with(trading_state=M.REDUCING), side=M.SELL) == M.DENY_REDUCING  # flat: nothing to reduce


def test_check_when_qty_over_limit_then_max_order_qty() -> None:
    assert chk(lim_with(max_order_qty={0: 10}), qty=10) == 0
    assert chk(lim_with(max_order_qty={0: 10}), qty=11) == M.DENY_MAX_ORDER_QTY


def test_check_when_notional_over_limit_then_max_order_notional() -> None:
    n = notional_e8(PX, 10, *SCALES)
    assert n == 600 * 10**8  # 0.010 BTC * 60000 = 600 USDT
    assert chk(lim_with(max_order_notional_e8={0: n}), qty=10) == 0
    assert chk(lim_with(max_order_notional_e8={0: n}), qty=11) == M.DENY_MAX_ORDER_NOTIONAL


def test_check_when_market_order_then_notional_uses_the_mark() -> None:
    lim = lim_with(max_order_notional_e8={0: 600 * 10**8}, mark={0: PX})
    assert chk(lim, order_type=M.MARKET, price=0, qty=10) == 0
    assert chk(lim, order_type=M.MARKET, price=0, qty=11) == M.DENY_MAX_ORDER_NOTIONAL


def test_check_when_position_and_open_orders_could_exceed_then_max_position() -> None:
    lim = lim_with(max_position={0: 100}, position={0: 60})
    assert chk(lim, qty=40) == 0
    assert chk(lim, qty=41) == M.DENY_MAX_POSITION
    open_ = OpenCounts()
    open_.buy_qty[0] = 30
    assert chk(lim, open_, qty=20) == M.DENY_MAX_POSITION  # 60 + 30 open + 20
    assert chk(lim, open_, side=M.SELL, qty=150) == 0  # -> -90
    assert chk(lim, qty=41, reduce_only=1) == 0


def test_check_when_open_orders_at_limit_then_max_open_orders() -> None:
    open_ = OpenCounts(total=5)
    open_.per_symbol[0] = 3
    assert chk(lim_with(max_open_orders=5), open_) == M.DENY_MAX_OPEN_ORDERS
    assert chk(lim_with(max_open_orders=6), open_) == 0
    assert chk(lim_with(sym_max_open_orders={0: 3}), open_) == M.DENY_MAX_OPEN_ORDERS
    assert chk(lim_with(sym_max_open_orders={0: 3}), open_, symbol_id=1) == 0


def test_check_when_rate_reached_then_max_order_rate() -> None:
    assert chk(lim_with(max_orders_per_s=5), rate=4) == 0
    assert chk(lim_with(max_orders_per_s=5), rate=5) == M.DENY_ORDER_RATE


def test_check_when_price_outside_band_then_price_band() -> None:
    lim = lim_with(mark={0: PX}, price_band_bps={0: 100})  # 1%
    assert chk(lim, price=PX + 60_000) == 0
    assert chk(lim, price=PX + 60_001) == M.DENY_PRICE_BAND
    assert chk(lim, price=PX - 60_001, side=M.SELL) == M.DENY_PRICE_BAND
    assert chk(lim_with(price_band_bps={0: 100}), price=1) == 0  # no mark yet: no band


def test_limits_when_built_from_a_riskstate_record_then_fields_map() -> None:
    rec = np.zeros(1, dtype=M.RiskState)[0]
    assert RiskLimits.from_record(rec).trading_state == M.ACTIVE  # never written: ACTIVE
    rec["trading_state"] = M.HALTED
    rec["max_order_qty"][1] = 7
    lim = RiskLimits.from_record(rec)
    assert lim.trading_state == M.HALTED and lim.max_order_qty[1] == 7


def test_risk_source_when_block_rewritten_then_struct_read_equals_record(instance: str) -> None:
    from procs.core.registry import RISK_STATE, build_registry
    from procs.execution.risksource import RiskSource

    reg = build_registry()
    src = RiskSource(reg, instance, required=False)
    assert src() == RiskLimits.permissive()  # no block yet, not required: permissive
    w = reg.writer(instance, RISK_STATE)
    try:
        src.next_try = 0.0
        for k in range(3):
            w.begin()
            r = w.records
            r["trading_state"][0] = (M.ACTIVE, M.REDUCING, M.HALTED)[k]
            r["max_open_orders"][0] = 10 + k
            r["max_orders_per_s"][0] = 20 + k
            for f in ("max_order_qty", "max_order_notional_e8", "max_position", "position", "mark",
                      "price_band_bps", "sym_max_open_orders"):
                r[f][0][:] = np.arange(M.MAX_SYMBOLS) * (k + 1) - 3
            w.end()
            lim = src()
            want = RiskLimits.from_record(w.records[0])
            assert src.version == w.version
            for f in ("trading_state", "max_open_orders", "max_orders_per_s"):
                assert getattr(lim, f) == getattr(want, f)
            for f in ("max_order_qty", "max_order_notional_e8", "max_position", "position", "mark",
                      "price_band_bps", "sym_max_open_orders"):
                assert list(getattr(lim, f)) == getattr(want, f)
            assert src() is lim  # same version: no re-read
    finally:
        src.close()
        w.close(unlink=True)
