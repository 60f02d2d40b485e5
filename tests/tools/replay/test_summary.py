"""The replay summary without processes: P&L accounting and the journal hash's scope."""

from __future__ import annotations

import msgspec

from procs.core import messages as M
from procs.execution.journal import JournalRecord
from procs.tools.replay.summary import journal_sha256, summarize

INSTRUMENTS = {"BTCUSDT": {"price_scale": 1, "qty_scale": 3, "contract_size": "1"}}


def _fill(cid: str, side: int, px: int, qty: int, fee_e8: int, ts: int) -> JournalRecord:
    return JournalRecord(M.ORDER_FILLED, cid, 7, 0, side, M.LIMIT, M.GTC, px, qty, last_px=px, last_qty=qty,
                         fee_e8=fee_e8, ts_event=ts)


def test_summarize_when_round_trip_and_open_rest_then_realized_unrealized_fees_and_drawdown() -> None:
    recs = [
        _fill("b25-1-1", M.BUY, 600000, 2, 10_000_000, 1),  # buy 0.002 @ 60000.0, fee 0.1
        _fill("b25-1-2", M.SELL, 599000, 1, 10_000_000, 2),  # sell 0.001 @ 59900.0: -0.1 realized
        _fill("b25-1-3", M.SELL, 601000, 1, 10_000_000, 3),  # sell 0.001 @ 60100.0: +0.1 realized
    ]
    out, series = summarize(recs, ["BTCUSDT"], INSTRUMENTS, {"BTCUSDT": (600000, 600020)})
    assert out["fills"] == 3 and out["orders"] == 3
    assert out["realized_pnl"] == 0.0 and out["unrealized_pnl"] == 0.0
    assert out["fees"] == 0.3 and out["net_pnl"] == -0.3
    assert out["position"] == {"BTCUSDT": 0.0}
    assert out["max_drawdown"] == 0.4  # at the second fill: -0.1 realized, 0.2 fees, -0.1 open at 59900
    assert [round(v, 6) for _, v in series["equity"]] == [-0.1, -0.4, -0.3]


def test_journal_sha256_when_orders_interleave_differently_then_same_and_when_a_value_differs_then_not() -> None:
    a1 = JournalRecord(M.ORDER_SENT, "b25-1-1", price=10, wall_ns=5, ts_intent=6, event_seq=1)
    a2 = JournalRecord(M.ORDER_ACCEPTED, "b25-1-1", price=10, ts_event=99, event_seq=3)
    b1 = JournalRecord(M.ORDER_SENT, "b25-1-2", price=11, wall_ns=7, event_seq=2)
    b2 = JournalRecord(M.ORDER_ACCEPTED, "b25-1-2", price=11, ts_event=99, event_seq=4)
    h = journal_sha256([a1, a2, b1, b2])
    assert journal_sha256([a1, b1, a2, b2]) == h  # another interleaving of two orders: timing
    assert journal_sha256([msgspec.structs.replace(a1, wall_ns=123), a2, b1, b2]) == h
    assert journal_sha256([a1, msgspec.structs.replace(a2, ts_event=100), b1, b2]) != h
    assert journal_sha256([a2, a1, b1, b2]) != h  # one order's own records in another order: not timing
