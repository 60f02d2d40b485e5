"""Circuit breaker for the order connection: CLOSED -> OPEN after N consecutive failures or
timeouts; OPEN -> HALF_OPEN after a cool-down (one probe request may go); the probe's success
closes it, its failure opens it again. Business rejections (4xx) are answers, not failures.

Policy while not CLOSED (documented in the README of the order path): new orders are denied
with DENY_BREAKER_OPEN, except the one half-open probe; cancels and status queries are always
attempted (they reduce risk, and their outcome is what closes the breaker).
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = ("CLOSED", "OPEN", "HALF_OPEN")


class Breaker:
    def __init__(self, failures: int, cooldown_s: float,
                 on_change: Callable[[int, int, int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.state = CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.probe_inflight = False
        self.opens = 0
        self.on_change = on_change  # (old, new, consecutive failures)
        self.clock = clock

    def _set(self, new: int) -> None:
        old = self.state
        if old == new:
            return
        self.state = new
        if new == OPEN:
            self.opens += 1
            self.opened_at = self.clock()
        if self.on_change is not None:
            self.on_change(old, new, self.consecutive)

    def allow_new(self) -> bool:
        """May a new order go now? In HALF_OPEN exactly one (the probe) is let through."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._set(HALF_OPEN)
        if self.state == HALF_OPEN and not self.probe_inflight:
            self.probe_inflight = True
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.probe_inflight = False
        self._set(CLOSED)

    def failure(self) -> None:
        self.consecutive += 1
        self.probe_inflight = False
        if self.state == HALF_OPEN or self.consecutive >= self.threshold:
            if self.state == OPEN:
                self.opened_at = self.clock()
            self._set(OPEN)
