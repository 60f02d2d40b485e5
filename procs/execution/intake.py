"""Reading the intent rings (``orders.strategy``, ``orders.manual``, ``orders.remote``) from the asyncio loop.

Rings are attached lazily (their producers, strategy and the TUI, may start later) and retried.
A batch is processed record by record and committed once: a crash mid-batch makes execution
read those intents again, and the engine skips every SUBMIT the journal already holds.

Two ways to learn of new intents without spinning the loop:
  * ``thread``: a thread parks on the process's Waiter semaphore (the producers post
    it when our consumer slot says it sleeps) and wakes the loop with ``call_soon_threadsafe``.
  * ``poll``: a coroutine polls, yields to the loop a few times, then sleeps ~1 ms (uvloop's
    timer resolution) between polls.
  * ``fd`` (default): the producers write a byte to a FIFO the loop watches
    (``shm.idle.FdWaiter``), so the loop wakes straight from epoll: one wake-up instead of a
    thread's plus the loop's; after a wake-up or an intent the loop polls for ``SPIN_NS``
    more before sleeping, so an intent that follows a strategy's prewake needs no wake-up.
    With ``on_prewake`` (execution's ``warm_on_prewake``), a wake-up that finds no intent
    first runs that callback (the engine's keep-warm) while the strategy is still deciding.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from procs.core import log
from procs.core.registry import ORDERS_MANUAL, ORDERS_REMOTE, ORDERS_STRATEGY
from shm.idle import FdWaiter, Waiter
from shm.registry import Registry
from shm.ring import Consumer

RINGS = (ORDERS_STRATEGY, ORDERS_MANUAL, ORDERS_REMOTE)  # the journal names a ring by its index here
# fd mode: after a wake-up or an intent, the loop keeps polling the rings (between its other
# callbacks) this long before it sleeps again, like the ``backoff`` idle strategy: a strategy
# prewakes execution as it starts deciding, and the intent then lands while we poll
SPIN_NS = 150_000
CONSUMER = "execution"


class Intake:
    def __init__(self, registry: Registry, instance: str, on_intent: Callable[[int, int, tuple, int], None],
                 ready: Callable[[], bool], mode: str = "thread",
                 fix_seq: Callable[[int, Consumer], None] | None = None, idle: str = "backoff",
                 on_error: Callable[[BaseException], None] | None = None,
                 on_prewake: Callable[[], object] | None = None) -> None:
        self.registry = registry
        self.instance = instance
        self.on_intent = on_intent
        self.ready = ready
        self.mode = mode
        self.spin = idle in ("spin", "yield")  # poll mode: never sleep
        self.on_error = on_error
        self.on_prewake = on_prewake  # fd mode: woken with no intent waiting (a prewake) -> warm up
        self.fix_seq = fix_seq  # (ring index, the consumer just attached) -> None, called once per attach
        self.consumers: list[Consumer | None] = [None] * len(RINGS)
        self.waiter: Waiter | None = (Waiter(instance, CONSUMER) if mode == "thread" else
                                      FdWaiter(instance, CONSUMER) if mode == "fd" else None)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False
        self.drained = threading.Event()
        self.drained.set()
        self._thread: threading.Thread | None = None
        self._poller: asyncio.Task | None = None
        self.reads = 0
        self._spin_until = 0

    def attach_missing(self) -> None:
        """Try once to attach every ring not attached yet (cheap when all are)."""
        for i, name in enumerate(RINGS):
            if self.consumers[i] is not None:
                continue
            try:
                c = self.registry.consumer(self.instance, name, CONSUMER, timeout=0, waiter=self.waiter)
            except (TimeoutError, FileNotFoundError, OSError):
                continue
            except ValueError as exc:  # a ring with another layout: say so once, keep retrying
                log.once(f"intake_attach:{name}", "error", "intake_attach_failed", ring=name, reason=str(exc))
                continue
            if self.fix_seq is not None:
                self.fix_seq(i, c)
            self.consumers[i] = c
            log.info("intake_attached", ring=name, position=c.position)
            if self.loop is not None:
                self.loop.call_soon(self.kick)

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.attach_missing()
        if self.mode == "thread":
            self._thread = threading.Thread(target=self._park_loop, name="intake-waiter", daemon=True)
            self._thread.start()
        elif self.mode == "fd":
            assert isinstance(self.waiter, FdWaiter)
            self.loop.add_reader(self.waiter.fileno(), self._on_wake)
            self.loop.call_soon(self.drain)
        else:
            self._poller = self.loop.create_task(self._poll_loop())

    def kick(self) -> None:
        """Drain now (after reconciliation finished, or a ring was attached)."""
        self.drained.clear()
        self.drain()

    # -- reading ------------------------------------------------------------------------------
    def drain_once(self) -> int:
        n = 0
        for i, c in enumerate(self.consumers):
            if c is None:
                continue
            batch = c.poll(256)
            k = len(batch)
            if not k:
                continue
            # the slots stay ours until commit (gating consumer): read them with the ring's own
            # struct (flat tuples in dtype order, as tolist gives them, without numpy's per-field
            # conversion); commit after the batch, so a crash mid-batch reads it again
            start = c.position
            unpack, mm, off, mask, size = c.struct.unpack_from, c.seg.mm, c.data_offset, c.mask, c.record_size
            rows = [unpack(mm, off + ((start + j) & mask) * size) for j in range(k)]
            t_read = time.monotonic_ns()
            for j in range(k):
                self.on_intent(i, start + j, rows[j], t_read)
            c.commit()
            n += k
        self.reads += n
        return n

    def _guarded_drain(self) -> int:
        """drain_once; an exception is a broken invariant: stop reading and tell the process."""
        try:
            return self.drain_once()
        except Exception as exc:
            self.stopping = True
            log.error("intake_failed", error=repr(exc))
            if self.on_error is not None:
                self.on_error(exc)
            return 0

    def drain(self) -> None:
        """Loop side (thread and fd modes): read everything, then go idle again."""
        if not self.ready() or self.stopping:
            return
        n = self._guarded_drain()
        if n and any(c is not None and c.has_data() for c in self.consumers):
            self.loop.call_soon(self.drain)  # type: ignore[union-attr]  # more arrived: keep the loop fair
            return
        if self.mode == "fd":
            now = time.monotonic_ns()
            if n:
                self._spin_until = now + SPIN_NS
            if now < self._spin_until:  # just woken or just busy: poll from the loop a moment longer
                self.loop.call_soon(self.drain)  # type: ignore[union-attr]
                return
            if self.waiter.arm():  # type: ignore[union-attr]  # work arrived while we flagged: no sleep
                self.loop.call_soon(self.drain)  # type: ignore[union-attr]
            return
        self.drained.set()

    def spinning(self) -> bool:
        """fd mode: polling after a wake-up or an intent (an intent may land any moment)."""
        return time.monotonic_ns() < self._spin_until

    def poke(self) -> None:
        """Housekeeping (every tick): drain if intents wait. A safety net for a lost wake-up,
        which in fd mode would otherwise leave the loop asleep with no timeout."""
        if self.mode == "fd" and any(c is not None and c.has_data() for c in self.consumers):
            self.drain()

    def _on_wake(self) -> None:
        """fd mode: a producer wrote to our FIFO: an intent, or (prewake) one about to come."""
        if (self.on_prewake is not None and not self.stopping and self.ready()
                and not any(c is not None and c.has_data() for c in self.consumers)):
            self.on_prewake()  # nothing yet: the intent is being decided; warm the path it will take
        self._spin_until = time.monotonic_ns() + SPIN_NS
        self.drain()
        # the wake-up's own bookkeeping after the intents it was for: clearing SLEEPING and
        # emptying the FIFO cost tens of microseconds cold (docs/decisions/009-execution-fd-intake.md);
        # a post that lands meanwhile is harmless (we poll SPIN_NS, and arm() re-checks)
        self.waiter.disarm()  # type: ignore[union-attr]

    def _park_loop(self) -> None:
        assert self.waiter is not None and self.loop is not None
        while not self.stopping:
            if not self.drained.wait(0.1):
                continue
            if not any(c is not None and c.has_data() for c in self.consumers):
                self.waiter.park(0.05)
            if self.stopping:
                break
            if any(c is not None and c.has_data() for c in self.consumers) and self.ready():
                self.drained.clear()
                try:
                    self.loop.call_soon_threadsafe(self.drain)
                except RuntimeError:  # the loop closed under us: we are stopping
                    break

    async def _poll_loop(self) -> None:
        idle = 0
        while not self.stopping:
            n = self._guarded_drain() if self.ready() else 0
            if n:
                idle = 0
                await asyncio.sleep(0)
                continue
            idle += 1
            await asyncio.sleep(0 if self.spin or idle < 50 else 0.001)  # uvloop timers have 1 ms resolution

    def close(self) -> None:
        self.stopping = True
        self.drained.set()
        if self.mode == "fd" and self.loop is not None and self.waiter is not None:
            try:
                self.loop.remove_reader(self.waiter.fileno())
            except (ValueError, RuntimeError):
                pass
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._poller is not None:
            self._poller.cancel()
        for c in self.consumers:
            if c is not None:
                c.close()
        if self.waiter is not None:
            self.waiter.close(unlink=True)
