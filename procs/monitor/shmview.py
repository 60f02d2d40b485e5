"""Read-only views of one instance's shared memory, for the monitor and the TUI.

Readers here never gate a ring and never write a segment: state blocks are read through the
SeqLock, rings are read as *observers* (no consumer slot) or by copying their newest records.
A reader keeps its mapping between reads and notices when the owner recreated the segment
(a new inode under /dev/shm after ``b25 shm clean`` and a restart) or removed it; it then
reattaches, so a restarting process shows as stale and comes back without a restart of ours.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from procs.core import messages as M
from procs.core.status import ProcessStatus, State
from shm.counters import read_counters
from shm.ring import RingHeader
from shm.segment import SHM_DIR, Segment, list_segments, open_raw, pid_alive, shm_name
from shm.seqlock import StateReader

# a state block whose writer stays inside a write this long is read as absent (it died there;
# its restart reopens the lock): a scrape must not hang on it
READ_TIMEOUT_S = 0.05


def _inode(full: str) -> int:
    try:
        return os.stat(SHM_DIR / full[1:]).st_ino
    except FileNotFoundError:
        return 0


class Attached:
    """One segment mapped by a reader; ``get()`` returns it (reattached if recreated) or None."""

    def __init__(self, full: str, dtype: np.dtype | None = None) -> None:
        self.full = full
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.seg: Segment | None = None
        self._ino = 0
        self.records: np.ndarray | None = None
        self.attaches = 0

    def get(self) -> Segment | None:
        ino = _inode(self.full)
        if ino != self._ino or self.seg is None:
            self._drop()
            if ino:
                seg = open_raw(self.full)
                if seg is not None and self._fits(seg):
                    self.seg = seg
                    self._ino = ino
                    self.attaches += 1
                    if self.dtype is not None:
                        self.records = seg.records(self.dtype)
                elif seg is not None:
                    seg.close()
        return self.seg

    def _fits(self, seg: Segment) -> bool:
        return self.dtype is None or seg.holds(self.dtype)

    def _drop(self) -> None:
        self.records = None
        if self.seg is not None:
            self.seg.close()
        self.seg = None
        self._ino = 0

    def close(self) -> None:
        self._drop()


class StateView:
    """A state block read through its SeqLock (``shm.seqlock.StateReader``): ``read()`` ->
    (records copy, version) or None."""

    def __init__(self, instance: str, name: str, dtype: np.dtype, timeout_s: float = READ_TIMEOUT_S) -> None:
        self.att = Attached(shm_name(instance, name), dtype)
        self.timeout_s = timeout_s
        self._reader: StateReader | None = None
        self._attaches = 0

    def read(self) -> tuple[np.ndarray, int] | None:
        seg = self.att.get()
        if seg is None or self.att.dtype is None:
            self._reader = None  # let the old mapping go
            return None
        if self._reader is None or self.att.attaches != self._attaches:  # (re)attached
            self._reader = StateReader(seg, self.att.dtype)
            self._attaches = self.att.attaches
        try:
            return self._reader.read(self.timeout_s)
        except TimeoutError:
            return None  # the writer died inside a write; its restart reopens the lock

    def close(self) -> None:
        self._reader = None  # its mapping is the Attached one
        self.att.close()


class RingView:
    """A ring read as an observer: ``tail(n)`` copies the newest records, ``poll()`` the new ones.

    Both validate against the write cursor after copying, so a record the producer overwrote
    during the copy is dropped, never returned torn. A recreated ring restarts from its cursor.
    """

    def __init__(self, instance: str, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.att = Attached(shm_name(instance, name), dtype)
        self._next = -1  # next sequence poll() returns; -1 = not positioned yet
        self._attaches = 0
        self._header: RingHeader | None = None
        self.lost = 0

    def _cursor(self) -> int | None:
        seg = self.att.get()
        if seg is None:
            return None
        if self.att.attaches != self._attaches or self._header is None:  # (re)attached: start over
            self._attaches = self.att.attaches
            self._header = RingHeader(seg)
            self._next = -1
        return self._header.write_cursor()

    def _copy(self, start: int, end: int) -> np.ndarray:
        recs = self.att.records
        assert self._header is not None and recs is not None
        cap = len(recs)
        idx = np.arange(start, end) & (cap - 1)
        out = recs[idx]  # fancy indexing copies
        oldest_safe = self._header.write_cursor() - cap + 1
        if start < oldest_safe:
            bad = min(end - start, oldest_safe - start)
            self.lost += bad
            out = out[bad:]
        return out

    def tail(self, n: int) -> np.ndarray:
        """The newest ``n`` records (fewer when the ring holds fewer); empty when absent."""
        head = self._cursor()
        if head is None or self.att.records is None:
            return np.zeros(0, self.att.dtype)
        cap = len(self.att.records)
        start = max(0, head - min(n, cap - 1))
        return self._copy(start, head)

    def poll(self, limit: int = 4096, history: int = 0) -> np.ndarray:
        """Records published since the last poll (the first poll returns up to ``history`` old ones)."""
        head = self._cursor()
        if head is None or self.att.records is None:
            return np.zeros(0, self.att.dtype)
        cap = len(self.att.records)
        if self._next < 0:
            self._next = max(0, head - min(history, cap - 1))
        if head < self._next:  # the ring was reset under the same mapping
            self._next = head
        if head - self._next >= cap:
            self.lost += head - self._next - (cap - 1)
            self._next = head - (cap - 1)
        end = min(head, self._next + limit)
        out = self._copy(self._next, end)
        self._next = end
        return out

    def close(self) -> None:
        self._header = None
        self.att.close()


class CountersView:
    """One process's counters segment: ``read()`` -> (counters by label, histogram buckets by label)."""

    def __init__(self, full: str) -> None:
        self.att = Attached(full)

    def read(self) -> tuple[dict[str, int], dict[str, np.ndarray]] | None:
        seg = self.att.get()
        if seg is None:
            return None
        return read_counters(seg)

    def close(self) -> None:
        self.att.close()


def segment_names(instance: str, prefix: str) -> list[str]:
    """Short names (after ``b25.<instance>.``) of the instance's segments starting with ``prefix``."""
    head = f"/b25.{instance}."
    return [s[len(head):] for s in list_segments(instance) if s[len(head):].startswith(prefix)]


def status_dict(proc: str, rec: np.void | None, stale_after_s: float, now_ns: int | None = None) -> dict[str, Any]:
    """A process's status as plain data, with ``fresh`` judged from heartbeat age, state and pid."""
    if rec is None:
        return {"proc": proc, "state": "ABSENT", "pid": 0, "alive": False, "age_s": None,
                "uptime_s": None, "work": 0, "cpu": -1, "fresh": False, "why": "no status block"}
    now = time.monotonic_ns() if now_ns is None else now_ns
    pid = int(rec["pid"])
    try:
        state = State(int(rec["state"])).name
    except ValueError:
        state = str(int(rec["state"]))
    age = (now - int(rec["heartbeat_ns"])) / 1e9
    alive = pid_alive(pid)
    why = ""
    if not alive:
        why = f"pid {pid} not alive"
    elif state in ("STOPPED", "FAILED", "STOPPING"):
        why = f"state {state}"
    elif age > stale_after_s:
        why = f"heartbeat {age:.1f}s old > {stale_after_s}s"
    return {"proc": proc, "state": state, "pid": pid, "alive": alive, "age_s": round(age, 3),
            "uptime_s": round((now - int(rec["started_ns"])) / 1e9, 1), "work": int(rec["work"]),
            "cpu": int(rec["cpu"]), "fresh": not why, "why": why}


class InstanceView:
    """Everything an observer reads of one instance, each segment attached lazily and kept."""

    def __init__(self, instance: str, depth: int = M.DEFAULT_DEPTH) -> None:
        self.instance = instance
        self.depth = depth
        self._states: dict[str, StateView] = {}
        self._rings: dict[str, RingView] = {}
        self._counters: dict[str, CountersView] = {}

    def state(self, name: str, dtype: np.dtype) -> StateView:
        v = self._states.get(name)
        if v is None:
            v = self._states[name] = StateView(self.instance, name, dtype)
        return v

    def ring(self, name: str, dtype: np.dtype) -> RingView:
        v = self._rings.get(name)
        if v is None:
            v = self._rings[name] = RingView(self.instance, name, dtype)
        return v

    def status_procs(self) -> list[str]:
        return [n.split(".", 1)[1] for n in segment_names(self.instance, "status.")]

    def counter_procs(self) -> list[str]:
        return [n.split(".", 1)[1] for n in segment_names(self.instance, "counters.")]

    def status(self, proc: str, stale_after_s: float) -> dict[str, Any]:
        got = self.state(f"status.{proc}", ProcessStatus).read()
        return status_dict(proc, None if got is None else got[0][0], stale_after_s)

    def statuses(self, required: list[str] | tuple[str, ...], stale_after_s: float) -> dict[str, dict[str, Any]]:
        """Status of every process that has a block plus every required one (ABSENT if none)."""
        procs = sorted(set(self.status_procs()) | set(required))
        return {p: self.status(p, stale_after_s) for p in procs}

    def counters(self, proc: str) -> tuple[dict[str, int], dict[str, np.ndarray]] | None:
        v = self._counters.get(proc)
        if v is None:
            v = self._counters[proc] = CountersView(shm_name(self.instance, f"counters.{proc}"))
        return v.read()

    def all_counters(self) -> dict[str, tuple[dict[str, int], dict[str, np.ndarray]]]:
        out = {}
        for p in self.counter_procs():
            got = self.counters(p)
            if got is not None:
                out[p] = got
        return out

    def close(self) -> None:
        for d in (self._states, self._rings, self._counters):
            for v in d.values():
                v.close()
            d.clear()
