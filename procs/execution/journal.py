"""The execution journal: every order event, appended before it is published.

File layout: a sequence of frames ``<u32 length | CHECKED><u32 crc32 of the payload><msgpack
JournalRecord>``, mode 0600, written through a shared mapping (``Journal``), each frame's length
after its bytes, so a crash leaves at most one torn frame at the end (a zero length, or a zero
tail while the file is open; after a host crash, a length whose payload never reached the disk,
which its crc32 gives away), which ``read_journal`` drops (and ``Journal`` truncates away before
appending). The reader never returns a record it could not verify: it stops at the first frame
that is cut short, fails its crc32 or its decoding, or is unchecked after a checked one. Journals
written before the checksum (frames ``<u32 length><msgpack>``, CHECKED clear) read as before
(docs/decisions/042-journal-frame-checksum.md).
fsync policy: ``always`` (fsync every frame before the event is published), ``batch``
(fdatasync at most every ``fsync_interval_ms``: the page cache survives a process crash, a
host crash may lose that interval), ``never``. ``batch`` syncs from a background thread
(``start_syncer``): an fdatasync took ~5 ms here, and run on the event loop it held every
intent that arrived meanwhile (profiled: 342 syncs in 20 s, 1.7 s of loop time).
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec

from procs.core import log
from procs.core import messages as M

REC_EPOCH = 100  # a run of execution started: ``epoch`` is its number
REC_POSITION = 102  # compaction: an intent ring's highest journaled SUBMIT sequence (ring/ring_seq)

_LEN = struct.Struct("<I")
_HEAD = struct.Struct("<II")  # length | CHECKED, crc32 of the payload
CHECKED = 0x8000_0000  # a frame's length word flag: a crc32 follows (every frame written now)
HEAD_SIZE = _HEAD.size


class JournalRecord(msgspec.Struct, array_like=True, omit_defaults=False):
    """One journal entry: an OrderEvent's fields plus what a rebuild needs (tif, ring, seq)."""

    kind: int
    cid: str = ""
    strategy_id: int = 0
    symbol_id: int = 0
    side: int = 0
    order_type: int = 0
    tif: int = 0
    price: int = 0
    qty: int = 0
    reduce_only: int = 0
    client_tag: int = 0
    order_id: int = 0
    cum_qty: int = 0
    last_px: int = 0
    last_qty: int = 0
    fee_e8: int = 0
    reason: int = 0
    trade_id: int = 0
    ts_event: int = 0
    ts_intent: int = 0
    intent_id: int = 0
    source: int = 0
    flags: int = 0
    ring: int = -1  # index of the intent ring (0 orders.strategy, 1 orders.manual, 2 orders.remote), -1 none
    ring_seq: int = -1  # the intent's sequence in that ring
    epoch: int = 0
    wall_ns: int = 0
    event_seq: int = 0  # the published OrderEvent's sequence (0: journal-only record)
    trigger_price: int = 0  # a conditional order's (a trailing stop's activation)
    callback_bps: int = 0  # a trailing stop's callback
    intent_flags: int = 0  # OrderIntent.flags (INTENT_ON_MARK)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(JournalRecord)


def parse_journal(data: bytes) -> tuple[list[JournalRecord], int]:
    """(records, length of the good prefix) of the journal's frames; a torn or corrupt tail is
    left out: reading stops at the first frame that is cut short, fails its crc32 or its decoding,
    or is an unchecked frame after a checked one."""
    out: list[JournalRecord] = []
    pos = 0
    n = len(data)
    checked = False
    view = memoryview(data)
    while pos + 4 <= n:
        (word,) = _LEN.unpack_from(data, pos)
        if word & CHECKED:
            start = pos + HEAD_SIZE
            end = start + (word & ~CHECKED)
            if end > n or zlib.crc32(view[start:end]) != _LEN.unpack_from(data, pos + 4)[0]:
                break
            checked = True
        else:
            if checked:  # a journal never goes back to unchecked frames: this is not one
                break
            start = pos + 4
            end = start + word
            if end > n:
                break
        try:
            out.append(_dec.decode(view[start:end]))
        except (msgspec.DecodeError, msgspec.ValidationError):
            break
        pos = end
    return out, pos


def read_journal(path: str | Path) -> tuple[list[JournalRecord], int]:
    """(records, length of the good prefix in bytes); a torn or corrupt tail is left out."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    return parse_journal(data)


def iter_journal(path: str | Path) -> Iterator[JournalRecord]:
    yield from read_journal(path)[0]


class Journal:
    """Append-only writer over a shared file mapping. ``append`` returns once the frame is in
    the page cache (and synced, for ``always``).

    Why a mapping, not ``os.write``: after a few ms without a write the file system's write path
    runs cold, on every order's critical path (the id is journaled before the request is
    written); a copy into a mapped page needs no system call (docs/decisions/011-mapped-journal.md). It keeps what ``os.write`` gave: the page cache is the same, so a
    process crash loses nothing appended; fdatasync on the file writes mapped pages back (the
    same ``batch``/``always`` policies); the file is never read through the mapping.

    The file is grown ahead in ``CHUNK`` steps, so it has a zero tail while open; a frame's
    length word is stored after its bytes, so a crash mid-copy leaves a zero length that
    ``parse_journal`` stops at. Opening truncates the tail to the good prefix, ``close`` to the
    records written.
    """

    CHUNK = 1 << 20  # the file grows by this much at a time (one ftruncate + mmap per MiB)
    RETRY_NS = 1_000_000_000  # while low, how often retry_room tries to grow again

    def __init__(self, path: str | Path, fsync: str = "batch", fsync_interval_ms: int = 50,
                 chunk: int = CHUNK) -> None:
        self.path = Path(path)
        self.chunk = chunk
        # a full disk: the room ahead fell under half a chunk and the file could not grow. The
        # rest of the room is the reserve the events of orders already out are journaled in;
        # execution sends no new order meanwhile (docs/decisions/041-journal-full.md)
        self.low = False
        self._next_retry = 0
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _, good = read_journal(self.path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(self.fd, 0o600)  # an existing file with looser bits is tightened
        size = os.fstat(self.fd).st_size
        if size != good:
            dropped = os.pread(self.fd, size - good, good)
            if dropped.strip(b"\0"):  # more than the zero tail of an open journal: say what went
                log.warn("journal_tail_dropped", path=str(self.path), bytes=size - good, at=good,
                         reason="a torn, cut short or damaged frame (and anything after it)")
            os.ftruncate(self.fd, good)  # drop a torn frame (or a zero tail) from a crash
        self.end = good  # where the next frame goes
        self._mm: mmap.mmap | None = None
        self._cap = 0
        self._grow(0)
        self.policy = fsync
        self.interval_ns = fsync_interval_ms * 1_000_000
        self.dirty = False
        self.last_sync = time.monotonic_ns()
        self.records = 0
        self.syncs = 0
        self._buf = bytearray(HEAD_SIZE)  # frame(): length word, crc32, the encoded record
        self._syncer: threading.Thread | None = None
        self._stop = threading.Event()

    def _grow(self, need: int) -> None:
        """Map the file with room for ``need`` more bytes past ``end`` (whole chunks). A full
        disk raises OSError here, and the old mapping stays as it was."""
        cap = -(-(self.end + need + 1) // self.chunk) * self.chunk
        os.ftruncate(self.fd, cap)
        try:
            # the blocks now: a full disk is an OSError here, not a SIGBUS on some later store
            os.posix_fallocate(self.fd, self.end, cap - self.end)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # not a file system without it
                os.ftruncate(self.fd, max(self._cap, self.end))
                raise
        if self._mm is not None:
            self._mm.close()
        self._mm = mmap.mmap(self.fd, cap, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._cap = cap

    def _grow_ahead(self) -> bool:
        """One chunk more room, before it is needed; a full disk sets ``low`` instead (the room
        left stays usable). True when the room is there."""
        try:
            self._grow(self._cap + self.chunk - self.end - 1)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.low = True
            self._next_retry = time.monotonic_ns() + self.RETRY_NS
            return False
        self.low = False
        return True

    def retry_room(self, now_ns: int | None = None) -> bool:
        """While ``low``, try to grow again (at most every RETRY_NS); True when room is back."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        if not self.low or now < self._next_retry:
            return False
        return self._grow_ahead()

    @property
    def room(self) -> int:
        """Bytes the file can take before it must grow."""
        return self._cap - self.end

    def frame(self, rec: JournalRecord) -> bytearray:
        """``<u32 len | CHECKED><u32 crc32><msgpack>`` of one record, encoded into a buffer reused
        by the next call."""
        buf = self._buf
        _enc.encode_into(rec, buf, HEAD_SIZE)
        _HEAD.pack_into(buf, 0, (len(buf) - HEAD_SIZE) | CHECKED, zlib.crc32(memoryview(buf)[HEAD_SIZE:]))
        return buf

    def append(self, rec: JournalRecord) -> None:
        buf = self.frame(rec)
        n = len(buf)
        end = self.end
        if end + n >= self._cap:
            self._grow(n)
        mm = self._mm
        assert mm is not None
        mm[end + 4:end + n] = memoryview(buf)[4:]
        mm[end:end + 4] = memoryview(buf)[:4]  # the length last: a crash mid-copy leaves 0 here
        self.end = end + n
        self.records += 1
        if self._cap - self.end < self.chunk // 2 and not self.low:
            self._grow_ahead()
        if self.policy == "always":
            os.fdatasync(self.fd)
            self.syncs += 1
        elif self.policy == "batch":
            self.dirty = True

    def warm(self, rec: JournalRecord) -> None:
        """The keep-warm tick: frame ``rec`` and copy its bytes past the last frame, leaving the
        length word there 0, so readers and the next ``append`` (which overwrites them) never
        see it. Besides the code, this dirties the page the next frame goes to: after a sync
        wrote it back, the first store into it faults, and this takes that fault instead."""
        buf = self.frame(rec)
        n = len(buf)
        mm = self._mm
        if mm is None or self.end + n >= self._cap:
            return
        mm[self.end + 4:self.end + n] = memoryview(buf)[4:]

    def maybe_sync(self, now_ns: int | None = None) -> None:
        """Batch policy: fdatasync when dirty and the interval has passed (call from a timer)."""
        if not self.dirty or self._syncer is not None:
            return
        now = time.monotonic_ns() if now_ns is None else now_ns
        if now - self.last_sync >= self.interval_ns:
            self.sync()

    def sync(self) -> None:
        if self.dirty or self.policy == "always":
            self.dirty = False  # before the call: a frame appended during it marks dirty again
            os.fdatasync(self.fd)  # Linux writes back the mapping's dirty pages too
            self.syncs += 1
        self.last_sync = time.monotonic_ns()

    def start_syncer(self) -> None:
        """Batch policy: fdatasync from a thread every ``fsync_interval_ms`` while dirty, so the
        ~5 ms call never runs on the event loop (it releases the GIL). ``maybe_sync`` becomes a
        no-op; ``close`` stops the thread and syncs once more."""
        if self.policy != "batch" or self._syncer is not None:
            return
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
        self._syncer.start()

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.interval_ns / 1e9):
            if self.dirty:
                try:
                    self.sync()
                except OSError:
                    return  # the file was closed under us: close() syncs for the last time

    def close(self) -> None:
        if self._syncer is not None:
            self._stop.set()
            self._syncer.join(timeout=5)
            self._syncer = None
        if self.fd >= 0:
            if self._mm is not None:
                self._mm.close()
                self._mm = None
            os.ftruncate(self.fd, self.end)  # the zero tail goes
            if self.policy != "never":
                self.dirty = True
                self.sync()
            os.close(self.fd)
            self.fd = -1


def default_path(instance: str) -> str:
    return f"run/journal/{instance}/execution.journal"


__all__ = ["Journal", "JournalRecord", "read_journal", "iter_journal", "REC_EPOCH", "REC_POSITION",
           "default_path", "M"]
