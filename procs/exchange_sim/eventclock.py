"""The simulated clock of a lockstep replay (and of ``b25 backtest``): one timeline, an event queue.

Everything that happens at the exchange or reaches b25 is an event at a simulated time (ns):

    APPLY    the exchange applies recorded frame i (true book, fills of resting orders)   at x_i
    ARRIVE   an order request reaches the matching engine                                 at sent + entry
    DELIVER  an answer or user-stream event reaches b25                                   at acted + response
    MARKET   frame i's market data reaches b25                                            at r_i

(``x``, ``r``: ``procs.exchange_sim.latency.schedule``). Events are taken in time order; at equal
times in that order of kind (the exchange acts before b25 hears of it; b25 hears of its own
orders before the market data of the same instant, as the zero-latency lockstep always did),
then in the order they were queued. Each connection is FIFO: a message never overtakes the one
sent before it on the same connection (``Links``).

Why this stays deterministic: the clock moves only when the pipeline is quiescent (the lockstep
barrier, procs/tools/replay/lockstep.py), so every request b25 sends was sent at the current
simulated time and is queued before the clock moves; the queue's order is a total order on
(time, kind, arrival); the latency draws are seeded and made in the order events are handled
(one entry draw per request as it is queued, one response draw per exchange action that answers
anything). Nothing depends on host timing.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from typing import Any

from procs.exchange_sim.latency import LatencyModel

APPLY, ARRIVE, DELIVER, MARKET = range(4)
KIND_NAMES = ("apply", "arrive", "deliver", "market")
# a silence in the recording longer than this (between two days' files, a recorder outage) is
# skipped: strategy timers stop the clock only within it of the last frame applied
SILENCE_NS = 60_000_000_000


def timer_stops_clock(now: int, due: int, t_next: int, last_r: int, last_x: int) -> bool:
    """Whether the clock stops at a strategy timer's deadline ``due`` before the next event at
    ``t_next``: after ``now``, not past the recording's last receive time ``last_r``, and within
    ``SILENCE_NS`` of the last frame applied (exchange time ``last_x``). A timer due in a longer
    silence fires once at the next event (the strategy engine skips its missed periods), so a
    run over several days does not step a periodic timer through the nights between them."""
    return now < due < t_next and due <= last_r and due - last_x <= SILENCE_NS


class EventQueue:
    """Events ordered by (time, kind, insertion)."""

    __slots__ = ("_h", "_seq")

    def __init__(self) -> None:
        self._h: list[tuple[int, int, int, Callable[..., Any], tuple]] = []
        self._seq = 0

    def push(self, t: int, kind: int, fn: Callable[..., Any], *args: Any) -> None:
        heapq.heappush(self._h, (t, kind, self._seq, fn, args))
        self._seq += 1

    def peek(self) -> int | None:
        """The time of the next event, None when empty."""
        return self._h[0][0] if self._h else None

    def pop(self) -> tuple[int, int, Callable[..., Any], tuple]:
        t, kind, _seq, fn, args = heapq.heappop(self._h)
        return t, kind, fn, args

    def __len__(self) -> int:
        return len(self._h)


class Links:
    """The order connections' latencies: entry per request, response per exchange action, each
    connection FIFO."""

    def __init__(self, model: LatencyModel) -> None:
        self.entry = model.sampler("entry")
        self.response = model.sampler("response")
        self._in_last: dict[Hashable, int] = {}
        self._out_last: dict[Hashable, int] = {}
        self._action_latency: int | None = None

    def begin_action(self) -> None:
        """The exchange starts handling one event: its answers share one response latency."""
        self._action_latency = None

    def arrival(self, now: int, conn: Hashable) -> int:
        """When a request written on ``conn`` at ``now`` reaches the matching engine."""
        t = now + self.entry.next()
        last = self._in_last.get(conn, 0)
        if t < last:
            t = last
        self._in_last[conn] = t
        return t

    def delivery(self, now: int, conn: Hashable) -> int:
        """When something the exchange wrote on ``conn`` at ``now`` reaches b25."""
        if self._action_latency is None:
            self._action_latency = self.response.next()
        t = now + self._action_latency
        last = self._out_last.get(conn, 0)
        if t < last:
            t = last
        self._out_last[conn] = t
        return t


class DeferredSession:
    """A WebSocket session of the trading side whose writes wait for their delivery event."""

    def __init__(self, session: Any, api: bool, gate: LockstepGate) -> None:
        self.session = session
        self.api = api  # the WebSocket API (requests and their answers) or a user-data stream
        self.gate = gate

    def send_text(self, text: str) -> None:
        self.gate.send(self, text)

    def close(self) -> None:
        self.session.close()


class LockstepGate:
    """The trading side's WebSockets behind the latency model (a ``WsHandler`` wrapping the real one).

    Requests on the WebSocket API wait in the queue until they reach the matching engine; every
    write to a WebSocket API or user-stream session waits until it reaches b25. ``held`` counts
    requests received whose answer has not reached b25 yet; ``stream_delivered`` the user-stream
    events that did (the barrier compares them with execution's own counts)."""

    def __init__(self, inner: Any, queue: EventQueue, links: Links, now: Callable[[], int],
                 is_api_path: Callable[[str], bool]) -> None:
        self.inner = inner
        self.queue = queue
        self.links = links
        self.now = now
        self.is_api_path = is_api_path
        self._wrapped: dict[int, DeferredSession] = {}
        self.held = 0
        self.stream_delivered = 0
        self.requests = 0

    # -- WsHandler -------------------------------------------------------------------------
    def ws_claims(self, path: str) -> bool:
        return self.inner.ws_claims(path)

    def ws_refusal(self, path: str) -> bytes | None:
        return self.inner.ws_refusal(path)

    def ws_open(self, session: Any, path: str) -> None:
        w = self._wrapped[id(session)] = DeferredSession(session, self.is_api_path(path), self)
        self.inner.ws_open(w, path)

    def ws_message(self, session: Any, text: str) -> None:
        w = self._wrapped.get(id(session))
        if w is None:
            return
        if not w.api:
            self.inner.ws_message(w, text)
            return
        self.held += 1
        self.requests += 1
        self.queue.push(self.links.arrival(self.now(), id(w)), ARRIVE, self._arrive, w, text)

    def ws_closed(self, session: Any) -> None:
        w = self._wrapped.pop(id(session), None)
        if w is not None:
            self.inner.ws_closed(w)

    # -- events ----------------------------------------------------------------------------
    def _arrive(self, w: DeferredSession, text: str) -> None:
        self.links.begin_action()
        self.inner.ws_message(w, text)

    def send(self, w: DeferredSession, text: str) -> None:
        self.queue.push(self.links.delivery(self.now(), id(w)), DELIVER, self._deliver, w, text)

    def _deliver(self, w: DeferredSession, text: str) -> None:
        if w.api:
            self.held -= 1
        else:
            self.stream_delivered += 1
        if id(w.session) in self._wrapped:
            w.session.send_text(text)
