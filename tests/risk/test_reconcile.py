"""Reconciliation: the venue's account snapshot netted per symbol; failures are results, not
exceptions, and never carry the secret."""

from __future__ import annotations

import socket

import pytest

from procs.risk.reconcile import Reconciler
from procs.venue.binance.account import AccountSource, PositionRow, net_positions, position_times
from procs.venue.binance.signing import TEST_ACCOUNT, Signer
from tests.support.execution_rig import http, rest_signed, start_sim


def test_net_positions_when_hedge_mode_rows_then_summed_signed() -> None:
    rows = [PositionRow("BTCUSDT", "0.010", positionSide="LONG"), PositionRow("BTCUSDT", "-0.004", positionSide="SHORT"),
            PositionRow("ETHUSDT", "0.000")]
    assert net_positions(rows) == {"BTCUSDT": "0.006", "ETHUSDT": "0"}


def test_position_times_when_hedge_mode_rows_then_the_later_side_and_nonsense_is_unknown() -> None:
    rows = [PositionRow("BTCUSDT", "0.010", positionSide="LONG", updateTime=1700000000500),
            PositionRow("BTCUSDT", "-0.004", positionSide="SHORT", updateTime=1700000000900),
            PositionRow("ETHUSDT", "0.000", updateTime=-5)]
    assert position_times(rows) == {"BTCUSDT": 1700000000900, "ETHUSDT": 0}


@pytest.mark.proc
def test_check_once_when_a_position_moves_then_its_venue_time_comes_with_it(procs: list) -> None:
    _sim, rest_port, _ws, _log = start_sim(procs)
    base = f"http://127.0.0.1:{rest_port}"
    r = Reconciler(AccountSource(base, Signer(*TEST_ACCOUNT), 5000, 2.0), 1.0, 2.0)
    before = r.check_once()
    assert before.ok and before.position_times.get("BTCUSDT", 0) == 0
    code, body = rest_signed(base, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                              "quantity": "0.002"})
    assert code == 200, body
    after = r.check_once()
    assert after.positions["BTCUSDT"] == "0.002" and after.position_times["BTCUSDT"] > 0


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
