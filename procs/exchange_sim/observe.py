"""The simulator's test surfaces in b25's words, for tools that hold b25 against the venue
(``b25 chaos``): its order log (``GET /sim/order_log``) as ``LoggedOrder``s.

The order log's records are order objects as the venue answers them, with ``event`` (``NEW`` for
the record of an acceptance, ``TRADE``, ``CANCELED``, ``EXPIRED``...), ``account`` and, for an
order closed by a venue restart, ``"reason": "venue_restart"`` (procs/exchange_sim/trading/restore.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from procs.venue.binance.orders import order_report
from procs.venue.messages import OrderReport


class LoggedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One record of the simulator's order log."""

    account: str
    report: OrderReport  # the order as this record states it
    accepted: bool  # the record of its acceptance (one per order the venue took)
    venue_restart: bool  # the record of its close by a venue restart


def logged_orders(entries: list[dict[str, Any]]) -> list[LoggedOrder]:
    """The order records of an order log (records that name no order are left out)."""
    return [LoggedOrder(account=str(e.get("account", "")), report=order_report(e), accepted=e.get("event") == "NEW",
                        venue_restart=e.get("reason") == "venue_restart")
            for e in entries if e.get("clientOrderId") and "orderId" in e]
