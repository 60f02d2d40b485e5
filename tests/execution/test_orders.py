"""Order state machine and open-order bookkeeping."""

from __future__ import annotations

import pytest

from procs.core import messages as M
from procs.execution import orders as O
from procs.execution.orders import Order, OrderStore, transition


@pytest.mark.parametrize(("cur", "new", "want"), [
    (O.PENDING, O.NEW, O.APPLIED), (O.PENDING, O.REJECTED, O.APPLIED), (O.PENDING, O.FILLED, O.APPLIED),
    (O.NEW, O.PARTIALLY_FILLED, O.APPLIED), (O.NEW, O.CANCELED, O.APPLIED), (O.NEW, O.EXPIRED, O.APPLIED),
    (O.PARTIALLY_FILLED, O.FILLED, O.APPLIED), (O.PARTIALLY_FILLED, O.CANCELED, O.APPLIED),
    (O.NEW, O.NEW, O.SAME), (O.FILLED, O.NEW, O.STALE), (O.PARTIALLY_FILLED, O.NEW, O.STALE),
    (O.FILLED, O.CANCELED, O.ILLEGAL), (O.CANCELED, O.FILLED, O.ILLEGAL), (O.NEW, O.REJECTED, O.ILLEGAL),
    (O.EXPIRED, O.PARTIALLY_FILLED, O.STALE),
])
def test_transition_when_reported_then_classified(cur: int, new: int, want: int) -> None:
    assert transition(cur, new) == want


def mk(cid: str = "a", side: int = M.BUY, qty: int = 10, sym: int = 0) -> Order:
    return Order(cid, 1, sym, side, M.LIMIT, M.GTC, 100, qty, client_tag=7)


def test_store_when_orders_open_fill_and_close_then_counts_follow() -> None:
    s = OrderStore()
    a, b = mk("a"), mk("b", M.SELL, 5, 1)
    s.add(a)
    s.add(b)
    assert s.counts.total == 2 and s.counts.buy_qty[0] == 10 and s.counts.sell_qty[1] == 5
    assert s.set_status(a, O.NEW) == O.APPLIED
    assert s.set_cum(a, 4) == 4 and s.counts.buy_qty[0] == 6
    assert s.set_cum(a, 3) == 0  # never lowers
    assert s.set_status(a, O.FILLED) == O.APPLIED
    assert s.counts.total == 1 and s.counts.buy_qty[0] == 0 and "a" not in s.open
    assert s.set_status(a, O.CANCELED) == O.ILLEGAL and a.status == O.FILLED  # never applied
    assert s.find_tag(1, 7) is b
