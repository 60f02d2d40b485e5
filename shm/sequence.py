"""Memory ordering: what every cursor and sequence access in shm/ relies on, and the one fence.

Only shm/ reads or writes a segment's header words (cursors, SeqLock sequences, liveness
stamps): producers and consumers in ``ring``, the SeqLock in ``seqlock``, observers' reads in
``ring.RingHeader``. tests/shm/test_header_access.py fails on any other module that does.
The hot paths index the header's int64 memoryview inline rather than through a method here:
a Python call per cursor access would cost more than the access itself.

b25 runs on x86-64 (checked in ``segment``), whose total store order gives us:
  * a store is never reordered with an earlier store (so "record, then cursor" publishes),
  * a load is never reordered with an earlier load (so "cursor, then record" consumes).
Aligned 8-byte loads and stores through the memoryview are single instructions, hence atomic.
TSO does NOT stop a store from passing a later load (store->load). The only place that matters
is the sleep/wake handshake (consumer: set SLEEPING, then re-check the cursor; producer: store
the cursor, then check SLEEPING); both sides call ``full_fence()`` between the two.

CPython gives no fence instruction. ``full_fence`` takes and releases an uncontended lock:
glibc implements it with lock-prefixed atomic read-modify-writes, which are full barriers on
x86-64. Every blocking wait also has a timeout, so a wake-up could at worst be late, never lost.
"""

from __future__ import annotations

import threading

_fence_lock = threading.Lock()


def full_fence() -> None:
    """A full memory barrier (lock-prefixed RMW inside glibc's lock ops)."""
    _fence_lock.acquire()
    _fence_lock.release()
