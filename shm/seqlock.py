"""SeqLock state blocks: the latest value of something (book, risk state, process status).

One writer, many readers, no waiting: the writer makes the sequence odd, writes, makes it even;
a reader copies the payload between two equal even reads of the sequence and retries otherwise.
Ordering (x86-64 TSO, see ``sequence``): the writer's stores stay in program order, the
reader's loads stay in program order, so an unchanged even sequence means an untorn copy.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from . import layout as L
from .segment import Segment

T = TypeVar("T")
_SEQ = L.W_SEQLOCK  # a module constant: the hot-path read saves the attribute lookup


class StateWriter:
    """Owner of a state block of ``count`` records of ``dtype``."""

    @classmethod
    def create(cls, instance: str, name: str, dtype: np.dtype, count: int = 1) -> StateWriter:
        seg = Segment.create_or_open(instance, name, L.KIND_STATE, count, dtype)
        return cls(seg, dtype)

    def __init__(self, seg: Segment, dtype: np.dtype) -> None:
        self.seg = seg
        self.dtype = np.dtype(dtype)
        self.records = seg.records(self.dtype)
        self._w = seg.words
        self._data_offset = self._w[L.W_DATA_OFFSET]
        self._size = self.dtype.itemsize
        if self._w[L.W_SEQLOCK] & 1:  # a previous writer died inside a write: reopen the lock
            self._w[L.W_SEQLOCK] += 1

    def begin(self) -> None:
        """Enter a write: readers that overlap it will retry."""
        self._w[L.W_SEQLOCK] += 1

    def end(self) -> None:
        """Leave a write: the new value becomes visible as a whole."""
        self._w[L.W_SEQLOCK] += 1

    def write(self, index: int, values: np.void | tuple) -> None:
        """Replace record ``index`` with ``values`` under the lock."""
        self.begin()
        self.records[index] = values
        self.end()

    def write_bytes(self, index: int, src: memoryview | bytes) -> None:
        """Replace record ``index`` with ``record_size`` raw bytes under the lock.

        A plain byte copy: a numpy structured-scalar assignment of a BookUpdate costs a few us
        (it walks every field), this costs a memmove. ``src`` must have the record's layout.
        """
        a = self._data_offset + index * self._size
        self.begin()
        self.seg.buf[a:a + self._size] = src
        self.end()

    def write_all(self, values: np.ndarray) -> None:
        self.begin()
        self.records[:] = values
        self.end()

    @property
    def version(self) -> int:
        return self._w[L.W_SEQLOCK] >> 1

    def heartbeat(self) -> None:
        self._w[L.W_HEARTBEAT_NS] = time.monotonic_ns()
        self._w[L.W_PRODUCER_PID] = os.getpid()

    def close(self, unlink: bool = False) -> None:
        self.records = None  # type: ignore[assignment]
        if unlink:
            self.seg.unlink()
        self.seg.close()


class StateReader:
    """The one SeqLock reader: an untorn copy of a state block, or of one record's values.

    ``read`` copies every record; ``read_if_changed`` and ``unpack_if_changed`` first compare the
    sequence with the version the caller holds (one load) and return None when no write has
    finished since. ``unpack_if_changed`` is the hot-path read: one ``struct.unpack_from`` of a
    record between two loads of the sequence, no numpy (a copy plus ``tolist`` costs ~17 us).
    """

    @classmethod
    def attach(cls, instance: str, name: str, dtype: np.dtype, timeout: float = 5.0) -> StateReader:
        seg = Segment.attach(instance, name, L.KIND_STATE, dtype, timeout=timeout)
        return cls(seg, dtype)

    def __init__(self, seg: Segment, dtype: np.dtype) -> None:
        self.seg = seg
        self.dtype = np.dtype(dtype)
        self.records = seg.records(self.dtype)
        self._w = seg.words
        self._mm = seg.mm
        self._data_offset = self._w[L.W_DATA_OFFSET]
        self._size = self.dtype.itemsize
        self.retries = 0

    def read(self, timeout_s: float = 1.0) -> tuple[np.ndarray, int]:
        """(copy of all records, version); raises TimeoutError if the writer never finishes."""
        return self._read(self.records.copy, timeout_s)

    def read_if_changed(self, seen_version: int, timeout_s: float = 1.0) -> tuple[np.ndarray, int] | None:
        """``read()``, or None while the version is still ``seen_version`` (-1: nothing seen yet)."""
        if self._w[L.W_SEQLOCK] == seen_version << 1:
            return None
        return self._read(self.records.copy, timeout_s)

    def unpack_if_changed(self, seen_version: int, layout: struct.Struct, index: int = 0,
                          timeout_s: float = 1.0) -> tuple[tuple, int] | None:
        """(record ``index`` unpacked with ``layout``, version), or None while the version is still
        ``seen_version``. ``layout`` must describe the record's bytes (``layout.size`` <= itemsize)."""
        w = self._w
        s1 = w[_SEQ]
        if s1 == seen_version << 1:
            return None
        offset = self._data_offset + index * self._size
        if not s1 & 1:
            values = layout.unpack_from(self._mm, offset)
            if w[_SEQ] == s1:
                return values, s1 >> 1
        return self._read(lambda: layout.unpack_from(self._mm, offset), timeout_s)  # a writer is inside

    def _read(self, copy: Callable[[], T], timeout_s: float) -> tuple[T, int]:
        """``copy()`` between two equal even loads of the sequence, retried until it is.

        A writer preempted inside a write keeps the sequence odd until it runs again, which on
        a loaded machine can take many milliseconds: retry (yielding) until ``timeout_s``.
        """
        w = self._w
        deadline = 0.0
        n = 0
        while True:
            s1 = w[L.W_SEQLOCK]
            if not s1 & 1:
                out = copy()
                if w[L.W_SEQLOCK] == s1:
                    return out, s1 >> 1
            self.retries += 1
            n += 1
            if n & 63 == 0:
                now = time.monotonic()
                if deadline == 0.0:
                    deadline = now + timeout_s
                elif now > deadline:
                    raise TimeoutError(f"seqlock writer stuck inside a write: segment={self.seg.name} "
                                       f"timeout_s={timeout_s}")
                os.sched_yield()

    @property
    def version(self) -> int:
        """Writes finished so far (0: never written)."""
        return self._w[L.W_SEQLOCK] >> 1

    @property
    def written(self) -> bool:
        """A writer has begun at least one write (the block holds more than its zeros)."""
        return self._w[L.W_SEQLOCK] != 0

    @property
    def producer_pid(self) -> int:
        return self._w[L.W_PRODUCER_PID]

    @property
    def heartbeat_ns(self) -> int:
        """The writer's last ``heartbeat()`` (CLOCK_MONOTONIC ns)."""
        return self._w[L.W_HEARTBEAT_NS]

    def heartbeat_age_s(self) -> float:
        return (time.monotonic_ns() - self._w[L.W_HEARTBEAT_NS]) / 1e9

    def close(self) -> None:
        self.records = None  # type: ignore[assignment]
        self.seg.close()
