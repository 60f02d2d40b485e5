"""What became of the ops API's manual intents: the ``exec`` events it waits for and the answer
each makes (POST /api/orders, DELETE /api/orders/{client_order_id}).

An order entered through the API is an intent on ``orders.manual`` (procs.core.manual_orders);
execution runs its pre-trade check and answers on ``exec`` with events carrying the intent's id
(source manual). The first decisive event is the answer: ``denied`` (b25's pre-trade check, with
the check's name) or ``rejected`` (the venue, with its reason) are 422; ``accepted``, ``filled``,
``partially_filled``, ``canceled`` or ``expired`` mean the order reached the venue (201, with its
client order id). A cancel's answer is the order's ``canceled`` (200), or ``cancel_rejected``,
``filled``, ``expired`` or execution's ``unknown_order`` denial (409: the order is not open).
No decisive event within ``[monitor] order_answer_s`` is 202 ``pending``: the intent was
delivered, and its events will show in GET /api/orders.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from procs.core import messages as M

from .orders import event_dict

SUBMIT_ANSWERS = {M.ORDER_ACCEPTED, M.ORDER_DENIED, M.ORDER_REJECTED, M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED,
                  M.ORDER_CANCELED, M.ORDER_EXPIRED}
CANCEL_ANSWERS = {M.ORDER_CANCELED, M.ORDER_CANCEL_REJECTED, M.ORDER_FILLED, M.ORDER_EXPIRED, M.ORDER_REJECTED}


def coid(ev: np.void) -> str:
    return bytes(ev["client_order_id"]).rstrip(b"\0").decode(errors="replace")


class Answers:
    """The exec events of the intents and orders someone waits for, collected by ``apply``."""

    def __init__(self) -> None:
        self.by_intent: dict[int, list[np.void]] = {}  # manual intent id -> its events
        self.by_order: dict[str, list[np.void]] = {}  # client order id -> its events

    def watch(self, intent_id: int, client_order_id: str = "") -> None:
        self.by_intent[intent_id] = []
        if client_order_id:
            self.by_order[client_order_id] = []

    def forget(self, intent_id: int, client_order_id: str = "") -> None:
        self.by_intent.pop(intent_id, None)
        self.by_order.pop(client_order_id, None)

    def apply(self, batch: np.ndarray) -> None:
        if not self.by_intent and not self.by_order:
            return
        for ev in batch:
            if int(ev["source"]) == M.SOURCE_MANUAL:
                got = self.by_intent.get(int(ev["intent_id"]))
                if got is not None:
                    got.append(ev.copy())
            if self.by_order:
                got = self.by_order.get(coid(ev))
                if got is not None:
                    got.append(ev.copy())


def _reason(ev: np.void) -> str:
    code = int(ev["reason"])
    return M.REASON_NAMES.get(code, str(code))


def submit_answer(events: list[np.void], describe: Any) -> tuple[int, dict[str, Any]] | None:
    """(HTTP status, body) once ``events`` hold a decisive one; ``describe(ev)`` is the event as data."""
    for ev in events:
        kind = int(ev["kind"])
        if kind not in SUBMIT_ANSWERS:
            continue
        outcome = M.EVENT_NAMES[kind]
        body = {"outcome": outcome, "client_order_id": coid(ev), "intent_id": int(ev["intent_id"]),
                "event": describe(ev)}
        if kind == M.ORDER_DENIED:
            reason = _reason(ev)
            return 422, body | {"reason": reason,
                                "error": f"execution's pre-trade check refused the order: {reason}"}
        if kind == M.ORDER_REJECTED:
            reason = _reason(ev)
            return 422, body | {"reason": reason, "error": f"the venue rejected the order: {reason}"}
        return 201, body
    return None


def cancel_answer(client_order_id: str, intent_events: list[np.void], order_events: list[np.void],
                  describe: Any) -> tuple[int, dict[str, Any]] | None:
    """(HTTP status, body) once the cancel of ``client_order_id`` has a decisive event."""
    for ev in intent_events:
        if int(ev["kind"]) == M.ORDER_DENIED:
            reason = _reason(ev)
            return 409, {"outcome": "denied", "client_order_id": client_order_id, "reason": reason,
                         "error": f"execution did not cancel it: {reason} (not open at execution)",
                         "event": describe(ev)}
    for ev in order_events:
        kind = int(ev["kind"])
        if kind not in CANCEL_ANSWERS:
            continue
        outcome = M.EVENT_NAMES[kind]
        body = {"outcome": outcome, "client_order_id": client_order_id, "event": describe(ev)}
        if kind == M.ORDER_CANCELED:
            return 200, body
        if kind == M.ORDER_CANCEL_REJECTED:
            return 409, body | {"reason": _reason(ev), "error": f"the venue refused the cancel: {_reason(ev)}"}
        return 409, body | {"error": f"the order is no longer open: {outcome}"}
    return None


def describe_event(ev: np.void, symbols: list[str]) -> dict[str, Any]:
    sid = int(ev["symbol_id"])
    return event_dict(ev) | {"symbol": symbols[sid] if 0 <= sid < len(symbols) else str(sid)}
