"""The bridge's ring reader: an observer (no consumer slot: it never gates a producer) that
knows the sequence of every record it returns and the ring incarnation it came from, so the
durable rings (exec, alerts) resume after a restart of the bridge where it stopped.

Lapping (the producer overwrote records before the bridge read them) is counted in ``lost``.
A ring re-created under the same name (its producer restarted after ``b25 shm clean``) is a new
incarnation: ``created_ns`` changes and reading starts from its oldest record.
"""

from __future__ import annotations

import numpy as np

from procs.monitor.shmview import Attached
from shm.ring import RingHeader
from shm.segment import shm_name


class SeqRing:
    def __init__(self, instance: str, name: str, dtype: np.dtype, start: str = "head") -> None:
        """``start``: where reading begins in an incarnation first seen: "head" (only new
        records) or "oldest" (every record still in the ring)."""
        self.name = name
        self.att = Attached(shm_name(instance, name), dtype)
        self.start = start
        self.next = -1  # next sequence to read; -1 = not positioned
        self.created_ns = 0
        self.lost = 0
        self._attaches = 0
        self._header: RingHeader | None = None
        self._resume: tuple[int, int] | None = None  # (created_ns, next) to take up when that incarnation is found

    def resume(self, created_ns: int, next_seq: int) -> None:
        """Continue at ``next_seq`` if the ring found is incarnation ``created_ns``."""
        self._resume = (created_ns, next_seq)

    def _head(self) -> int | None:
        seg = self.att.get()
        if seg is None or self.att.records is None:
            return None
        attached = self.att.attaches != self._attaches or self._header is None
        if attached:  # first seen, or a new incarnation: position the reader in it
            self._attaches = self.att.attaches
            self._header = RingHeader(seg)
            self.created_ns = self._header.created_ns()
        head = self._header.write_cursor()
        if attached:
            cap = len(self.att.records)
            if self._resume is not None and self._resume[0] == self.created_ns:
                self.next = self._resume[1]
            else:
                self.next = head if self.start == "head" else max(0, head - (cap - 1))
            self._resume = None
        return head

    def poll(self, limit: int = 4096) -> tuple[int, np.ndarray]:
        """(sequence of the first record, the records since the last poll, at most ``limit``)."""
        head = self._head()
        if head is None:
            return 0, np.zeros(0, self.att.dtype)
        recs = self.att.records
        assert recs is not None and self._header is not None
        cap = len(recs)
        if head < self.next:  # reset under the same mapping
            self.next = head
        if head - self.next >= cap:
            self.lost += head - self.next - (cap - 1)
            self.next = head - (cap - 1)
        end = min(head, self.next + limit)
        start = self.next
        out = recs[np.arange(start, end) & (cap - 1)]  # fancy indexing copies
        oldest_safe = self._header.write_cursor() - cap + 1  # the producer may be writing head now
        if start < oldest_safe:
            bad = min(end - start, oldest_safe - start)
            self.lost += bad
            out = out[bad:]
            start += bad
        self.next = end
        return start, out

    def close(self) -> None:
        self.att.close()
