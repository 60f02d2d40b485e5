"""Idle strategies: aliases, and the block/backoff wake-up handshake."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from shm import layout as L
from shm.idle import BackoffIdle, BlockIdle, SleepIdle, SpinIdle, Waiter, YieldIdle, make_idle
from shm.ring import Consumer, Producer

REC = np.dtype([("seq", "<i8"), ("pad", "<i8", (7,))])


def test_make_idle_by_alias() -> None:
    assert isinstance(make_idle("spin"), SpinIdle)
    assert isinstance(make_idle("yield"), YieldIdle)
    assert isinstance(make_idle("sleep"), SleepIdle)
    assert isinstance(make_idle("backoff"), BackoffIdle)
    with pytest.raises(ValueError, match="unknown idle strategy: alias='fast'"):
        make_idle("fast")


def test_blocked_consumer_is_woken_by_publish_not_by_timeout(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    waiter = Waiter(instance, "agent")
    c = Consumer.attach(instance, "r", REC, "c", timeout=1, waiter=waiter)
    idle = BlockIdle(waiter, timeout_s=10.0)
    woke = threading.Event()

    def run() -> None:
        while not c.has_data():
            idle.idle(0)
        woke.set()

    t = threading.Thread(target=run)
    try:
        t.start()
        time.sleep(0.2)  # let it park on the semaphore
        assert not woke.is_set()
        assert p.seg.words[L.consumer_word(0, L.C_SLEEPING)] == 1
        p.try_publish(1, *([0] * 7))
        assert woke.wait(5.0), "the publish did not wake the parked consumer"
    finally:
        t.join(10)
        c.close()
        waiter.close()
        p.close(unlink=True)


def test_backoff_spins_for_its_time_then_yields_then_parks(instance: str) -> None:
    waiter = Waiter(instance, "agent")
    try:
        b = BackoffIdle(waiter, spins=3, yields=1, timeout_s=0.001, spin_us=2000)
        parked = []
        waiter.park = lambda t: parked.append(t)  # type: ignore[method-assign]  # count, do not sleep
        for _ in range(4):
            b.idle(0)  # 3 free polls, then the timed spin starts
        assert b._until > 0 and not parked
        time.sleep(0.003)  # past spin_us
        for _ in range(32):
            b.idle(0)
        assert b._until == -1 and b._yielded == 1 and parked  # yielded once, then parked
        b.idle(1)
        assert b._n == 0 and b._until == 0
    finally:
        waiter.close()


def test_fd_waiter_when_producer_publishes_then_fifo_becomes_readable(instance: str) -> None:
    import select

    from shm.idle import FdWaiter

    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    w = FdWaiter(instance, "agent")
    c = Consumer.attach(instance, "r", REC, "c", timeout=1, waiter=w)
    try:
        assert w.arm() is False  # nothing there: go idle
        assert select.select([w.fileno()], [], [], 0)[0] == []
        p.try_publish(1, *([0] * 7))
        assert select.select([w.fileno()], [], [], 5.0)[0] == [w.fileno()]  # woken by the publish
        w.disarm()
        assert select.select([w.fileno()], [], [], 0)[0] == []  # drained
        assert w.arm() is True  # the record is still unread: no waiting
    finally:
        c.close()
        w.close()
        p.close(unlink=True)


@pytest.mark.parametrize("kind", ["sem", "fifo"])
def test_restarted_consumer_when_producer_posts_then_new_waiter_is_woken(instance: str, kind: str) -> None:
    """A consumer that closed cleanly (its semaphore/FIFO unlinked) and came back under the same
    name registers a new one; the long-lived producer must post that, not its cached old handle."""
    from shm.idle import FdWaiter

    def make() -> Waiter:
        return FdWaiter(instance, "agent") if kind == "fifo" else Waiter(instance, "agent")

    def woken(w: Waiter) -> bool:
        if kind == "fifo":
            import select
            return bool(select.select([w.fileno()], [], [], 5.0)[0])  # type: ignore[attr-defined]
        try:
            w.sem.acquire(5.0)
            return True
        except Exception:
            return False

    p = Producer.create(instance, "r", REC, 64, L.POLICY_GATING, ("c",))
    words = p.seg.words
    sleeping = L.consumer_word(0, L.C_SLEEPING)
    try:
        for seq in range(3):  # the first consumer, then two restarts
            w = make()
            c = Consumer.attach(instance, "r", REC, "c", timeout=1, waiter=w)
            words[sleeping] = 1  # as park() would, before blocking
            p.try_publish(seq, *([0] * 7))
            assert woken(w), f"consumer incarnation {seq} was not woken"
            assert c.poll_one() is not None
            c.close()
            w.close(unlink=True)
    finally:
        p.close(unlink=True)


def test_prewake_when_consumer_parked_then_woken_and_backoff_spins_again(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    waiter = Waiter(instance, "agent")
    c = Consumer.attach(instance, "r", REC, "c", timeout=1, waiter=waiter)
    b = BackoffIdle(waiter, spins=0, timeout_s=10.0, spin_us=1e6)
    b._until = -1  # the spin phase is over: the next idle parks
    woke = threading.Event()

    def run() -> None:
        b.idle(0)  # parks until the prewake
        woke.set()

    t = threading.Thread(target=run)
    try:
        t.start()
        deadline = time.monotonic() + 5
        while p.seg.words[L.consumer_word(0, L.C_SLEEPING)] != 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not woke.is_set()
        p.prewake()  # nothing published: only a heads-up
        assert woke.wait(5.0), "prewake did not wake the parked consumer"
        assert not c.has_data()
        assert b._n == 0 and b._until == 0  # woken by a producer: spins again before parking
    finally:
        t.join(10)
        c.close()
        waiter.close()
        p.close(unlink=True)


def test_prewake_when_limited_to_a_consumer_then_only_it_is_posted(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST, ("a", "b"))
    wa, wb = Waiter(instance, "agent-a"), Waiter(instance, "agent-b")
    ca = Consumer.attach(instance, "r", REC, "a", timeout=1, waiter=wa)
    cb = Consumer.attach(instance, "r", REC, "b", timeout=1, waiter=wb)
    words = p.seg.words
    try:
        p.set_prewake(("a",))
        words[L.consumer_word(0, L.C_SLEEPING)] = words[L.consumer_word(1, L.C_SLEEPING)] = 1
        p.prewake()
        wa.sem.acquire(5.0)  # posted (raises BusyError if not)
        import posix_ipc
        with pytest.raises(posix_ipc.BusyError):
            wb.sem.acquire(0)
        assert words[L.consumer_word(1, L.C_SLEEPING)] == 1  # b still sleeps, unwoken
    finally:
        for c in (ca, cb):
            c.close()
        wa.close()
        wb.close()
        p.close(unlink=True)


@pytest.mark.parametrize("cls", [BlockIdle, BackoffIdle])
def test_on_wake_when_a_producer_ends_the_park_then_called_and_not_on_a_timeout(instance: str, cls: type) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    waiter = Waiter(instance, "agent")
    c = Consumer.attach(instance, "r", REC, "c", timeout=1, waiter=waiter)
    idle = cls(waiter, timeout_s=0.02) if cls is BlockIdle else cls(waiter, spins=0, timeout_s=0.02, spin_us=0)
    woken: list[float] = []
    idle.on_wake = lambda: woken.append(time.monotonic())
    try:
        for _ in range(5):
            idle.idle(0)  # nothing comes: each park ends on its timeout
        assert woken == []
        t = threading.Timer(0.05, lambda: p.prewake())  # a producer announces a record
        t.start()
        deadline = time.monotonic() + 5
        while not woken and time.monotonic() < deadline:
            idle.idle(0)
        t.join()
        assert len(woken) == 1
    finally:
        c.close()
        waiter.close()
        p.close(unlink=True)
