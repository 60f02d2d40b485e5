"""The one SeqLock reader (shm.seqlock.StateReader) and RingHeader's cursor reads, in one process."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from shm import layout as L
from shm.ring import Consumer, Producer, RingHeader
from shm.seqlock import StateReader, StateWriter

STATE = np.dtype([("a", "<i8"), ("b", "<i8"), ("pad", "<i8", (6,))])
TWO_WORDS = struct.Struct("<2q")
REC = np.dtype([("seq", "<i8"), ("pad", "<i8", (7,))])


def test_read_if_changed_when_no_write_since_then_none_else_a_copy(instance: str) -> None:
    w = StateWriter.create(instance, "test.state", STATE)
    r = StateReader.attach(instance, "test.state", STATE, timeout=1)
    try:
        recs, version = r.read_if_changed(-1)  # nothing seen yet: the zeros, version 0
        assert version == 0 and recs[0]["a"] == 0
        assert r.read_if_changed(0) is None
        w.write(0, (5, 6, [0] * 6))
        recs, version = r.read_if_changed(0)
        assert version == 1 and (recs[0]["a"], recs[0]["b"]) == (5, 6)
        assert r.read_if_changed(1) is None
    finally:
        r.close()
        w.close(unlink=True)


def test_unpack_if_changed_when_written_then_values_and_when_writer_inside_then_waits(instance: str) -> None:
    w = StateWriter.create(instance, "test.state", STATE)
    r = StateReader.attach(instance, "test.state", STATE, timeout=1)
    try:
        w.write(0, (7, 8, [0] * 6))
        assert r.unpack_if_changed(-1, TWO_WORDS) == ((7, 8), 1)
        assert r.unpack_if_changed(1, TWO_WORDS) is None
        w.begin()  # a writer inside a write (preempted, or died there)
        w.records[0]["a"] = 9
        with pytest.raises(TimeoutError, match="segment=.*test.state"):
            r.unpack_if_changed(1, TWO_WORDS, timeout_s=0.01)
        assert r.retries > 0
        w.end()
        assert r.unpack_if_changed(1, TWO_WORDS) == ((9, 8), 2)
        assert r.written and r.producer_pid == os.getpid()
    finally:
        r.close()
        w.close(unlink=True)


def test_ring_header_when_named_consumer_commits_then_its_cursor_by_name(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("first", "second"))
    head = RingHeader(p.seg)
    try:
        assert not head.consumer_attached("second")
        c = Consumer.attach(instance, "r", REC, "second", timeout=1)
        for i in range(3):
            assert p.try_publish(i, 0, 0, 0, 0, 0, 0, 0)
        assert len(c.poll()) == 3
        c.commit()
        assert head.write_cursor() == 3 and head.capacity == 8
        assert head.consumer_cursor("second") == 3 and head.consumer_cursor("first") == 0
        assert head.consumer_cursor("nobody") == -1
        assert head.consumer_attached("second") and not head.consumer_attached("first")
        c.close()
    finally:
        p.close(unlink=True)
