"""Idle strategies: what an agent does when a duty cycle found no work.

Chosen by alias in config (``spin``, ``yield``, ``sleep``, ``block``, ``backoff``). Each has
``idle(work_count)`` (called after every duty cycle; ``work_count > 0`` resets it) and
``reset()``. ``backoff`` is the default: on a shared 2-core machine five spinning processes
starve each other, while a blocked consumer is woken in a few microseconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import posix_ipc

from . import layout as L
from .segment import shm_name
from .sequence import full_fence


class IdleStrategy:
    alias = ""

    def idle(self, work_count: int = 0) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        pass


class SpinIdle(IdleStrategy):
    """Busy-poll: lowest latency, a whole core at 100% CPU — only for isolated cores."""

    alias = "spin"

    def idle(self, work_count: int = 0) -> None:
        pass


class YieldIdle(IdleStrategy):
    """sched_yield between polls: still ~100% CPU, but lets same-core work run."""

    alias = "yield"

    def idle(self, work_count: int = 0) -> None:
        if work_count <= 0:
            os.sched_yield()


class SleepIdle(IdleStrategy):
    """Sleep a fixed period: little CPU, latency up to the period plus timer slack."""

    alias = "sleep"

    def __init__(self, period_s: float = 0.0005) -> None:
        self.period_s = period_s

    def idle(self, work_count: int = 0) -> None:
        if work_count <= 0:
            time.sleep(self.period_s)


class Waiter:
    """A process's wake-up semaphore plus the consumer slots that may flag it as asleep.

    The producer posts the semaphore only when a consumer slot says SLEEPING, so a busy
    pipeline pays no syscall per record.
    """

    def __init__(self, instance: str, agent: str) -> None:
        self.token = L.name_hash(f"{instance}/{agent}") & 0x7FFFFFFF or 1
        self.sem_name = wake_sem_name(instance, self.token)
        self.sem = posix_ipc.Semaphore(self.sem_name, posix_ipc.O_CREAT, mode=0o600, initial_value=0)
        self._slots: list[tuple[memoryview, int]] = []  # (header words, consumer line index)
        self._has_work: list[Callable[[], bool]] = []

    def register(self, words: memoryview, slot: int, has_work: Callable[[], bool]) -> None:
        """Called by a Consumer: this slot may sleep on this waiter."""
        words[L.consumer_word(slot, L.C_WAKE_TOKEN)] = self.token
        words[L.W_WAITER_EPOCH] += 1  # producers notice and start checking our SLEEPING flag
        self._slots.append((words, slot))
        self._has_work.append(has_work)

    def park(self, timeout_s: float) -> bool:
        """Sleep until a producer posts or the timeout passes (never misses a wake-up).

        True when woken by a producer (a record, or a ``Producer.prewake`` heads-up) or when
        work was already there; False on a timeout or a signal."""
        for words, slot in self._slots:
            words[L.consumer_word(slot, L.C_SLEEPING)] = 1
        full_fence()  # SLEEPING must be visible before we re-check the cursors
        woken = True
        try:
            if not any(f() for f in self._has_work):
                try:
                    self.sem.acquire(timeout_s)
                except (posix_ipc.BusyError, posix_ipc.SignalError):
                    woken = False  # a timeout or a signal (SIGTERM): the loop checks its stop flag
        finally:
            for words, slot in self._slots:
                words[L.consumer_word(slot, L.C_SLEEPING)] = 0
        self.drain()
        return woken

    def drain(self) -> None:
        """Swallow extra posts so the next park really waits."""
        try:
            while True:
                self.sem.acquire(0)
        except posix_ipc.BusyError:
            pass

    def _forget_slots(self) -> None:
        """Take our wake token off every consumer slot: producers stop posting us."""
        for words, slot in self._slots:
            try:
                words[L.consumer_word(slot, L.C_WAKE_TOKEN)] = 0
            except (ValueError, IndexError):
                pass
        self._slots.clear()
        self._has_work.clear()

    def close(self, unlink: bool = True) -> None:
        self._forget_slots()
        try:
            self.sem.close()
        except posix_ipc.ExistentialError:
            pass
        if unlink:
            try:
                posix_ipc.unlink_semaphore(self.sem_name)
            except posix_ipc.ExistentialError:
                pass


def wake_sem_name(instance: str, token: int) -> str:
    return shm_name(instance, f"wake.{token:x}")


FIFO_TOKEN = 1 << 31  # a wake token with this bit names a FIFO, not a semaphore
FIFO_DIR = "/dev/shm"


def wake_fifo_path(instance: str, token: int) -> str:
    """``/dev/shm/b25fifo.<instance>.<token>``: outside the ``b25.`` prefix, so segment tools
    never try to map it."""
    return f"{FIFO_DIR}/b25fifo.{instance}.{token & 0x7FFFFFFF:x}"


class FdWaiter(Waiter):
    """A Waiter an event loop can watch: producers write a byte to a FIFO instead of posting a
    semaphore, so an asyncio process wakes straight from its epoll (no thread hop).

    Use ``fileno()`` with ``loop.add_reader``; ``arm()`` before going idle (True = work is
    already there, do not wait) and ``disarm()`` when woken.
    """

    def __init__(self, instance: str, agent: str) -> None:  # noqa: D107 - no semaphore
        self.token = (L.name_hash(f"{instance}/{agent}") & 0x7FFFFFFF or 1) | FIFO_TOKEN
        self.path = wake_fifo_path(instance, self.token)
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            pass
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # no EOF when producers come and go
        self.sem = None  # type: ignore[assignment]
        self.sem_name = ""
        self._slots = []
        self._has_work = []

    def fileno(self) -> int:
        return self.fd

    def arm(self) -> bool:
        """Flag every slot SLEEPING, fence, re-check: True when work arrived meanwhile."""
        for words, slot in self._slots:
            words[L.consumer_word(slot, L.C_SLEEPING)] = 1
        full_fence()  # SLEEPING visible before the cursors are re-read (see shm.sequence)
        if any(f() for f in self._has_work):
            self.disarm()
            return True
        return False

    def disarm(self) -> None:
        for words, slot in self._slots:
            words[L.consumer_word(slot, L.C_SLEEPING)] = 0
        self.drain()

    def drain(self) -> None:
        try:
            os.read(self.fd, 65536)  # a FIFO holds 64 KiB: one read empties it, no second call
        except BlockingIOError:
            pass

    def park(self, timeout_s: float) -> bool:
        """Blocking use outside an event loop (tests, tools); True when woken or work was there."""
        import select

        if self.arm():
            return True
        ready = select.select([self.fd], [], [], timeout_s)[0]
        self.disarm()
        return bool(ready)

    def close(self, unlink: bool = True) -> None:
        self._forget_slots()
        for fd in (self.fd, self._keep):
            try:
                os.close(fd)
            except OSError:
                pass
        if unlink:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class BlockIdle(IdleStrategy):
    """Block on the process's semaphore: ~0 CPU idle, a few microseconds to wake."""

    alias = "block"

    def __init__(self, waiter: Waiter, timeout_s: float = 0.05) -> None:
        self.waiter = waiter
        self.timeout_s = timeout_s
        self.on_wake: Callable[[], object] | None = None  # called when a producer's post ends a park

    def idle(self, work_count: int = 0) -> None:
        if work_count <= 0 and self.waiter.park(self.timeout_s) and self.on_wake is not None:
            self.on_wake()


class BackoffIdle(IdleStrategy):
    """Spin for a short time, then block: microsecond latency while events come close
    together, ~0 CPU idle.

    The spin phase is measured in time, not polls (a duty cycle may cost 0.1 us or 2 us): an
    event that follows within ``spin_us`` is caught without a kernel wake-up, and a quiet
    process gives its core back after that. ``spins`` caps the polls before the clock is first
    read. ``yields`` (default 0) puts ``sched_yield`` calls between the spin and the block; on a
    loaded machine a yield can return long after an event arrived, so none is the default
    (docs/decisions/004-backoff-idle.md).
    """

    alias = "backoff"

    def __init__(self, waiter: Waiter | None, spins: int = 16, yields: int = 0,
                 timeout_s: float = 0.05, spin_us: float = 150.0) -> None:
        self.waiter = waiter
        self.spins = spins
        self.yields = yields
        self.timeout_s = timeout_s
        self.spin_ns = int(spin_us * 1000)
        self._n = 0
        self._until = 0  # 0: timed spin not started; > 0: spinning until then; -1: over
        self._yielded = 0
        # called when a producer's post ends a park: the record, or a prewake's promise of one,
        # is on its way (the strategy engine holds its keep-warm tick back for it)
        self.on_wake: Callable[[], object] | None = None

    def idle(self, work_count: int = 0) -> None:
        if work_count > 0:
            self._n = 0
            self._until = 0
            return
        n = self._n
        self._n = n + 1
        if n < self.spins:
            return
        if self._until == 0:
            self._until = time.monotonic_ns() + self.spin_ns
            self._yielded = 0
            return
        if self._until > 0:
            if n & 15 or time.monotonic_ns() < self._until:  # the clock is read every 16th poll
                return
            self._until = -1
        if self._yielded < self.yields:
            self._yielded += 1
            os.sched_yield()
            return
        if self.waiter is not None:
            if self.waiter.park(self.timeout_s):
                # woken by a producer: a record is here or (prewake) about to come: spin again
                self._n = 0
                self._until = 0
                if self.on_wake is not None:
                    self.on_wake()
        else:
            time.sleep(0.0005)

    def reset(self) -> None:
        self._n = 0
        self._until = 0


ALIASES = ("spin", "yield", "sleep", "block", "backoff")


def make_idle(alias: str, waiter: Waiter | None = None) -> IdleStrategy:
    """An idle strategy by alias; ``block``/``backoff`` use the waiter (sleep-poll without one)."""
    if alias == "spin":
        return SpinIdle()
    if alias == "yield":
        return YieldIdle()
    if alias == "sleep":
        return SleepIdle()
    if alias == "block":
        if waiter is None:
            return SleepIdle()
        return BlockIdle(waiter)
    if alias == "backoff":
        return BackoffIdle(waiter)
    raise ValueError(f"unknown idle strategy: alias={alias!r} known={','.join(ALIASES)}")
