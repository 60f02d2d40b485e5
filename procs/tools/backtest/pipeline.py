"""b25's processes in one process, for b25 backtest: no shared memory, sockets or subprocesses.

The code is the code that trades live, with only its edges replaced:

* **strategy**: ``procs.strategy.engine.Engine`` with in-memory rings (``MemoryRings``) in place of
  shm: the same ``Strategy``/``StrategyApi``/``BookView``, the same duty cycle (``do_work``);
* **execution**: ``procs.execution.engine.Engine`` (pre-trade check, client ids, journal, state
  machine) with the venue's order gateway onto the in-process exchange
  (``procs.exchange_sim.inprocess.InProcessGateway``: the same requests, no socket), its clock,
  rate limiter and retries on simulated time;
* **risk**: ``procs.risk.engine.RiskEngine`` fed the fills and marks the risk process reads, its
  state handed to execution's check through the same ``RiskLimits.from_words``;
* **market_data**: what it publishes is built from the exchange's book (``FastMarket.book_update``):
  a BookUpdate per applied diff, a trade for each trade the exchange reports.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from procs.core import messages as M
from procs.execution.pretrade import RISK_STATE_STRUCT, RiskLimits
from shm.ring import struct_for


class SimTime:
    """The simulated clock every part reads (ns); what ``procs.core.simclock`` is in a replay."""

    __slots__ = ("t",)

    def __init__(self, t: int = 0) -> None:
        self.t = t

    def now_ns(self) -> int:
        return self.t

    def now_s(self) -> float:
        return self.t / 1e9

    def ms(self) -> int:
        return self.t // 1_000_000


class MemoryCounters:
    """The counters/histograms API of ``shm.counters.Counters`` in a dict (histograms: sample counts)."""

    def __init__(self, names: Any = None) -> None:
        self.values: dict[int, int] = {}
        self.names = names
        self.samples: dict[int, int] = {}

    def inc(self, counter: int, n: int = 1) -> None:
        self.values[counter] = self.values.get(counter, 0) + n

    def set(self, counter: int, value: int) -> None:
        self.values[counter] = value

    def get(self, counter: int) -> int:
        return self.values.get(counter, 0)

    def record(self, hist: int, ns: int) -> None:
        self.samples[hist] = self.samples.get(hist, 0) + 1

    def heartbeat(self) -> None:
        pass

    def close(self, unlink: bool = False) -> None:
        pass

    def by_name(self) -> dict[str, int]:
        if self.names is None:
            return {str(k): v for k, v in self.values.items()}
        return {self.names(k).name.lower(): v for k, v in self.values.items()}


class MemoryConsumer:
    """A named reader of an in-memory ring (``poll_one`` as ``shm.ring.Consumer``'s)."""

    def __init__(self) -> None:
        self.q: deque[tuple] = deque()
        self.position = 0
        self.lost = 0

    def poll_one(self) -> tuple | None:
        q = self.q
        if not q:
            return None
        self.position += 1
        return q.popleft()

    def read_one(self) -> tuple | None:
        """``poll_one``: nothing outlives the run, so at-least-once has nothing to resume."""
        return self.poll_one()

    def store_position(self) -> None:
        pass  # an in-memory ring has no stored cursor

    def has_data(self) -> bool:
        return bool(self.q)

    def heartbeat(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryProducer:
    """A producer whose records go straight to ``deliver`` (returns True: an in-memory ring is never full)."""

    def __init__(self, deliver: Callable[[int, tuple], None] | None = None) -> None:
        self.deliver = deliver
        self.next_sequence = 0

    def try_publish(self, *fields: Any) -> bool:
        seq = self.next_sequence
        self.next_sequence = seq + 1
        if self.deliver is not None:
            self.deliver(seq, fields)
        return True

    def prewake(self) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryRings:
    """The strategy engine's rings (``procs.strategy.engine.RingSource``): md.book, md.trade and exec
    are ``MemoryConsumer``s the backtest fills; orders.strategy goes to ``on_intent``."""

    def __init__(self, on_intent: Callable[[int, tuple], None]) -> None:
        from procs.core.registry import EXEC, MD_BOOK, MD_TRADE, ORDERS_STRATEGY

        self.consumers = {MD_BOOK: MemoryConsumer(), MD_TRADE: MemoryConsumer(), EXEC: MemoryConsumer()}
        self.producers = {ORDERS_STRATEGY: MemoryProducer(on_intent)}
        self.books, self.trades, self.exec = self.consumers[MD_BOOK], self.consumers[MD_TRADE], self.consumers[EXEC]

    def pending(self) -> bool:
        """A record waits in md.book, md.trade or exec."""
        return bool(self.books.q or self.trades.q or self.exec.q)

    def producer(self, name: str) -> MemoryProducer:
        return self.producers.setdefault(name, MemoryProducer())

    def consumer(self, name: str) -> MemoryConsumer:
        return self.consumers[name]


class RiskView:
    """Risk in line: the ``RiskEngine`` fed fills and marks, its state as execution reads it."""

    def __init__(self, engine: Any, clock: SimTime) -> None:
        self.engine = engine
        self.clock = clock
        self.rec = np.zeros(1, M.RiskState)
        self._limits = RiskLimits.permissive()
        self.fills: list[tuple] = []
        self._marked = False
        self.publish()

    def limits(self) -> RiskLimits:
        return self._limits

    def publish(self) -> None:
        self.engine.write_state(self.rec, self.clock.t)
        self._limits = RiskLimits.from_words(RISK_STATE_STRUCT.unpack_from(self.rec))

    def on_exec(self, row: tuple) -> None:
        """An OrderEvent tuple (dtype order) execution published."""
        if (row[1] == M.ORDER_FILLED or row[1] == M.ORDER_PARTIALLY_FILLED) and row[12] > 0:
            self.fills.append(row)

    def on_mark(self, sid: int, bid: int, ask: int) -> None:
        """A BookUpdate's top: risk marks at the integer mid (as the risk process does)."""
        if bid and ask:
            self.engine.on_mark(sid, (bid + ask) // 2)
            self._marked = True

    @property
    def pending(self) -> bool:
        """A fill or a mark arrived that ``settle`` has not applied."""
        return self._marked or bool(self.fills)

    def settle(self) -> int:
        """Apply what arrived, evaluate (the UTC day on the simulated clock), publish if changed."""
        eng = self.engine
        n = len(self.fills)
        for r in self.fills:
            eng.on_fill(r[2], r[3], r[4], r[12], r[11], r[13])
        self.fills.clear()
        if n or self._marked:
            self._marked = False
            eng.evaluate(self.clock.now_s())
            if eng.dirty:
                self.publish()
        return n


def book_layout(depth: int) -> tuple[Any, np.ndarray]:
    """(the struct a ring read of a BookUpdate uses, a one-row int64 buffer of that record)."""
    dt = M.book_update_dtype(depth)
    return struct_for(dt), np.zeros((1, dt.itemsize // 8), np.int64)


