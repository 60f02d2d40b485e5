"""Latency trace of the simulator: when each depth frame was written, when each order arrived.

Off by default (a normal run pays one ``is None`` test per depth payload and per socket
flush). Turned on by ``[sim] trace = true`` or ``POST /sim/trace?enabled=true``, it keeps, in
two bounded rings (``[sim] trace_capacity`` entries each, oldest dropped first):

* ``frames``: ``(symbol, u, ts_sent_ns)`` for every depth event written to a market socket,
  ``u`` the event's final update id and ``ts_sent_ns`` the ``time.monotonic_ns()`` just before
  the write that carries it (frames are batched per loop turn, so the frames of one write
  share a stamp). Before, not after: the reader woken by the write can run, and stamp its
  receipt, before the writer's ``write()`` returns (on 2 busy cores it often preempts it),
  so a stamp after the write could be later than the receipt. A frame sent to two sessions
  is recorded twice; replayed recordings served verbatim are not traced (their ``u`` is not
  parsed);
* ``orders``: ``(ts_recv_ns, api, method, symbol, client order id)`` for every order place or
  cancel request, stamped when the order API got it (``api`` "rest": at the order API's entry,
  after aiohttp parsed the request; "ws": when the WebSocket API got the text frame).
  The order log's records caused by such a request also carry ``ts_recv_ns`` while tracing;
* ``answers``: ``(ts_sent_ns, channel, client order id, what, trade id)`` for every answer the
  trading side writes about an order, just before the write: the WebSocket API's reply to an
  order request (``channel`` "ws", ``what`` the order's status) and each ORDER_TRADE_UPDATE on a
  user-data stream ("stream", ``what`` its execution type, ``trade id`` of a TRADE, else 0).

A replayed recording's depth frames are traced too (their ``u`` read from the payload).

Every stamp is CLOCK_MONOTONIC, the clock every b25 process stamps with, so on one host the
trace joins b25's own traces (``b25 bench e2e``'s ``wire_to_wire``: frame sent -> order received).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Protocol


class _TracedHub(Protocol):
    trace: Trace | None


class Trace:
    """The two rings and the switch; ``bind(hub)`` lets the market side see it only while on."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError(f"trace capacity must be >= 1: trace_capacity={capacity}")
        self.capacity = capacity
        self.enabled = False
        self.frames: deque[tuple[str, int, int]] = deque(maxlen=capacity)
        self.orders: deque[tuple[int, str, str, str, str]] = deque(maxlen=capacity)
        self.answers: deque[tuple[int, str, str, str, int]] = deque(maxlen=capacity)
        self.frames_seen = 0  # including those the ring dropped
        self.orders_seen = 0
        self.answers_seen = 0
        self._pending: dict[Any, list[tuple[str, int]]] = {}  # session -> (symbol, u) queued, not written
        self._hub: _TracedHub | None = None

    def bind(self, hub: _TracedHub) -> None:
        self._hub = hub
        hub.trace = self if self.enabled else None

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            self._pending.clear()
        if self._hub is not None:
            self._hub.trace = self if enabled else None

    def clear(self) -> None:
        self.frames.clear()
        self.orders.clear()
        self.answers.clear()
        self._pending.clear()
        self.frames_seen = self.orders_seen = self.answers_seen = 0

    # -- recording (the hot path while on) ----------------------------------------------------
    def queued(self, session: Any, symbol: str, u: int) -> None:
        """A depth event with final update id ``u`` was queued on ``session``'s socket."""
        p = self._pending.get(session)
        if p is None:
            p = self._pending[session] = []
        p.append((symbol, u))

    def writing(self, session: Any) -> None:
        """``session`` is about to write its queued frames: stamp them now."""
        p = self._pending.pop(session, None)
        if p:
            ns = time.monotonic_ns()
            add = self.frames.append
            for symbol, u in p:
                add((symbol, u, ns))
            self.frames_seen += len(p)

    def dropped(self, session: Any) -> None:
        """``session`` closed: what it had queued was never written."""
        self._pending.pop(session, None)

    def order(self, ts_recv_ns: int, api: str, method: str, symbol: str, cid: str) -> None:
        self.orders.append((ts_recv_ns, api, method, symbol, cid))
        self.orders_seen += 1

    def answer(self, channel: str, cid: str, what: str, trade_id: int = 0) -> None:
        """An answer about order ``cid`` is about to be written on ``channel``."""
        self.answers.append((time.monotonic_ns(), channel, cid, what, trade_id))
        self.answers_seen += 1

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The ``GET /sim/trace`` body."""
        return {
            "enabled": self.enabled, "capacity": self.capacity,
            "frames_seen": self.frames_seen, "orders_seen": self.orders_seen, "answers_seen": self.answers_seen,
            "frames": [list(f) for f in self.frames],  # [symbol, u, ts_sent_ns]
            "orders": [{"ts_recv_ns": t, "api": a, "method": m, "symbol": s, "clientOrderId": c}
                       for t, a, m, s, c in self.orders],
            "answers": [{"ts_sent_ns": t, "channel": ch, "clientOrderId": c, "what": w, "tradeId": tid}
                        for t, ch, c, w, tid in self.answers],
        }

    def status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "capacity": self.capacity, "frames_seen": self.frames_seen,
                "orders_seen": self.orders_seen, "answers_seen": self.answers_seen}


# An answer's ``what`` as the b25 event execution makes of it (``procs.tools.latency``'s join)
_LEARNT = {"NEW": "accepted", "CANCELED": "canceled", "EXPIRED": "expired", "REJECTED": "rejected", "TRADE": "fill"}
_WS_ACK = frozenset({"NEW", "FILLED", "PARTIALLY_FILLED", "EXPIRED"})


def answer_writes(body: dict[str, Any]) -> dict[tuple[str, str, int], int]:
    """``(client order id, what b25 learns, trade id or 0)`` -> ``ts_sent_ns`` of its first write
    in a ``GET /sim/trace`` body, in b25's words: ``accepted`` (the WebSocket API's reply to a
    place says NEW, or FILLED/EXPIRED for an IOC that took: an ack either way), ``fill`` (by
    trade id), ``canceled``, ``expired``, ``rejected``. Of a reply and a stream event saying the
    same, the first written counts."""
    out: dict[tuple[str, str, int], int] = {}
    for a in body.get("answers", []):
        what = a["what"]
        learnt = "accepted" if a["channel"] == "ws" and what in _WS_ACK else _LEARNT.get(what, what.lower())
        key = (a["clientOrderId"], learnt, int(a["tradeId"]) if learnt == "fill" else 0)
        out.setdefault(key, int(a["ts_sent_ns"]))
    return out


def first_order_arrivals(body: dict[str, Any]) -> dict[str, int]:
    """Client order id -> ``ts_recv_ns`` of its first place request in a ``GET /sim/trace`` body
    (a retry arrives again: the first arrival is the order's)."""
    out: dict[str, int] = {}
    for o in body.get("orders", []):
        if o["method"] == "place" and o["clientOrderId"] not in out:
            out[o["clientOrderId"]] = int(o["ts_recv_ns"])
    return out
