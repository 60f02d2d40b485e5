"""Reconciliation: the venue's account snapshot netted per symbol; failures are results, not
exceptions, and never carry the secret."""

from __future__ import annotations

import socket

from procs.risk.reconcile import Reconciler
from procs.venue.binance.account import AccountSource, PositionRow, net_positions
from procs.venue.binance.signing import Signer


def test_net_positions_when_hedge_mode_rows_then_summed_signed() -> None:
    rows = [PositionRow("BTCUSDT", "0.010", positionSide="LONG"), PositionRow("BTCUSDT", "-0.004", positionSide="SHORT"),
            PositionRow("ETHUSDT", "0.000")]
    assert net_positions(rows) == {"BTCUSDT": "0.006", "ETHUSDT": "0"}


def test_check_once_when_nothing_listens_then_failed_result_not_exception() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = Reconciler(AccountSource(f"http://127.0.0.1:{port}", Signer("k", "secret"), 5000, 1.0), 1.0,
                     1.0).check_once()
    assert not res.ok and res.error and "secret" not in res.error
