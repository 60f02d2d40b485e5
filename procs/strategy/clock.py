"""Clocks for the strategy engine: timers and cooldowns read time through one of these, so a
replay can drive simulated time instead of the host's monotonic clock."""

from __future__ import annotations

import time


class MonotonicClock:
    """Live time: ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for every process)."""

    now_ns = staticmethod(time.monotonic_ns)


class ManualClock:
    """Time that moves only when told (tests, lockstep replay)."""

    def __init__(self, start_ns: int = 0) -> None:
        self.t = start_ns

    def now_ns(self) -> int:
        return self.t

    def set(self, t_ns: int) -> None:
        self.t = t_ns

    def advance(self, dt_ns: int) -> int:
        self.t += dt_ns
        return self.t
