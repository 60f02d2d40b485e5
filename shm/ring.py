"""Ring: single producer, one or more consumers, fixed-size numpy records in a segment.

Policies (see ``layout``):
  * broadcast — the producer never waits. A consumer that was lapped notices it by sequence,
    counts the records it lost and jumps to the newest record. Reads are copied and then
    re-validated against the write cursor, so a record overwritten mid-read is counted lost,
    never returned torn.
  * gating — nothing may be lost. The producer may not run more than ``capacity`` records
    ahead of the slowest declared consumer; a full ring returns False from ``try_publish`` and
    bumps FULL_WAITS. A gating consumer's batch is a zero-copy view, valid until ``commit``.

Consumers are *named* (declared in the ring spec: persistent cursor in the header, resumed
after a restart) or *observers* (TUI, monitor, tools: no slot, never gate, may be lapped).
"""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import posix_ipc

from . import layout as L
from .idle import FIFO_TOKEN, Waiter, wake_fifo_path, wake_sem_name
from .segment import Segment
from .sequence import full_fence

_WC = L.W_WRITE_CURSOR
_WE = L.W_WAITER_EPOCH


def struct_for(dtype: np.dtype) -> struct.Struct:
    """A struct.Struct with the same byte layout as ``dtype`` (padding as 'x', sub-arrays flat).

    ``Struct.pack_into`` is the fastest honest way to write one small record from Python
    (~85 ns for 64 bytes, against ~180 ns for ``records[i] = tuple``).
    """
    dtype = np.dtype(dtype)
    fields = sorted(((off, name, dt) for name, (dt, off, *_) in dtype.fields.items()), key=lambda f: f[0])
    fmt = ["<"]
    pos = 0
    for off, _name, dt in fields:
        if off > pos:
            fmt.append(f"{off - pos}x")
        if dt.kind == "V" and not dt.fields and not dt.subdtype:
            fmt.append(f"{dt.itemsize}x")  # explicit padding: no value to pack or unpack
            pos = off + dt.itemsize
            continue
        base = dt.base if dt.subdtype else dt
        count = int(np.prod(dt.shape)) if dt.subdtype else 1
        code = {("i", 8): "q", ("u", 8): "Q", ("i", 4): "i", ("u", 4): "I", ("i", 2): "h", ("u", 2): "H",
                ("i", 1): "b", ("u", 1): "B", ("f", 8): "d", ("f", 4): "f", ("S", base.itemsize): f"{base.itemsize}s",
                ("b", 1): "?"}.get((base.kind, base.itemsize))
        if code is None:
            raise ValueError(f"dtype field not packable: field={_name} dtype={dt}")
        if code.endswith("s"):
            fmt.append(code * count if count > 1 else code)
        else:
            fmt.append(f"{count}{code}" if count > 1 else code)
        pos = off + dt.itemsize
    if dtype.itemsize > pos:
        fmt.append(f"{dtype.itemsize - pos}x")
    s = struct.Struct("".join(fmt))
    assert s.size == dtype.itemsize, (s.format, s.size, dtype.itemsize)
    return s


def consumer_slot(words: memoryview, name: str) -> int:
    """The header line (slot) of the declared consumer ``name``, or -1 when it is not declared."""
    h = L.name_hash(name)
    for k in range(words[L.W_N_CONSUMERS]):
        if words[L.consumer_word(k, L.C_NAME_HASH)] == h:
            return k
    return -1


class RingHeader:
    """A ring's cursors, read from its header by whoever is neither its producer nor one of its
    consumers (the monitor, the TUI, the replay barrier). Plain loads: a cursor read here may be
    behind by the time it is used, never ahead of what is published."""

    def __init__(self, seg: Segment) -> None:
        self.seg = seg
        self._w = seg.words
        self.capacity = self._w[L.W_CAPACITY]

    def write_cursor(self) -> int:
        """The next sequence the producer will publish (records below it are published)."""
        return self._w[_WC]

    def created_ns(self) -> int:
        """When the ring was created (wall clock): a ring re-created under the same name (another
        incarnation) has another value."""
        return int(self._w[L.W_START_NS])

    def consumer_cursor(self, name: str) -> int:
        """The next sequence the declared consumer ``name`` will read, or -1 when not declared."""
        k = consumer_slot(self._w, name)
        return self._w[L.consumer_word(k, L.C_CURSOR)] if k >= 0 else -1

    def consumer_attached(self, name: str) -> bool:
        """The declared consumer ``name`` has attached at least once (its slot holds a pid)."""
        k = consumer_slot(self._w, name)
        return k >= 0 and self._w[L.consumer_word(k, L.C_PID)] > 0


class _RingBase:
    def __init__(self, seg: Segment, dtype: np.dtype) -> None:
        self.seg = seg
        self.dtype = np.dtype(dtype)
        w = seg.words
        self.capacity = w[L.W_CAPACITY]
        self.mask = self.capacity - 1
        self.record_size = w[L.W_RECORD_SIZE]
        self.data_offset = w[L.W_DATA_OFFSET]
        self.policy = w[L.W_POLICY]
        self.records = seg.records(self.dtype)
        self._empty = self.records[:0]
        self.struct = struct_for(self.dtype)

    @property
    def name(self) -> str:
        return self.seg.name

    @property
    def created_ns(self) -> int:
        """When the segment was created (wall clock): a ring re-created under the same name has
        another value, so it tells incarnations apart."""
        return int(self.seg.words[L.W_START_NS])


class Producer(_RingBase):
    """The single writer of a ring. Create it with ``Producer.create``; hot path returns codes."""

    @classmethod
    def create(cls, instance: str, name: str, dtype: np.dtype, capacity: int, policy: int,
               consumers: tuple[str, ...] = ()) -> Producer:
        if policy not in (L.POLICY_BROADCAST, L.POLICY_GATING):
            raise ValueError(f"unknown ring policy: policy={policy} ring={name}")
        if len(consumers) > L.MAX_CONSUMERS:
            raise ValueError(f"too many consumers: consumers={len(consumers)} max={L.MAX_CONSUMERS} ring={name}")
        seg = Segment.create_or_open(instance, name, L.KIND_RING, capacity, dtype, policy)
        w = seg.words
        if seg.created:
            w[L.W_N_CONSUMERS] = len(consumers)
            for k, cname in enumerate(consumers):
                w[L.consumer_word(k, L.C_NAME_HASH)] = L.name_hash(cname)
                # declared consumers gate from the start: nothing is lost before they attach
                w[L.consumer_word(k, L.C_ACTIVE)] = 1
        elif w[L.W_POLICY] != policy:
            raise ValueError(f"ring policy mismatch: ring={name} segment_policy={L.POLICY_NAMES[w[L.W_POLICY]]} "
                             f"expected_policy={L.POLICY_NAMES[policy]}")
        return cls(seg, dtype, instance)

    def __init__(self, seg: Segment, dtype: np.dtype, instance: str) -> None:
        super().__init__(seg, dtype)
        self.instance = instance
        w = seg.words
        self._w = w
        self._next = w[L.W_WRITE_CURSOR]  # resume where a previous producer stopped
        self._gating = self.policy == L.POLICY_GATING
        self._n_cons = w[L.W_N_CONSUMERS]
        self._cons_cursor_idx = [L.consumer_word(k, L.C_CURSOR) for k in range(self._n_cons)]
        self._cons_active_idx = [L.consumer_word(k, L.C_ACTIVE) for k in range(self._n_cons)]
        self._sleep_idx = [L.consumer_word(k, L.C_SLEEPING) for k in range(self._n_cons)]
        self._token_idx = [L.consumer_word(k, L.C_WAKE_TOKEN) for k in range(self._n_cons)]
        self._sems: dict[int, posix_ipc.Semaphore | None] = {}
        self._fifos: dict[int, int] = {}
        self._epoch = -1  # the waiter epoch last seen (refresh_waiters)
        self._waiters = False
        self._prewake_slots: list[int] | None = None
        # broadcast rings never wait: their "gate" only moves forward in steps of a capacity
        self._gate_limit = self._compute_gate() if self._gating else self._next + self.capacity
        self._pack_into = self.struct.pack_into
        self._buf = seg.mm
        self._claimed = -1
        self._data_offset = self.data_offset
        self._mask = self.mask
        self._record_size = self.record_size
        self._waiters = False
        self._epoch = -1
        self.refresh_waiters()

    # -- gating -----------------------------------------------------------------------------
    def _compute_gate(self) -> int:
        """Highest sequence (exclusive) we may write without overwriting an unread record."""
        w = self._w
        self.refresh_waiters()
        low = self._next
        for ci, ai in zip(self._cons_cursor_idx, self._cons_active_idx, strict=True):
            if w[ai]:
                c = w[ci]
                if c < low:
                    low = c
        return low + self.capacity

    def remaining(self) -> int:
        """Free slots before the producer would have to wait (capacity for broadcast)."""
        if not self._gating:
            return self.capacity
        self._gate_limit = self._compute_gate()
        return self._gate_limit - self._next

    # -- publication ------------------------------------------------------------------------
    def try_publish(self, *values: object) -> bool:
        """Write one record from flat field values and publish it; False when a gating ring is full."""
        seq = self._next
        if seq >= self._gate_limit:
            self._gate_limit = self._compute_gate() if self._gating else seq + self.capacity
            if seq >= self._gate_limit:
                self._w[L.W_FULL_WAITS] += 1
                return False
        self._pack_into(self._buf, self._data_offset + (seq & self._mask) * self._record_size, *values)
        w = self._w
        w[_WC] = seq + 1  # release: the record's stores precede this one; own bookkeeping after it
        self._next = seq + 1
        if self._waiters or w[_WE] != self._epoch:
            self._wake()
        return True

    def try_claim(self) -> int:
        """Reserve the next slot; returns its index into ``records`` or -1 when full (gating)."""
        seq = self._next
        if seq >= self._gate_limit:
            self._gate_limit = self._compute_gate() if self._gating else seq + self.capacity
            if seq >= self._gate_limit:
                self._w[L.W_FULL_WAITS] += 1
                return -1
        self._claimed = seq & self.mask
        return self._claimed

    def publish(self) -> None:
        """Publish the record written into the slot ``try_claim`` returned."""
        n = self._next + 1
        self._w[_WC] = n  # readers see the record first; own bookkeeping after
        self._next = n
        self._claimed = -1
        if self._waiters or self._w[_WE] != self._epoch:
            self._wake()

    def publish_batch(self, batch: np.ndarray) -> int:
        """Copy as many records of ``batch`` as fit and publish them with one cursor store."""
        n = len(batch)
        if n == 0:
            return 0
        seq = self._next
        room = self.capacity
        if self._gating:
            self._gate_limit = self._compute_gate()
            room = self._gate_limit - seq
            if room <= 0:
                self._w[L.W_FULL_WAITS] += 1
                return 0
        n = min(n, room)
        start = seq & self.mask
        first = min(n, self.capacity - start)
        self.records[start:start + first] = batch[:first]
        if n > first:
            self.records[: n - first] = batch[first:n]
        self._next = seq + n
        self._w[_WC] = self._next
        if not self._gating:
            self._gate_limit = self._next + self.capacity
        if self._waiters or self._w[_WE] != self._epoch:
            self._wake()
        return n

    def publish_blocking(self, *values: object, timeout_s: float = 5.0) -> bool:
        """try_publish, waiting (spin, yield, then short sleeps) while a gating ring is full."""
        if self.try_publish(*values):
            return True
        deadline = time.monotonic() + timeout_s
        n = 0
        while not self.try_publish(*values):
            n += 1
            if n < 100:
                continue
            if n < 200:
                os.sched_yield()
            else:
                time.sleep(0.00005)
            if time.monotonic() > deadline:
                return False
        return True

    def prewake(self) -> None:
        """Wake the consumers that sleep (those named by ``set_prewake``, else all), ahead of a
        record about to be published.

        A producer that knows a record is coming (market_data on receiving a frame, before it
        decodes and applies it) calls this so the consumers' wake-up overlaps its own work:
        they come back spinning (``backoff`` spins again after a producer's wake-up) and see
        the record as soon as it is published. A no-op when nobody sleeps."""
        if not (self._waiters or self._w[_WE] != self._epoch):
            return
        if self._prewake_slots is None:
            self._wake()
            return
        if self._w[_WE] != self._epoch:
            self.refresh_waiters()
        full_fence()
        w = self._w
        for k in self._prewake_slots:
            si = self._sleep_idx[k]
            if w[si]:
                w[si] = 0
                self._post(w[self._token_idx[k]])

    def set_prewake(self, consumers: tuple[str, ...]) -> None:
        """Limit ``prewake`` to these named consumers (the next hop of the hot path: waking a
        consumer that is not on it costs the producer a syscall for nothing)."""
        self._prewake_slots = sorted({consumer_slot(self._w, c) for c in consumers} - {-1})

    def refresh_waiters(self) -> None:
        """Re-read which consumers may sleep (have a wake token). Called at start, on every
        heartbeat and whenever the gate is recomputed, so the hot path reads one bool."""
        w = self._w
        epoch = w[_WE]
        if epoch != self._epoch and self._epoch != -1:
            # a consumer (re)registered: a restarted one has a new semaphore or FIFO under the
            # same name, and a post to our cached handle of the old one would be lost
            for fd in self._fifos.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._fifos.clear()
            self._sems.clear()
        self._epoch = epoch
        self._waiters = any(w[ti] for ti in self._token_idx)

    def _wake(self) -> None:
        if self._w[_WE] != self._epoch:
            self.refresh_waiters()
            if not self._waiters:
                return
        full_fence()  # our cursor store must be visible before we read SLEEPING
        w = self._w
        for si, ti in zip(self._sleep_idx, self._token_idx, strict=True):
            if w[si]:
                w[si] = 0
                self._post(w[ti])

    def _post(self, token: int) -> None:
        if token & FIFO_TOKEN:
            self._post_fifo(token)
            return
        sem = self._sems.get(token)
        if sem is None:
            try:
                sem = posix_ipc.Semaphore(wake_sem_name(self.instance, token))
            except posix_ipc.ExistentialError:
                return  # the sleeping consumer died; its slot flag is stale
            self._sems[token] = sem
        try:
            sem.release()
        except posix_ipc.ExistentialError:
            self._sems.pop(token, None)

    def _post_fifo(self, token: int, retry: bool = True) -> None:
        fd = self._fifos.get(token)
        if fd is None:
            try:
                fd = os.open(wake_fifo_path(self.instance, token), os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return  # no reader: the sleeping consumer died; its slot flag is stale
            self._fifos[token] = fd
        try:
            os.write(fd, b"\x01")
        except BlockingIOError:
            pass  # the FIFO is full of wake-ups already
        except OSError:
            # EPIPE: our cached descriptor is a FIFO whose reader died; a restarted consumer
            # may sleep on a new FIFO at the same path with the same token: open it and post
            # again, or that consumer (its SLEEPING flag already cleared) would never wake
            os.close(fd)
            self._fifos.pop(token, None)
            if retry:
                self._post_fifo(token, retry=False)

    def resume(self) -> None:
        """Continue at the ring's write cursor: for a ring whose writers take turns under a lock
        held around ``resume`` and the publication (procs/core/manual_orders.py)."""
        self._next = self._w[_WC]
        self._gate_limit = self._compute_gate() if self._gating else self._next + self.capacity

    # -- liveness ---------------------------------------------------------------------------

    @property
    def next_sequence(self) -> int:
        return self._next

    def heartbeat(self) -> None:
        self._w[L.W_HEARTBEAT_NS] = time.monotonic_ns()
        self._w[L.W_PRODUCER_PID] = os.getpid()
        self.refresh_waiters()

    def close(self, unlink: bool = False) -> None:
        for sem in self._sems.values():
            if sem is not None:
                sem.close()
        self._sems.clear()
        for fd in self._fifos.values():
            os.close(fd)
        self._fifos.clear()
        self.records = None  # type: ignore[assignment]
        self._empty = None  # type: ignore[assignment]
        if unlink:
            self.seg.unlink()
        self.seg.close()


class Consumer(_RingBase):
    """A reader of a ring: named (persistent cursor, may gate) or an observer."""

    @classmethod
    def attach(cls, instance: str, name: str, dtype: np.dtype, consumer: str | None = None,
               timeout: float = 5.0, waiter: Waiter | None = None, from_start: bool = False) -> Consumer:
        """Attach as the declared consumer ``consumer`` (or as an observer when None)."""
        seg = Segment.attach(instance, name, L.KIND_RING, dtype, timeout=timeout)
        return cls(seg, dtype, consumer, waiter, from_start)

    def __init__(self, seg: Segment, dtype: np.dtype, consumer: str | None, waiter: Waiter | None,
                 from_start: bool = False) -> None:
        super().__init__(seg, dtype)
        w = seg.words
        self._w = w
        self.consumer_name = consumer
        self.slot = -1
        if consumer is not None:
            self.slot = consumer_slot(w, consumer)
            if self.slot < 0:
                raise ValueError(f"consumer not declared for ring: ring={seg.name} consumer={consumer}")
            w[L.consumer_word(self.slot, L.C_PID)] = os.getpid()
            w[L.consumer_word(self.slot, L.C_ACTIVE)] = 1
            self._cursor_idx = L.consumer_word(self.slot, L.C_CURSOR)
            self._lost_idx = L.consumer_word(self.slot, L.C_LOST)
            self._next = w[self._cursor_idx]  # resume from our own stored cursor
            if waiter is not None:
                waiter.register(w, self.slot, self.has_data)
        else:
            self._cursor_idx = -1
            self._lost_idx = -1
            self._next = 0 if from_start else w[L.W_WRITE_CURSOR]
            self._lost_local = 0
        self._broadcast = self.policy == L.POLICY_BROADCAST or consumer is None
        self._pending = 0
        self._unpack_from = self.struct.unpack_from
        self._buf = seg.mm
        self._data_offset = self.data_offset
        self._mask = self.mask
        self._record_size = self.record_size

    # -- state ------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Next sequence this consumer will read."""
        return self._next

    @property
    def lost(self) -> int:
        if self._lost_idx >= 0:
            return self._w[self._lost_idx]
        return self._lost_local

    def _add_lost(self, n: int) -> None:
        if self._lost_idx >= 0:
            self._w[self._lost_idx] += n
        else:
            self._lost_local += n

    def available(self) -> int:
        return self._w[L.W_WRITE_CURSOR] - self._next

    def has_data(self) -> bool:
        return self._w[L.W_WRITE_CURSOR] > self._next

    def _store_cursor(self) -> None:
        if self._cursor_idx >= 0:
            self._w[self._cursor_idx] = self._next

    def _skip_lapped(self, head: int) -> None:
        """Broadcast: records older than head - capacity + 1 may be overwritten: jump to newest."""
        if head - self._next >= self.capacity:
            newest = head - 1
            self._add_lost(newest - self._next)
            self._next = newest

    # -- reads ------------------------------------------------------------------------------
    def poll(self, limit: int = 0) -> np.ndarray:
        """All available records (up to ``limit``) as one array; call ``commit()`` after use.

        Gating named consumers get a zero-copy view of the slots (the producer cannot reuse
        them before commit). Broadcast readers get a validated copy. A batch stops at the end
        of the buffer; the rest comes with the next poll.
        """
        head = self._w[L.W_WRITE_CURSOR]
        if self._broadcast:
            self._skip_lapped(head)
        n = head - self._next
        if n <= 0:
            self._pending = 0
            return self._empty
        if limit and n > limit:
            n = limit
        start = self._next & self.mask
        if start + n > self.capacity:
            n = self.capacity - start
        if not self._broadcast:
            self._pending = n
            return self.records[start:start + n]
        # copy the bytes, then view them: far cheaper than a structured numpy copy
        # (docs/decisions/019-broadcast-reads-copy.md)
        a = self.data_offset + start * self.record_size
        out = np.frombuffer(bytes(self.seg.buf[a:a + n * self.record_size]), dtype=self.dtype)
        head2 = self._w[L.W_WRITE_CURSOR]
        oldest_safe = head2 - self.capacity + 1  # the producer may be writing seq head2 now
        if self._next < oldest_safe:
            bad = min(n, oldest_safe - self._next)
            self._add_lost(bad)
            self._next += bad
            out = out[bad:]
            n -= bad
        self._pending = n
        return out

    def commit(self) -> None:
        """Advance past the batch the last ``poll`` returned (the cursor moves once per batch)."""
        if self._pending:
            self._next += self._pending
            self._pending = 0
            self._store_cursor()

    def poll_one(self) -> tuple | None:
        """The next record as a flat tuple (struct-unpacked), advancing the cursor; None if empty."""
        w = self._w
        seq = self._next
        head = w[_WC]
        if head <= seq:
            return None
        if self._broadcast:
            return self._poll_one_broadcast(head)
        vals = self._unpack_from(self._buf, self._data_offset + (seq & self._mask) * self._record_size)
        self._next = seq + 1
        if self._cursor_idx >= 0:
            w[self._cursor_idx] = seq + 1
        return vals

    def read_one(self) -> tuple | None:
        """``poll_one`` for a gating named consumer that keeps the stored cursor where it was:
        a restart resumes before the records read since (at-least-once), until ``store_position``
        says what was read is safe (e.g. its effects were saved). The producer still may not
        reuse those slots meanwhile."""
        seq = self._next
        if self._w[_WC] <= seq:
            return None
        if self._broadcast:
            return self._poll_one_broadcast(self._w[_WC])
        self._next = seq + 1
        return self._unpack_from(self._buf, self._data_offset + (seq & self._mask) * self._record_size)

    def store_position(self) -> None:
        """Store the read position (after ``read_one``): records before it are never read again."""
        self._store_cursor()

    def spin_one(self) -> tuple:
        """Busy-poll until the next record is published and return it as ``poll_one`` does.

        For a consumer that owns an isolated core (idle strategy ``spin``): the wait is one
        memoryview read per turn, with no call and nothing else between two looks at the write
        cursor. It never gives the CPU up; on a shared core use ``poll_one`` with an idle strategy.
        """
        w = self._w
        seq = self._next
        while True:
            while w[_WC] <= seq:
                pass
            if self._broadcast:  # lapped or overwritten while read: counted, then the newest
                vals = self._poll_one_broadcast(w[_WC])
                if vals is not None:
                    return vals
                seq = self._next
                continue
            vals = self._unpack_from(self._buf, self._data_offset + (seq & self._mask) * self._record_size)
            self._next = seq + 1
            if self._cursor_idx >= 0:
                w[self._cursor_idx] = seq + 1
            return vals

    def _poll_one_broadcast(self, head: int) -> tuple | None:
        self._skip_lapped(head)
        while head > self._next:
            seq = self._next
            vals = self._unpack_from(self._buf, self._data_offset + (seq & self._mask) * self._record_size)
            self._next = seq + 1
            if seq < self._w[_WC] - self.capacity + 1:  # overwritten while we read it
                self._add_lost(1)
                continue
            self._store_cursor()
            return vals
        return None

    def heartbeat(self) -> None:
        if self.slot >= 0:
            self._w[L.consumer_word(self.slot, L.C_HEARTBEAT_NS)] = time.monotonic_ns()

    def close(self) -> None:
        self.records = None  # type: ignore[assignment]
        self._empty = None  # type: ignore[assignment]
        self.seg.close()
