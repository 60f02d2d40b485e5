"""Counters and histograms in shm: one owner writes, any process reads."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from shm.counters import (
    N_BUCKETS,
    Counters,
    bucket_of,
    bucket_upper_ns,
    percentile_ns,
    read_counters,
    summary_us,
)
from shm.segment import open_raw


class C(IntEnum):
    MESSAGES = 0
    BYTES = 1


class H(IntEnum):
    RECV_TO_PUBLISH = 0
    OTHER = 1


def test_bucket_upper_bound_is_within_one_thirty_second_of_value() -> None:
    for ns in [150, 999, 1_000, 3_500, 7_000, 18_500, 65_000, 1_000_000, 4_000_000_000]:
        up = bucket_upper_ns(bucket_of(ns))
        assert ns <= up <= ns * (1 + 1 / 32) + 4, (ns, up)
    assert bucket_of(10**13) == N_BUCKETS - 1  # above 10 s: the last bucket


def test_percentiles_when_known_samples_then_match() -> None:
    counts = np.zeros(N_BUCKETS, np.int64)
    for ns in [1000] * 98 + [50_000, 2_000_000]:
        counts[bucket_of(ns)] += 1
    assert percentile_ns(counts, 50) == bucket_upper_ns(bucket_of(1000))
    assert percentile_ns(counts, 99) == bucket_upper_ns(bucket_of(50_000))
    assert percentile_ns(counts, 99.9) == bucket_upper_ns(bucket_of(2_000_000))
    assert np.isnan(percentile_ns(np.zeros(N_BUCKETS, np.int64), 50))


def test_counters_written_by_owner_are_read_by_label(instance: str) -> None:
    c = Counters.create(instance, "md", C, H)
    try:
        c.inc(C.MESSAGES, 5)
        c.inc(C.BYTES, 1234)
        for ns in (1500, 2500, 1_000_000):
            c.record(H.RECV_TO_PUBLISH, ns)
        c.record(H.OTHER, 10)
        seg = open_raw(f"/b25.{instance}.counters.md")
        assert seg is not None
        counters, hists = read_counters(seg)
        seg.close()
        assert counters == {"messages": 5, "bytes": 1234}
        assert set(hists) == {"recv_to_publish", "other"}
        s = summary_us(hists["recv_to_publish"])
        assert s["count"] == 3 and 1.5 <= s["p50_us"] <= 2.9 and s["p99_us"] >= 1000
        assert summary_us(hists["other"])["count"] == 1
    finally:
        c.close(unlink=True)
