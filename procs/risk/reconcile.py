"""Reconciliation with the exchange: the venue's account snapshot, every ``interval_s`` (and its
margin brackets, until they came once).

Runs in its own thread: two small blocking requests every few seconds need no event loop, the
agent's loop is a polling loop rather than asyncio, and blocking socket I/O releases the GIL,
so the hot loop only ever pays for a ``deque.popleft`` of a finished result. Each request has a
timeout, so a hung exchange delays reconciliation and never the agent. The thread hands results
over through a deque and calls ``wake`` (the agent's Waiter semaphore) so a parked agent sees
them at once. What is asked, and how, is the venue adapter's (``AccountSource``).
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
                 wake: Callable[[], None] | None = None, symbols: list[str] | None = None) -> None:
        self.account = account
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
        """One account snapshot (blocking); never raises."""
        t0 = time.monotonic_ns()
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
                               tiers=self.tiers, position_times=dict(snap.position_times),
                               duration_ns=time.monotonic_ns() - t0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.results.append(self.check_once())
            if self.wake is not None:
                self.wake()
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout_s * 2 + 1)
