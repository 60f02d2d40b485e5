"""Raw frame recorder: a child process fed by a faster-fifo queue, so gzip and the disk never
stall the market-data loop.

The hot loop appends ``<ts_recv_ns> <frame>\\n`` lines to an in-memory batch and hands the
batch over (one ``put_nowait`` of one bytes blob) every ``FLUSH_FRAMES`` frames or on the
periodic flush. A full queue drops that batch and counts it. The child writes gz files with
rotation by size and age; the line format is the hftbacktest one, so ``b25 book`` and the
simulator's replay read our recordings and theirs alike.
"""

from __future__ import annotations

import gzip
import multiprocessing as mp
import os
import queue
import signal
import time
from pathlib import Path

import faster_fifo

from .config import RecorderConfig

FLUSH_FRAMES = 256
STOP = b""


class Recorder:
    """The parent's side: ``add(ts_ns, frame)`` on the hot path, ``flush()`` periodically."""

    def __init__(self, cfg: RecorderConfig, prefix: str) -> None:
        self.cfg = cfg
        self.q = faster_fifo.Queue(max_size_bytes=cfg.queue_mb * 1024 * 1024)
        self.lines: list[bytes] = []
        self.dropped_batches = 0
        self.bytes = 0
        # wall-clock ns from monotonic ns: recordings carry wall time like hftbacktest's
        self._wall_offset = time.time_ns() - time.monotonic_ns()
        ctx = mp.get_context("fork")
        self.proc = ctx.Process(target=_child, args=(self.q, cfg, prefix), daemon=True, name="b25-recorder")
        self.proc.start()

    def add(self, ts_recv_ns: int, frame: bytes) -> None:
        self.lines.append(b"%d %s\n" % (ts_recv_ns + self._wall_offset, frame))
        if len(self.lines) >= FLUSH_FRAMES:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        blob = b"".join(self.lines)
        self.lines.clear()
        try:
            self.q.put_nowait(blob)
            self.bytes += len(blob)
        except queue.Full:
            self.dropped_batches += 1

    def close(self, timeout: float = 5.0) -> None:
        self.flush()
        try:
            self.q.put(STOP, timeout=timeout)
        except queue.Full:
            pass
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(1)


def _child(q: faster_fifo.Queue, cfg: RecorderConfig, prefix: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    d = Path(cfg.dir)
    d.mkdir(parents=True, exist_ok=True)
    out = None
    raw = None
    written = 0
    opened = 0.0

    def rotate():
        nonlocal out, raw, written, opened
        if out is not None:
            out.close()  # GzipFile does not close the file object it was given
            raw.close()
        name = d / f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}.gz"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        raw = os.fdopen(fd, "wb")
        out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3)
        written = 0
        opened = time.monotonic()

    rotate()
    while True:
        try:
            batches = q.get_many(timeout=1.0)
        except queue.Empty:
            batches = []
        for b in batches:
            if b == STOP:
                out.close()
                raw.close()
                return
            out.write(b)
            written += len(b)
        if batches:
            out.flush()  # a sync point: readers of the live file (/api/history/bars) see whole batches
        if written >= cfg.rotate_mb * 1024 * 1024 or time.monotonic() - opened >= cfg.rotate_s:
            rotate()
