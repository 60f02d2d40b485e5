"""Memory ordering: the one module that reads and writes cursors and seqlock sequences.

b25 runs on x86-64 (checked in ``segment``), whose total store order gives us:
  * a store is never reordered with an earlier store (so "record, then cursor" publishes),
  * a load is never reordered with an earlier load (so "cursor, then record" consumes).
It does NOT stop a store from passing a later load (store->load). The only place that matters
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


class Sequence:
    """One int64 word in shared memory holding a sequence/cursor.

    ``words`` is an int64 memoryview over the segment header; aligned 8-byte loads and stores
    through it are single instructions, hence atomic.
    """

    __slots__ = ("_w", "_i")

    def __init__(self, words: memoryview, index: int) -> None:
        self._w = words
        self._i = index

    def get_acquire(self) -> int:
        """Load; later loads (the records) are not hoisted above it on x86-64."""
        return self._w[self._i]

    def set_release(self, value: int) -> None:
        """Store; earlier stores (the records) are visible before it on x86-64."""
        self._w[self._i] = value

    def get_plain(self) -> int:
        return self._w[self._i]

    def add_plain(self, n: int = 1) -> None:
        """Single-writer increment (only the owner of the word may call it)."""
        self._w[self._i] += n
