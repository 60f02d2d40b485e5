"""The simulated clock of a replay: one state block ``sim.clock`` written by exchange_sim.

In a replay (``b25 replay``) the time every process acts on is the recording's, not the host's:
the simulator stores the exchange time (ns) of the event it is about to serve in ``sim.clock``
before it serves it, and processes started with their section's ``sim_clock = true`` read
their clock from here (strategy timers and cooldowns, execution's order-rate window, risk's
UTC day). Live deployments never create the block.

The block is a state block of one 64-byte record (``t_ns``, then padding). It has one writer
and an aligned int64 store/load is single-copy atomic on x86-64 (the only architecture b25
runs on, see shm/sequence.py), so readers load ``t_ns`` directly, without the seqlock retry:
the clock is read on every duty cycle.
"""

from __future__ import annotations

import time

import numpy as np

from shm import layout as L
from shm.segment import Segment
from shm.seqlock import StateWriter

SIM_CLOCK = "sim.clock"
ClockRecord = np.dtype([("t_ns", "<i8"), ("events", "<i8"), ("_pad", "<i8", (6,))])


class SimClockWriter:
    """The simulator's side: ``set(t_ns)`` before serving an event."""

    def __init__(self, instance: str) -> None:
        self._w = StateWriter.create(instance, SIM_CLOCK, ClockRecord)
        self._t = self._w.records["t_ns"]
        self._n = self._w.records["events"]
        self._w.heartbeat()

    def set(self, t_ns: int, events: int) -> None:
        # never backwards: a recording's exchange times can step back by a few ms between streams
        if t_ns > self._t[0]:
            self._t[0] = t_ns
        self._n[0] = events

    @property
    def now_ns(self) -> int:
        return int(self._t[0])

    def close(self, unlink: bool = True) -> None:
        self._t = self._n = None  # type: ignore[assignment]
        self._w.close(unlink=unlink)


class SimClock:
    """A reader with the engine-clock shape (``now_ns()``), attached to ``sim.clock``."""

    def __init__(self, instance: str, timeout: float = 10.0) -> None:
        self.seg = Segment.attach(instance, SIM_CLOCK, L.KIND_STATE, ClockRecord, timeout=timeout)
        self._t = self.seg.records(ClockRecord)["t_ns"]

    def now_ns(self) -> int:
        return int(self._t[0])

    def now_s(self) -> float:
        """Seconds since the epoch on the simulated clock (for UTC day boundaries)."""
        return self._t[0] / 1e9

    def close(self) -> None:
        self._t = None  # type: ignore[assignment]
        self.seg.close()


def wall_or_sim(clock: SimClock | None) -> float:
    """``time.time()`` live, the simulated clock's seconds in a replay."""
    return time.time() if clock is None else clock.now_s()
