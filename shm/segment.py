"""Segment: one POSIX shared-memory object with a validated b25 header.

Names are ``/b25.<instance>.<name>``; the owner creates the segment 0600, readers attach with
a timeout. Setup raises with ``key=value`` context; nothing here is on a hot path.
"""

from __future__ import annotations

import mmap
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import posix_ipc

from . import layout as L

if platform.machine() not in ("x86_64", "AMD64"):
    # Publication order relies on x86-64 total store order (record stores, then the cursor
    # store, are seen in that order). Another architecture needs explicit fences first.
    raise RuntimeError(f"b25 shm needs x86-64 store ordering: machine={platform.machine()}")

SHM_DIR = Path("/dev/shm")
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_SEG_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
DEFAULT_INSTANCE = os.environ.get("B25_INSTANCE", "main")


class LayoutError(RuntimeError):
    """An existing segment's header does not match what the caller expects."""


class AttachTimeout(TimeoutError):
    """A reader waited for a segment that no producer created in time."""


def check_instance(instance: str) -> str:
    if not _NAME_RE.match(instance):
        raise ValueError(f"instance name must match [A-Za-z0-9_-]+: instance={instance!r}")
    return instance


def shm_name(instance: str, name: str) -> str:
    check_instance(instance)
    if not _SEG_RE.match(name):
        raise ValueError(f"segment name must match [A-Za-z0-9_.-]+: name={name!r}")
    return f"/b25.{instance}.{name}"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


class Segment:
    """A mapped segment: ``words`` is the int64 view of the header, ``buf`` the whole mapping."""

    def __init__(self, name: str, mm: mmap.mmap, created: bool) -> None:
        self.name = name
        self.mm = mm
        self.buf = memoryview(mm)
        self.words = self.buf[: L.HEADER_SIZE].cast("q")
        self.created = created

    # -- creation ---------------------------------------------------------------------------
    def _write_header(self, name: str, kind: int, capacity: int, dtype: np.dtype, policy: int) -> None:
        w = self.words
        w[L.W_VERSION] = L.LAYOUT_VERSION
        w[L.W_KIND] = kind
        w[L.W_CAPACITY] = capacity
        w[L.W_RECORD_SIZE] = dtype.itemsize
        w[L.W_DTYPE_HASH] = L.dtype_hash(dtype)
        w[L.W_POLICY] = policy
        w[L.W_DATA_OFFSET] = L.HEADER_SIZE
        w[L.W_NAME_HASH] = L.name_hash(name)
        w[L.W_START_NS] = time.time_ns()
        w[L.W_MAGIC] = L.MAGIC  # last: readers wait for the magic before trusting the rest

    @classmethod
    def anonymous(cls, name: str, kind: int, capacity: int, dtype: np.dtype, policy: int = 0) -> Segment:
        """A segment with the same header and layout in private anonymous memory: nothing in
        /dev/shm, no other process can see it (scratch rings and counters, e.g. keep-warm's)."""
        dtype = np.dtype(dtype)
        seg = cls(name, mmap.mmap(-1, L.segment_size(kind, capacity, dtype.itemsize)), True)
        seg._write_header(name, kind, capacity, dtype, policy)
        return seg

    @classmethod
    def create_or_open(cls, instance: str, name: str, kind: int, capacity: int, dtype: np.dtype,
                       policy: int = 0) -> Segment:
        """Create the segment (0600) or reopen an existing one with the same layout.

        Reopening is how a restarted producer resumes at the cursor stored in the header.
        """
        dtype = np.dtype(dtype)
        if capacity <= 0 or (kind == L.KIND_RING and capacity & (capacity - 1)):
            raise ValueError(f"capacity must be a power of 2: capacity={capacity} segment={name}")
        if kind == L.KIND_RING and dtype.itemsize % L.LINE:
            raise ValueError(f"record size must be a multiple of 64: itemsize={dtype.itemsize} segment={name}")
        full = shm_name(instance, name)
        size = L.segment_size(kind, capacity, dtype.itemsize)
        try:
            mem = posix_ipc.SharedMemory(full, posix_ipc.O_CREX, mode=0o600, size=size)
            created = True
        except posix_ipc.ExistentialError:
            mem = posix_ipc.SharedMemory(full)
            created = False
        try:
            mm = mmap.mmap(mem.fd, mem.size)
        finally:
            mem.close_fd()
        seg = cls(full, mm, created)
        w = seg.words
        if created:
            seg._write_header(name, kind, capacity, dtype, policy)
        else:
            seg.wait_magic(full, 2.0)
            seg.validate(kind, capacity, dtype)
        w[L.W_PRODUCER_PID] = os.getpid()
        w[L.W_HEARTBEAT_NS] = time.monotonic_ns()
        return seg

    @classmethod
    def attach(cls, instance: str, name: str, kind: int, dtype: np.dtype | None,
               capacity: int | None = None, timeout: float = 5.0) -> Segment:
        """Attach to a segment another process owns, waiting up to ``timeout`` seconds for it."""
        full = shm_name(instance, name)
        deadline = time.monotonic() + timeout
        while True:
            try:
                mem = posix_ipc.SharedMemory(full)
                break
            except posix_ipc.ExistentialError:
                if time.monotonic() >= deadline:
                    raise AttachTimeout(f"no producer created the segment in time: segment={full} "
                                        f"timeout_s={timeout}") from None
                time.sleep(0.01)
        try:
            while mem.size < L.HEADER_SIZE and time.monotonic() < deadline:
                time.sleep(0.005)
                mem.close_fd()
                mem = posix_ipc.SharedMemory(full)
            if mem.size < L.HEADER_SIZE:  # created, not sized yet: its producer is still starting
                raise AttachTimeout(f"the producer has not sized the segment yet: segment={full} "
                                    f"size={mem.size} timeout_s={timeout}")
            mm = mmap.mmap(mem.fd, mem.size)
        finally:
            mem.close_fd()
        seg = cls(full, mm, False)
        try:
            seg.wait_magic(full, max(0.0, deadline - time.monotonic()))
        except LayoutError:
            if seg.words[L.W_MAGIC] != 0:
                raise
            seg.close()  # all zeros: the producer has not written the header yet, not a bad layout
            raise AttachTimeout(f"the producer has not written the segment's header yet: segment={full} "
                                f"timeout_s={timeout}") from None
        if dtype is not None:
            seg.validate(kind, capacity, np.dtype(dtype))
        return seg

    def wait_magic(self, full: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.words[L.W_MAGIC] != L.MAGIC:
            if time.monotonic() >= deadline:
                raise LayoutError(f"segment has no b25 magic: segment={full} magic={self.words[L.W_MAGIC]:#x}")
            time.sleep(0.005)

    def validate(self, kind: int, capacity: int | None, dtype: np.dtype) -> None:
        w = self.words
        if w[L.W_VERSION] != L.LAYOUT_VERSION:
            raise LayoutError(f"layout version mismatch: segment={self.name} "
                              f"segment_version={w[L.W_VERSION]} expected_version={L.LAYOUT_VERSION}")
        if w[L.W_KIND] != kind:
            raise LayoutError(f"segment kind mismatch: segment={self.name} "
                              f"segment_kind={L.KIND_NAMES.get(w[L.W_KIND], w[L.W_KIND])} "
                              f"expected_kind={L.KIND_NAMES.get(kind, kind)}")
        h = L.dtype_hash(dtype)
        if w[L.W_DTYPE_HASH] != h or w[L.W_RECORD_SIZE] != dtype.itemsize:
            raise LayoutError(f"record dtype mismatch: segment={self.name} "
                              f"segment_dtype_hash={w[L.W_DTYPE_HASH]:#x} segment_record_size={w[L.W_RECORD_SIZE]} "
                              f"expected_dtype_hash={h:#x} expected_record_size={dtype.itemsize}")
        if capacity is not None and w[L.W_CAPACITY] != capacity:
            raise LayoutError(f"capacity mismatch: segment={self.name} segment_capacity={w[L.W_CAPACITY]} "
                              f"expected_capacity={capacity}")

    def holds(self, dtype: np.dtype) -> bool:
        """Its records are of ``dtype`` (record size and dtype hash match): ``validate`` without raising."""
        w = self.words
        return w[L.W_RECORD_SIZE] == dtype.itemsize and w[L.W_DTYPE_HASH] == L.dtype_hash(dtype)

    # -- data -------------------------------------------------------------------------------
    def records(self, dtype: np.dtype) -> np.ndarray:
        """The record area as a numpy structured array (a view on the mapping)."""
        off = self.words[L.W_DATA_OFFSET]
        n = self.words[L.W_CAPACITY]
        return np.frombuffer(self.mm, dtype=dtype, count=n, offset=off)

    def close(self) -> None:
        """Unmap; views handed out earlier must be gone (numpy keeps the mmap alive otherwise)."""
        try:
            self.words.release()
            self.buf.release()
            self.mm.close()
        except (BufferError, ValueError):
            pass  # a numpy view still references the mapping; it is freed with the view

    def unlink(self) -> None:
        unlink(self.name)


def unlink(full: str) -> bool:
    try:
        posix_ipc.unlink_shared_memory(full)
        return True
    except posix_ipc.ExistentialError:
        return False


def list_segments(instance: str | None = None) -> list[str]:
    """Full names (``/b25.<instance>.<name>``) of b25 segments present, optionally of one instance."""
    out = []
    if not SHM_DIR.is_dir():
        return out
    prefix = f"b25.{instance}." if instance else "b25."
    for p in sorted(SHM_DIR.iterdir()):
        if p.name.startswith(prefix):
            out.append("/" + p.name)
    return out


def list_semaphores(instance: str | None = None) -> list[str]:
    prefix = f"sem.b25.{instance}." if instance else "sem.b25."
    if not SHM_DIR.is_dir():
        return []
    return ["/" + p.name[4:] for p in sorted(SHM_DIR.iterdir()) if p.name.startswith(prefix)]


def list_fifos(instance: str | None = None) -> list[str]:
    """Paths of wake FIFOs (``shm.idle.FdWaiter``), optionally of one instance."""
    prefix = f"b25fifo.{instance}." if instance else "b25fifo."
    if not SHM_DIR.is_dir():
        return []
    return [str(p) for p in sorted(SHM_DIR.iterdir()) if p.name.startswith(prefix)]


def open_raw(full: str) -> Segment | None:
    """Map an existing segment read-only-in-spirit for inspection (``b25 shm ls``)."""
    try:
        mem = posix_ipc.SharedMemory(full)
    except posix_ipc.ExistentialError:
        return None
    try:
        if mem.size < L.HEADER_SIZE:
            return None
        mm = mmap.mmap(mem.fd, mem.size)
    finally:
        mem.close_fd()
    seg = Segment(full, mm, False)
    if seg.words[L.W_MAGIC] != L.MAGIC:
        seg.close()
        return None
    return seg
