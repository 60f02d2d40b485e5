"""Reconciliation client: signing (protocol doc B1 vector), position netting, failures."""

from __future__ import annotations

import socket

from procs.risk.reconcile import PositionRow, Reconciler, net_positions, sign, signed_query


def test_sign_when_doc_vector_then_matches() -> None:
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    msg = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
           "&timestamp=1591702613943")
    assert sign(secret, msg) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_signed_query_when_built_then_signature_last_over_everything_before() -> None:
    q = signed_query("s", {"symbol": "BTCUSDT"}, 1700000000000, 5000)
    head, sig = q.rsplit("&signature=", 1)
    assert head == "symbol=BTCUSDT&recvWindow=5000&timestamp=1700000000000" and sig == sign("s", head)


def test_net_positions_when_hedge_mode_rows_then_summed_signed() -> None:
    rows = [PositionRow("BTCUSDT", "0.010", positionSide="LONG"), PositionRow("BTCUSDT", "-0.004", positionSide="SHORT"),
            PositionRow("ETHUSDT", "0.000")]
    assert net_positions(rows) == {"BTCUSDT": "0.006", "ETHUSDT": "0"}


def test_check_once_when_nothing_listens_then_failed_result_not_exception() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = Reconciler(f"http://127.0.0.1:{port}", "k", "secret", 1.0, 1.0).check_once()
    assert not res.ok and res.error and "secret" not in res.error
