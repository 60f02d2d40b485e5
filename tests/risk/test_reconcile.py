"""Reconciliation: the venue's account snapshot netted per symbol; failures are results, not
exceptions, and never carry the secret."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest

from procs.risk.reconcile import Reconciler
from procs.venue.binance.account import AccountSource, PositionRow, net_positions
from procs.venue.binance.signing import TEST_ACCOUNT, Signer
from tests.support.execution_rig import http, rest_signed, start_sim


def test_net_positions_when_hedge_mode_rows_then_summed_signed() -> None:
    rows = [PositionRow("BTCUSDT", "0.010", positionSide="LONG"), PositionRow("BTCUSDT", "-0.004", positionSide="SHORT"),
            PositionRow("ETHUSDT", "0.000")]
    assert net_positions(rows) == {"BTCUSDT": "0.006", "ETHUSDT": "0"}


@pytest.mark.proc
def test_reconciler_when_a_fill_follows_then_its_result_comes_after_the_settle_time_with_the_request_times(
        procs: list) -> None:
    """The result waits ``settle_s`` after the answer (fills in flight then reach risk first), and
    says when it was asked and answered on our clock: the fill made after it is not in it."""
    _sim, rest_port, _ws, _log = start_sim(procs)
    base = f"http://127.0.0.1:{rest_port}"
    woken: list[int] = []
    r = Reconciler(AccountSource(base, Signer(*TEST_ACCOUNT), 5000, 2.0), 30.0, 2.0,
                   wake=lambda: woken.append(time.time_ns() // 1_000_000), settle_s=0.5)
    r.start()
    try:
        deadline = time.monotonic() + 10
        while not r.results and time.monotonic() < deadline:
            if not woken:
                rest_signed(base, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY",
                                                            "type": "MARKET", "quantity": "0.002"})
            time.sleep(0.05)
    finally:
        r.stop()
    assert r.results and woken, "no result in 10 s"
    res = r.results[0]
    assert res.ok and 0 < res.asked_ms <= res.answered_ms <= woken[0] - 500
    # orders went on during the settle time: the venue holds more now than the result says
    now = r.check_once()
    assert Decimal(now.positions["BTCUSDT"]) > Decimal(res.positions.get("BTCUSDT", "0"))


def test_check_once_when_nothing_listens_then_failed_result_not_exception() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = Reconciler(AccountSource(f"http://127.0.0.1:{port}", Signer("k", "secret"), 5000, 1.0), 1.0,
                     1.0).check_once()
    assert not res.ok and res.error and "secret" not in res.error


@pytest.mark.proc
def test_check_once_when_the_venue_clock_stepped_then_it_re_syncs_and_answers(procs: list) -> None:
    _sim, rest_port, _ws, _log = start_sim(procs)
    base = f"http://127.0.0.1:{rest_port}"
    signer = Signer(*TEST_ACCOUNT)
    r = Reconciler(AccountSource(base, signer, 5000, 2.0), 1.0, 2.0)
    assert r.check_once().ok and signer.offset_ms == 0
    http("POST", f"{base}/sim/clock?step_ms=-2000")  # our timestamps now 2 s ahead of the venue: -1021
    res = r.check_once()
    assert res.ok, res.error
    assert abs(signer.offset_ms + 2000) < 500
