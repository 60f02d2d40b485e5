"""Helpers for system tests on a whole Stack: the configured instruments, risk's mark, manual
orders on ``orders.manual`` (as the TUI writes them) and an observer of the ``exec`` ring."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.core.registry import EXEC, ORDERS_MANUAL, build_registry
from procs.tools.stack import Stack
from procs.venue.binance.exchange_info import instruments as load_exchange_info

NO_STRATEGIES: dict[str, Any] = {"strategy": {"strategies": [], "state_save_interval_s": 0.2}}


def instruments(stack: Stack) -> list[Instrument]:
    """The configured symbols' instruments, by symbol_id."""
    by = load_exchange_info(stack.sim_get("/fapi/v1/exchangeInfo"))
    return [by[s] for s in stack.symbols]


def wait_mark(stack: Stack, sid: int) -> int:
    """Risk's mark of ``sid`` in ticks, once it has one."""
    return int(stack.wait_for(lambda: int(stack.risk_state()["mark"][sid]), f"risk mark of symbol {sid}"))


class ManualOrders:
    """The producer of ``orders.manual`` (what the TUI's order entry writes)."""

    def __init__(self, instance: str) -> None:
        self.p = build_registry().producer(instance, ORDERS_MANUAL)
        self.next_id = 0

    def submit(self, sid: int, side: int, qty: int, price: int = 0, order_type: int = M.LIMIT,
               tif: int = M.GTC, reduce_only: int = 0) -> int:
        if order_type == M.MARKET:
            price, tif = 0, 0
        return self._put(M.SUBMIT_ORDER, sid, side, order_type, tif, price, qty, reduce_only)

    def cancel_all(self, sid: int = -1) -> int:
        return self._put(M.CANCEL_ALL, sid, 0, 0, 0, 0, 0, 0)

    def _put(self, kind: int, sid: int, side: int, order_type: int, tif: int, price: int, qty: int,
             reduce_only: int) -> int:
        self.next_id += 1
        tag = self.next_id
        ok = self.p.try_publish(self.next_id, kind, M.SOURCE_MANUAL, 0, sid, side, order_type, tif, price, qty,
                                reduce_only, tag, 0, 0, time.monotonic_ns(), 0, 0, 0)
        assert ok, "orders.manual is full (execution not reading?)"
        return self.next_id

    def close(self) -> None:
        self.p.close()  # the Stack removes the segment with the rest of the instance


class ExecEvents:
    """An observer of the ``exec`` ring from the moment it attaches; keeps every event."""

    def __init__(self, instance: str) -> None:
        self.c = build_registry().consumer(instance, EXEC, None, timeout=10)
        self.events: list[np.void] = []

    def poll(self) -> list[np.void]:
        batch = self.c.poll()
        self.events.extend(r.copy() for r in batch)
        self.c.commit()
        return self.events

    def of_intent(self, intent_id: int, kind: int, source: int = M.SOURCE_MANUAL) -> np.void | None:
        for e in self.poll():
            if e["intent_id"] == intent_id and e["source"] == source and e["kind"] == kind:
                return e
        return None

    def outcome(self, stack: Stack, intent_id: int, source: int = M.SOURCE_MANUAL, final: bool = False) -> str:
        """"denied:<reason>", "accepted", "rejected:<code>", ...: the first answer to the intent
        (with ``final``, the first that ends the order: filled, canceled, expired, denied, rejected)."""
        skip = {M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_PARTIALLY_FILLED} if final else {M.ORDER_SENT}

        def first() -> str | None:
            for e in self.poll():
                if e["intent_id"] != intent_id or e["source"] != source:
                    continue
                k = int(e["kind"])
                if k == M.ORDER_DENIED:
                    return f"denied:{M.DENY_NAMES.get(int(e['reason']), e['reason'])}"
                if k == M.ORDER_REJECTED:
                    return f"rejected:{int(e['reason'])}"
                if k not in skip:
                    return M.EVENT_NAMES[k]
            return None

        return stack.wait_for(first, f"an answer to manual intent {intent_id}")

    def close(self) -> None:
        self.c.close()
