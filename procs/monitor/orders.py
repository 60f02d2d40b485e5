"""Order and position bookkeeping from ``exec`` OrderEvents, for observers (TUI, ops API).

Execution and risk own the real state; this is a reader's reconstruction from the events it
saw (the ring's history on attach, then every new event), good for display, never for limits.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from procs.core import messages as M

OPEN_KINDS = (M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_PARTIALLY_FILLED, M.ORDER_MODIFIED, M.ORDER_OPEN)
FILL_KINDS = (M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED)


def order_key(ev: np.void) -> tuple:
    coid = bytes(ev["client_order_id"]).rstrip(b"\0")
    if coid:
        return (coid,)
    return (int(ev["source"]), int(ev["strategy_id"]), int(ev["client_tag"]))


def event_dict(ev: np.void) -> dict[str, Any]:
    """An OrderEvent as plain data (ticks and lots; the caller converts with the Instrument)."""
    kind = int(ev["kind"])
    d = {name: int(ev[name]) for name in M.OrderEvent.names if name not in ("client_order_id", "_pad")}
    d["client_order_id"] = bytes(ev["client_order_id"]).rstrip(b"\0").decode(errors="replace")
    d["event"] = M.EVENT_NAMES.get(kind, str(kind))
    if kind in (M.ORDER_DENIED, M.ORDER_REJECTED, M.ORDER_CANCEL_REJECTED, M.ORDER_MODIFY_REJECTED):
        d["reason_name"] = M.REASON_NAMES.get(int(ev["reason"]), str(int(ev["reason"])))
    return d


class Position:
    """Average-cost position of one symbol in ticks and lots; P&L in ticks*lots (scale at display)."""

    __slots__ = ("lots", "avg_ticks", "realized", "fees_e8", "fills")

    def __init__(self) -> None:
        self.lots = 0
        self.avg_ticks = 0.0
        self.realized = 0.0  # ticks * lots
        self.fees_e8 = 0
        self.fills = 0

    def fill(self, side: int, px: int, qty: int, fee_e8: int) -> None:
        self.fills += 1
        self.fees_e8 += fee_e8
        q = side * qty
        if self.lots == 0 or (self.lots > 0) == (q > 0):
            n = abs(self.lots) + qty
            self.avg_ticks = (self.avg_ticks * abs(self.lots) + px * qty) / n
            self.lots += q
            return
        closing = min(qty, abs(self.lots))
        sign = 1 if self.lots > 0 else -1
        self.realized += closing * (px - self.avg_ticks) * sign
        self.lots += q
        if self.lots == 0:
            self.avg_ticks = 0.0
        elif (self.lots > 0) != (sign > 0):  # flipped through zero: the rest opened at px
            self.avg_ticks = float(px)

    def unrealized(self, mark_ticks: int) -> float:
        if not self.lots or not mark_ticks:
            return 0.0
        return (mark_ticks - self.avg_ticks) * self.lots


class OrderTracker:
    """Open orders, recent events and positions from a stream of OrderEvent batches."""

    def __init__(self, recent: int = 200) -> None:
        self.recent: deque[np.void] = deque(maxlen=recent)
        self.open: dict[tuple, np.void] = {}
        self.positions: dict[int, Position] = {}
        self.events = 0

    def apply(self, batch: np.ndarray) -> None:
        for ev in batch:
            self.events += 1
            self.recent.append(ev)
            kind = int(ev["kind"])
            if kind == M.ORDERS_REPORTED:  # the end of a report names no order
                continue
            key = order_key(ev)
            if kind == M.ORDER_MODIFIED and key not in self.open:
                pass  # an amend of an order closed meanwhile (or before we attached)
            elif kind in OPEN_KINDS and not (kind == M.ORDER_SENT and key in self.open):
                self.open[key] = ev  # an amend's ORDER_MODIFIED carries the new price and quantity
            elif kind not in OPEN_KINDS and kind != M.ORDER_CANCEL_REJECTED and kind not in M.KEEPS_OPEN:
                self.open.pop(key, None)
            if kind in FILL_KINDS and int(ev["last_qty"]) > 0:
                pos = self.positions.get(int(ev["symbol_id"]))
                if pos is None:
                    pos = self.positions[int(ev["symbol_id"])] = Position()
                pos.fill(int(ev["side"]), int(ev["last_px"]), int(ev["last_qty"]), int(ev["fee_e8"]))

    def open_orders(self, symbol_id: int | None = None) -> list[np.void]:
        return [e for e in self.open.values() if symbol_id is None or int(e["symbol_id"]) == symbol_id]
