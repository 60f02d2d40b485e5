"""Reconciliation with the exchange: the venue's account snapshot, every ``interval_s`` (and its
margin brackets, until they came once).

Runs in its own thread: two small blocking requests every few seconds need no event loop, the
agent's loop is a polling loop rather than asyncio, and blocking socket I/O releases the GIL,
so the hot loop only ever pays for a ``deque.popleft`` of a finished result. Each request has a
timeout, so a hung exchange delays reconciliation and never the agent. The thread hands results
over through a deque and calls ``wake`` (the agent's Waiter semaphore) so a parked agent sees
them at once. What is asked, and how, is the venue adapter's (``AccountSource``).

A result is handed over ``settle_s`` after its answer, not at once: the venue's answer can hold
fills whose events are still on their way to risk, and by then they have come, so the engine
can tell them from a fill that never comes (``RiskEngine.on_reconcile``).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from procs.core import log
from procs.venue.messages import VenueError
from procs.venue.protocols import AccountSource

from .engine import ReconcileResult


class Reconciler:
    """Asks ``account`` every ``interval_s`` in a daemon thread; results in ``results``."""

    def __init__(self, account: AccountSource, interval_s: float, timeout_s: float,
                 wake: Callable[[], None] | None = None, symbols: list[str] | None = None,
                 settle_s: float = 0.0) -> None:
        self.account = account
        self.settle_s = min(settle_s, interval_s)
        self.symbols = symbols or []
        # the margin brackets, asked until they come once, then sent with every result (a result
        # can be dropped: the seed at start asks twice when the exec ring appears meanwhile)
        self.tiers: dict = {}
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.wake = wake
        self.results: collections.deque[ReconcileResult] = collections.deque(maxlen=64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="risk-reconcile", daemon=True)

    def check_once(self) -> ReconcileResult:
        """One account snapshot (blocking); never raises. ``asked_ms``/``answered_ms``: our wall
        clock around the requests, so the engine knows which fills the answer may hold."""
        t0 = time.monotonic_ns()
        asked_ms = time.time_ns() // 1_000_000
        try:
            snap = self.account.snapshot()
        except VenueError as exc:
            return ReconcileResult(ok=False, error=str(exc)[:200], duration_ns=time.monotonic_ns() - t0)
        if not self.tiers and self.symbols:
            try:
                self.tiers = self.account.margin_tiers(self.symbols)
            except VenueError as exc:  # asked again next time; the snapshot itself is good
                log.once("margin_tiers_failed", "warn", "margin_tiers_failed", reason=str(exc)[:200])
        return ReconcileResult(ok=True, positions=dict(snap.positions), entries=dict(snap.entry_prices),
                               wallet_balance=snap.wallet_balance, unrealized=snap.unrealized,
                               open_order_margin=snap.open_order_margin, leverage=dict(snap.leverage),
                               tiers=self.tiers, asked_ms=asked_ms, answered_ms=time.time_ns() // 1_000_000,
                               duration_ns=time.monotonic_ns() - t0)

    def _run(self) -> None:
        while not self._stop.is_set():
            res = self.check_once()
            if res.ok and self._stop.wait(self.settle_s):
                return
            self.results.append(res)
            if self.wake is not None:
                self.wake()
            self._stop.wait(self.interval_s - (self.settle_s if res.ok else 0.0))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout_s * 2 + 1)
