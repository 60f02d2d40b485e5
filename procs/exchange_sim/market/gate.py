"""``SourceGate``: pause, resume and single-step a market source (checkpoints, lockstep replay).

While paused the true book and every stream stand still; ``step(n)`` lets exactly ``n`` more
events (generated events, or recorded frames in replay) through and pauses again, so a harness
can advance the market one event at a time and check the pipeline after each.
"""

from __future__ import annotations

import asyncio
import time


class SourceGate:
    """The market source asks ``passing()`` before each event and awaits ``wait()`` when not."""

    def __init__(self) -> None:
        self.running = True
        self.budget = 0  # events still allowed through while paused
        self.stepped = 0  # events let through by step() so far
        self._wake = asyncio.Event()

    def pause(self) -> None:
        self.running = False

    def resume(self) -> None:
        self.running = True
        self._wake.set()

    def step(self, n: int) -> None:
        self.budget += max(0, n)
        self._wake.set()

    async def wait(self) -> float:
        """Block until the next event may go; returns the seconds spent blocked."""
        t0 = time.monotonic()
        while not self.running:
            if self.budget > 0:
                self.budget -= 1
                self.stepped += 1
                break
            self._wake.clear()
            await self._wake.wait()
        return time.monotonic() - t0
