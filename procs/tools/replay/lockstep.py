"""The lockstep barrier: is the pipeline quiescent, i.e. has it consumed and answered everything?

exchange_sim (with ``[sim] lockstep = true``) awaits ``Barrier.wait`` before serving every
recorded frame — once at the previous frame's time, then, with the clock moved, once at the
frame's own (procs/tools/replay/__init__.py) — and once after the last one; the replay harness uses
``Barrier.wait_blocking`` from outside to know a free-running replay has drained. No message is exchanged: the barrier
reads counters and ring cursors the processes keep in shared memory anyway, plus a few gauges
they keep only in a replay (``sim_clock`` in their config sections).

The pipeline is quiescent when all of these hold, read in this order (upstream first: every
process writes its "done" marker *after* everything the work caused is published, and x86-64
keeps both the writer's stores and our loads in order, so a marker that says "caught up" proves
that what it caused is already visible to the loads that follow)::

    1  market_data  HANDLED == frames the simulator sent to market streams
                    SNAPSHOTS_PENDING == 0 (no REST snapshot wanted or in flight)
    2  md.book, md.trade write cursors
    3  strategy     BOOKS_DONE, TRADES_DONE == those cursors; CLOCK_SEEN >= t or NEXT_TIMER > t
       risk         BOOK_DONE == md.book cursor
    4  execution    USER_EVENTS == user-data events the simulator delivered;  then  PENDING ==
                    the requests the simulator holds (PENDING: requests queued or unanswered,
                    events waiting for the exec ring, catch-ups; the simulator holds the requests
                    still travelling in simulated time and the answers not delivered yet, so
                    equality means nothing is on a socket)
    5  orders.strategy write cursor == execution's consumer cursor (committed after handling)
    6  exec write cursor == strategy EXEC_DONE == risk EXEC_DONE (read in step 3: an event
       published since then makes them differ, and we look again)

A check that fails is retried after yielding to the simulator's event loop (which is where the
simulator answers the orders the pipeline sends meanwhile). When a strategy timer is due at
``t`` the barrier posts the strategy's wake semaphore, so a parked strategy fires it now rather
than at its idle timeout. Only processes whose counters segment exists take part (a replay may
run without risk, say). What it does not see: a control command (risk's cancel-all on a kill
switch) sent over a message queue; it is answered at the next event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import posix_ipc

from procs.core import services
from procs.core.registry import EXEC, MD_BOOK, MD_TRADE, ORDERS_STRATEGY
from shm import layout as L
from shm.counters import COUNTER_DTYPE, counter_words
from shm.idle import wake_sem_name
from shm.ring import RingHeader
from shm.segment import Segment, open_raw, shm_name

_FAR = 1 << 62


class _Counters:
    """Read-only view of one process's counters by label (resolved once)."""

    def __init__(self, seg: Segment) -> None:
        self.seg = seg
        rows = seg.records(COUNTER_DTYPE)
        self.index = {rows[i]["label"].decode(errors="replace"): i for i in range(len(rows)) if rows[i]["label"]}
        self.flat = counter_words(seg)

    def get(self, label: str) -> int:
        i = self.index.get(label)
        return int(self.flat[i * 8]) if i is not None else 0

    def has(self, label: str) -> bool:
        return label in self.index


class Barrier:
    """Quiescence of one instance's pipeline (see the module docstring)."""

    def __init__(self, instance: str, frames_sent: Callable[[], int], user_events_sent: Callable[[], int],
                 spin: int = 20, nap_s: float = 0.00005, held: Callable[[], int] = lambda: 0) -> None:
        self.instance = instance
        self.frames_sent = frames_sent
        self.user_events_sent = user_events_sent
        self.held = held  # requests the simulator holds (in flight in simulated time, or their answer)
        self.spin = spin  # loop turns before we also nap between checks
        self.nap_s = nap_s
        self.c: dict[str, _Counters] = {}
        self.r: dict[str, RingHeader] = {}
        self._wake: posix_ipc.Semaphore | None = None
        self._woken_for = -1
        self.waits = 0  # events we had to wait for (not quiescent at the first look)
        self.checks = 0
        self.wait_ns = 0
        self.blocked: dict[str, int] = {}  # failed looks by the first condition that failed

    # -- attaching --------------------------------------------------------------------------
    def attach(self) -> None:
        """Map what exists now (idempotent); processes not running are left out."""
        for proc in services.ON_RINGS:
            if proc not in self.c:
                seg = open_raw(shm_name(self.instance, f"counters.{proc}"))
                if seg is not None:
                    self.c[proc] = _Counters(seg)
        for ring in (MD_BOOK, MD_TRADE, ORDERS_STRATEGY, EXEC):
            if ring not in self.r:
                seg = open_raw(shm_name(self.instance, ring))
                if seg is not None:
                    self.r[ring] = RingHeader(seg)
        if self._wake is None and "strategy" in self.c:
            token = L.name_hash(f"{self.instance}/strategy") & 0x7FFFFFFF or 1
            try:
                self._wake = posix_ipc.Semaphore(wake_sem_name(self.instance, token))
            except posix_ipc.ExistentialError:
                self._wake = None

    def attached(self) -> dict[str, bool]:
        """Which named consumers the pipeline needs are attached (the harness waits for all)."""
        self.attach()
        out = {}
        for ring in (MD_BOOK, MD_TRADE, ORDERS_STRATEGY, EXEC):
            consumers = services.consumers_of(ring)
            r = self.r.get(ring)
            for name in consumers:
                if name in self.c:
                    out[f"{ring}/{name}"] = r is not None and r.consumer_attached(name)
        return out

    def close(self) -> None:
        for c in self.c.values():
            c.flat = None  # type: ignore[assignment]
            c.seg.close()
        for r in self.r.values():
            r.seg.close()
        self.c.clear()
        self.r.clear()
        if self._wake is not None:
            self._wake.close()
            self._wake = None

    # -- the check --------------------------------------------------------------------------
    def quiescent(self, t_ns: int) -> bool:
        """One look, in the order of the module docstring."""
        self.checks += 1
        c, r = self.c, self.r
        md = c.get("market_data")
        if md is not None:
            if md.get("handled") != self.frames_sent() or md.get("snapshots_pending"):
                return self._no("market_data")
        book = r[MD_BOOK].write_cursor() if MD_BOOK in r else 0
        trade = r[MD_TRADE].write_cursor() if MD_TRADE in r else 0
        st = c.get("strategy")
        st_exec = -1
        if st is not None:
            st_exec = st.get("exec_done")
            if st.get("books_done") != book or st.get("trades_done") != trade:
                return self._no("strategy_md")
            if st.get("clock_seen") < t_ns and st.get("next_timer") <= t_ns:
                self._wake_strategy(t_ns)
                return self._no("strategy_timer")
        rk = c.get("risk")
        rk_exec = -1
        if rk is not None:
            rk_exec = rk.get("exec_done")
            if rk.get("book_done") != book:
                return self._no("risk_md")
        ex = c.get("execution")
        if ex is not None:
            if ex.get("user_events") != self.user_events_sent():
                return self._no("execution_user_stream")
            if ex.get("pending") != self.held():
                return self._no("execution_pending")
            orders = r.get(ORDERS_STRATEGY)
            if orders is not None and orders.consumer_cursor("execution") != orders.write_cursor():
                return self._no("execution_intents")
        ev = r[EXEC].write_cursor() if EXEC in r else 0
        if st is not None and st_exec != ev:
            return self._no("strategy_exec")
        if rk is not None and rk_exec != ev:
            return self._no("risk_exec")
        return True

    def next_timer(self) -> int:
        """The strategy's earliest timer deadline (simulated ns; far away when it has none)."""
        st = self.c.get("strategy")
        v = st.get("next_timer") if st is not None else 0
        return v if v > 0 else _FAR

    def _no(self, why: str) -> bool:
        self.blocked[why] = self.blocked.get(why, 0) + 1
        return False

    def _wake_strategy(self, t_ns: int) -> None:
        if self._wake is not None and self._woken_for != t_ns:
            self._woken_for = t_ns
            self._wake.release()

    async def wait(self, t_ns: int) -> None:
        """Return when the pipeline is quiescent for simulated time ``t_ns`` (see the docstring)."""
        if not self.c:
            self.attach()
        if self.quiescent(t_ns):
            return
        self.waits += 1
        t0 = time.monotonic_ns()
        n = 0
        while True:
            n += 1
            # the loop must turn: the simulator answers the pipeline's orders on it meanwhile
            await asyncio.sleep(0)
            if self.quiescent(t_ns):
                break
            if n >= self.spin:
                # give the core away: on 2 cores four busy processes wait for it. A blocking
                # nanosleep (~50-100 us) because the event loop's timers have 1 ms resolution.
                time.sleep(self.nap_s)
        self.wait_ns += time.monotonic_ns() - t0

    def wait_blocking(self, t_ns: int, timeout_s: float, sleep_s: float = 0.001) -> bool:
        """The same from another process (the harness after a free-running replay)."""
        self.attach()
        deadline = time.monotonic() + timeout_s
        while not self.quiescent(t_ns):
            if time.monotonic() > deadline:
                return False
            time.sleep(sleep_s)
        return True

    def stats(self) -> dict:
        return {"waits": self.waits, "checks": self.checks, "wait_s": round(self.wait_ns / 1e9, 3),
                "blocked_by": dict(sorted(self.blocked.items()))}
