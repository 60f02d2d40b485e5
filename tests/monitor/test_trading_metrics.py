"""The monitor's trading families: fills by liquidity and refusals by reason from exec events."""

from __future__ import annotations

import numpy as np

from procs.core import messages as M
from procs.monitor.trading_metrics import OrderStats


def events(*rows: tuple[int, int, int]) -> np.ndarray:
    """OrderEvents from (kind, flags, reason)."""
    out = np.zeros(len(rows), M.OrderEvent)
    for i, (kind, flags, reason) in enumerate(rows):
        out[i]["kind"], out[i]["flags"], out[i]["reason"] = kind, flags, reason
    return out


def test_order_stats_when_fills_and_refusals_arrive_then_counts_by_liquidity_and_reason():
    stats = OrderStats()
    stats.apply(events((M.ORDER_FILLED, M.FLAG_MAKER, 0), (M.ORDER_PARTIALLY_FILLED, 0, 0),
                       (M.ORDER_FILLED, M.FLAG_MAKER | M.FLAG_REDUCE_ONLY, 0), (M.ORDER_ACCEPTED, M.FLAG_MAKER, 0)))
    stats.apply(events((M.ORDER_DENIED, 0, M.DENY_HALTED), (M.ORDER_DENIED, 0, M.DENY_HALTED),
                       (M.ORDER_REJECTED, 0, -2019), (M.ORDER_DENIED, 0, 999)))
    assert stats.fills == {"maker": 2, "taker": 1}
    assert stats.refusals == {("denied", "halted"): 2, ("rejected", "-2019"): 1, ("denied", "999"): 1}
