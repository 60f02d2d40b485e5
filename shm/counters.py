"""Counters and latency histograms in shared memory (like Aeron's counters file).

One owner per segment writes; the monitor, the TUI and ``b25 shm ls`` read. A counter is one
int64 slot addressed by an ``IntEnum`` id; its label lives in the segment so a reader needs no
code from the owner. A histogram is a row of log-linear buckets covering 100 ns .. 10 s:
``SUB`` linear buckets per power of two, so the relative error of a percentile is <= 1/SUB.
"""

from __future__ import annotations

import math
import os
import time
from enum import IntEnum

import numpy as np

from . import layout as L
from .segment import Segment

LABEL_BYTES = 40
SUB_BITS = 5
# 32 linear buckets per power of two: a percentile is reported <= 3.1% above the true value,
# at 928 buckets, 7.4 KiB a histogram (docs/decisions/021-histogram-resolution.md).
SUB = 1 << SUB_BITS
MIN_EXP = 6  # values below 2**7 ns (~128 ns) share the first bucket row
MAX_EXP = 34  # 2**34 ns ~ 17 s: everything above lands in the last bucket
N_BUCKETS = (MAX_EXP - MIN_EXP + 1) * SUB

COUNTER_DTYPE = np.dtype([("value", "<i8"), ("label", f"S{LABEL_BYTES}"), ("kind", "<i8"), ("_pad", "<i8")])
KIND_COUNTER = 1
KIND_HISTOGRAM = 2


def bucket_of(ns: int) -> int:
    """Bucket index of a latency in nanoseconds (log-linear)."""
    if ns < (1 << (MIN_EXP + 1)):
        return int(ns) >> (MIN_EXP + 1 - SUB_BITS) if ns > 0 else 0
    e = int(ns).bit_length() - 1
    if e > MAX_EXP:
        return N_BUCKETS - 1
    return (e - MIN_EXP) * SUB + ((int(ns) >> (e - SUB_BITS)) & (SUB - 1))


def bucket_upper_ns(i: int) -> float:
    """Upper bound (ns) of bucket ``i``: percentiles report it (never under-state latency)."""
    row, sub = divmod(i, SUB)
    if row == 0:
        return float((sub + 1) << (MIN_EXP + 1 - SUB_BITS))
    e = row + MIN_EXP
    return float((1 << e) + ((sub + 1) << (e - SUB_BITS)))


def percentile_ns(counts: np.ndarray, q: float) -> float:
    """The q-th percentile (0..100) in ns from bucket counts; nan when empty."""
    total = int(counts.sum())
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(total * q / 100.0))
    idx = int(np.searchsorted(np.cumsum(counts), rank))
    return bucket_upper_ns(min(idx, len(counts) - 1))


def summary_us(counts: np.ndarray) -> dict[str, float]:
    """{"count", "p50_us", "p95_us", "p99_us", "p999_us"} of one histogram row."""
    return {
        "count": int(counts.sum()),
        "p50_us": round(percentile_ns(counts, 50) / 1000, 3),
        "p95_us": round(percentile_ns(counts, 95) / 1000, 3),
        "p99_us": round(percentile_ns(counts, 99) / 1000, 3),
        "p999_us": round(percentile_ns(counts, 99.9) / 1000, 3),
    }


def counters_rows(counters: type[IntEnum] | None, histograms: type[IntEnum] | None) -> int:
    """Rows of COUNTER_DTYPE a counters segment with these ids needs (each histogram: a label
    row, its buckets 8 to a row, and a spare)."""
    nc = len(counters) if counters else 0
    nh = len(histograms) if histograms else 0
    return nc + nh * (1 + N_BUCKETS // 8 + 1) + 1


class Counters:
    """The owner's side: ``inc(id)``, ``set(id, v)``, ``record(hist_id, ns)``.

    ``counters`` and ``histograms`` are IntEnums; ids index rows, labels are the enum names.
    """

    @classmethod
    def create(cls, instance: str, owner: str, counters: type[IntEnum] | None,
               histograms: type[IntEnum] | None = None) -> Counters:
        seg = Segment.create_or_open(instance, f"counters.{owner}", L.KIND_COUNTERS,
                                     counters_rows(counters, histograms), COUNTER_DTYPE)
        return cls(seg, counters, histograms)

    def __init__(self, seg: Segment, counters: type[IntEnum] | None, histograms: type[IntEnum] | None) -> None:
        self.seg = seg
        self.rows = seg.records(COUNTER_DTYPE)
        nc = len(counters) if counters else 0
        nh = len(histograms) if histograms else 0
        for c in counters or ():
            self.rows[int(c)]["label"] = c.name.lower().encode()[:LABEL_BYTES]
            self.rows[int(c)]["kind"] = KIND_COUNTER
        # histogram buckets live in the int64 area after the counter rows (8 buckets per 64-byte row)
        self._hist_base_row = nc
        rows_per_hist = 1 + N_BUCKETS // 8 + 1
        self._rows_per_hist = rows_per_hist
        for h in histograms or ():
            r = nc + int(h) * rows_per_hist
            self.rows[r]["label"] = h.name.lower().encode()[:LABEL_BYTES]
            self.rows[r]["kind"] = KIND_HISTOGRAM
        self.n_counters = nc
        self.n_histograms = nh
        off = seg.words[L.W_DATA_OFFSET]
        self._values = seg.buf[off:off + len(self.rows) * COUNTER_DTYPE.itemsize].cast("q")
        self._buckets = seg.buf[off:off + len(self.rows) * COUNTER_DTYPE.itemsize].cast("q")
        seg.words[L.W_PRODUCER_PID] = os.getpid()

    def _bucket_word(self, hist: int, bucket: int) -> int:
        row = self._hist_base_row + hist * self._rows_per_hist + 1
        return row * 8 + bucket

    def inc(self, counter: int, n: int = 1) -> None:
        self._values[counter * 8] += n

    def set(self, counter: int, value: int) -> None:
        self._values[counter * 8] = value

    def get(self, counter: int) -> int:
        return self._values[counter * 8]

    def record(self, hist: int, ns: int) -> None:
        """Add one latency sample (ns) to histogram ``hist``: one array increment."""
        self._buckets[self._bucket_word(hist, bucket_of(ns))] += 1

    def heartbeat(self) -> None:
        self.seg.words[L.W_HEARTBEAT_NS] = time.monotonic_ns()

    def close(self, unlink: bool = False) -> None:
        self.rows = None  # type: ignore[assignment]
        for mv in (self._values, self._buckets):
            mv.release()
        if unlink:
            self.seg.unlink()
        self.seg.close()


def counter_words(seg: Segment) -> np.ndarray:
    """A counters segment's rows as one flat int64 view (row ``i``'s value is word ``8 * i``)."""
    rows = seg.records(COUNTER_DTYPE)
    return rows.view("<i8").reshape(-1)


def read_counters(seg: Segment) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """(counters by label, histogram bucket counts by label) from any counters segment."""
    rows = seg.records(COUNTER_DTYPE)
    counters: dict[str, int] = {}
    hists: dict[str, np.ndarray] = {}
    flat = counter_words(seg)
    i = 0
    rows_per_hist = 1 + N_BUCKETS // 8 + 1
    while i < len(rows):
        kind = int(rows[i]["kind"])
        label = rows[i]["label"].decode(errors="replace")
        if kind == KIND_COUNTER:
            counters[label] = int(rows[i]["value"])
            i += 1
        elif kind == KIND_HISTOGRAM:
            start = (i + 1) * 8
            hists[label] = flat[start:start + N_BUCKETS].copy()
            i += rows_per_hist
        else:
            i += 1
    return counters, hists
