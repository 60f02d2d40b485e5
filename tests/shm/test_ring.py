"""Ring behaviour in one process: publication, batches, wraparound, lapping, gating, layout."""

from __future__ import annotations

import os
import stat
import threading
import time

import numpy as np
import pytest

from shm import layout as L
from shm.ring import Consumer, Producer, struct_for
from shm.segment import AttachTimeout, LayoutError, Segment, list_segments

REC = np.dtype([("seq", "<i8"), ("a", "<i8"), ("b", "<f8"), ("pad", "<i8", (5,))])


def _pair(instance: str, policy: int, capacity: int = 8, consumers: tuple[str, ...] = ("c",)):
    p = Producer.create(instance, "r", REC, capacity, policy, consumers)
    c = Consumer.attach(instance, "r", REC, consumers[0] if consumers else None, timeout=1)
    return p, c


def _close(p: Producer, *cs: Consumer) -> None:
    for c in cs:
        c.close()
    p.close(unlink=True)


def test_struct_for_matches_numpy_layout() -> None:
    s = struct_for(REC)
    buf = bytearray(REC.itemsize)
    s.pack_into(buf, 0, 7, -3, 2.5, 1, 2, 3, 4, 5)
    r = np.frombuffer(bytes(buf), REC)[0]
    assert (r["seq"], r["a"], r["b"], list(r["pad"])) == (7, -3, 2.5, [1, 2, 3, 4, 5])


def test_try_publish_when_gating_ring_full_returns_false_and_counts(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 8)
    try:
        for i in range(8):
            assert p.try_publish(i, 0, 0.0, 0, 0, 0, 0, 0)
        assert not p.try_publish(8, 0, 0.0, 0, 0, 0, 0, 0)
        assert p.seg.words[L.W_FULL_WAITS] == 1
        batch = c.poll()
        assert list(batch["seq"]) == list(range(8))
        c.commit()
        assert p.try_publish(8, 0, 0.0, 0, 0, 0, 0, 0)
    finally:
        _close(p, c)


def test_poll_when_many_laps_then_every_record_in_order(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 16)
    try:
        seen: list[int] = []
        seq = 0
        for _lap in range(1000):  # 1000 laps of a 16-slot ring, uneven batch sizes
            for _ in range(1 + _lap % 16):
                assert p.try_publish(seq, seq * 3, float(seq), 0, 0, 0, 0, 0)
                seq += 1
            while True:
                b = c.poll()
                if not len(b):
                    break
                assert np.array_equal(b["a"], b["seq"] * 3)
                seen.extend(b["seq"].tolist())
                c.commit()
        assert seen == list(range(seq))
        assert seq > 16 * 500
    finally:
        _close(p, c)


def test_poll_returns_view_for_gating_and_cursor_moves_once_per_batch(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 8)
    try:
        for i in range(5):
            p.try_publish(i, 0, 0.0, 0, 0, 0, 0, 0)
        b = c.poll()
        assert b.base is not None and len(b) == 5
        cursor_word = L.consumer_word(0, L.C_CURSOR)
        assert p.seg.words[cursor_word] == 0  # not moved before commit
        c.commit()
        assert p.seg.words[cursor_word] == 5
    finally:
        _close(p, c)


def test_poll_when_broadcast_consumer_lapped_then_loss_counted_exactly_and_newest_kept(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_BROADCAST, 8)
    obs = Consumer.attach(instance, "r", REC, None, timeout=1, from_start=True)
    try:
        for i in range(100):
            assert p.try_publish(i, 0, 0.0, 0, 0, 0, 0, 0)  # producer never waits
        b = c.poll()
        assert list(b["seq"]) == [99]
        assert c.lost == 99
        c.commit()
        for i in range(100, 105):
            p.try_publish(i, 0, 0.0, 0, 0, 0, 0, 0)
        got: list[int] = []
        while len(b := c.poll()):  # a batch stops at the end of the buffer
            got.extend(b["seq"].tolist())
            c.commit()
        assert got == list(range(100, 105))
        assert c.lost == 99
        ob = obs.poll()
        assert list(ob["seq"]) == [104] and obs.lost == 104
    finally:
        _close(p, c, obs)


def test_poll_one_returns_flat_tuple_and_advances(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 8)
    try:
        p.try_publish(42, 7, 1.5, 1, 2, 3, 4, 5)
        assert c.poll_one() == (42, 7, 1.5, 1, 2, 3, 4, 5)
        assert c.poll_one() is None
    finally:
        _close(p, c)


def test_spin_one_when_records_arrive_later_then_waits_and_returns_each_in_order(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 8)
    n = 50

    def produce() -> None:
        for i in range(n):  # more than the ring holds: the producer waits for the spinning reader
            while not p.try_publish(i, i * 3, 0.5, 0, 0, 0, 0, 0):
                time.sleep(0.0001)
            if i % 10 == 0:
                time.sleep(0.002)  # the reader spins on an empty ring meanwhile
    t = threading.Thread(target=produce)
    try:
        t.start()
        got = [c.spin_one() for _ in range(n)]
        t.join()
        assert [g[:3] for g in got] == [(i, i * 3, 0.5) for i in range(n)]
        assert c.poll_one() is None
    finally:
        t.join()
        _close(p, c)


def test_spin_one_when_lapped_on_broadcast_then_newest_and_loss_counted(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_BROADCAST, 8)
    try:
        for i in range(20):
            assert p.try_publish(i, 0, 0.0, 0, 0, 0, 0, 0)
        assert c.spin_one()[0] == 19 and c.lost == 19
        assert p.try_publish(20, 0, 0.0, 0, 0, 0, 0, 0)
        assert c.spin_one()[0] == 20
    finally:
        _close(p, c)


def test_publish_batch_when_wrapping_then_consumer_sees_all(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 8)
    try:
        arr = np.zeros(6, REC)
        arr["seq"] = np.arange(6)
        assert p.publish_batch(arr) == 6
        c.poll()
        c.commit()
        arr["seq"] = np.arange(6, 12)
        assert p.publish_batch(arr) == 6  # wraps the end of the buffer
        got = []
        while len(b := c.poll()):
            got.extend(b["seq"].tolist())
            c.commit()
        assert got == list(range(6, 12))
    finally:
        _close(p, c)


def test_claim_then_publish_writes_numpy_fields(instance: str) -> None:
    p, c = _pair(instance, L.POLICY_GATING, 8)
    try:
        slot = p.try_claim()
        p.records[slot]["seq"] = 5
        p.records[slot]["pad"] = [9, 9, 9, 9, 9]
        p.publish()
        b = c.poll()
        assert b[0]["seq"] == 5 and list(b[0]["pad"]) == [9] * 5
    finally:
        _close(p, c)


def test_create_when_capacity_not_power_of_two_then_value_error(instance: str) -> None:
    with pytest.raises(ValueError, match="capacity must be a power of 2: capacity=1000"):
        Producer.create(instance, "r", REC, 1000, L.POLICY_GATING)
    assert list_segments(instance) == []


def test_attach_when_dtype_differs_then_error_names_both(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
    other = np.dtype([("x", "<i8"), ("pad", "<i8", (7,))])
    try:
        with pytest.raises(LayoutError) as e:
            Consumer.attach(instance, "r", other, None, timeout=1)
        msg = str(e.value)
        assert "segment_dtype_hash" in msg and "expected_dtype_hash" in msg
    finally:
        p.close(unlink=True)


def test_attach_when_layout_version_differs_then_error_names_both(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
    try:
        p.seg.words[L.W_VERSION] = 99
        with pytest.raises(LayoutError, match=f"segment_version=99 expected_version={L.LAYOUT_VERSION}"):
            Consumer.attach(instance, "r", REC, None, timeout=1)
    finally:
        p.close(unlink=True)


def test_attach_when_no_producer_then_times_out_clearly(instance: str) -> None:
    with pytest.raises(AttachTimeout, match=f"segment=/b25.{instance}.r timeout_s=0.2"):
        Consumer.attach(instance, "r", REC, None, timeout=0.2)


def test_attach_when_producer_is_still_starting_then_times_out_not_a_layout_error(instance: str) -> None:
    """A segment created but not yet sized, or sized but its header not yet written (the producer
    is between the two steps), is "not ready": AttachTimeout, which attach loops retry; only a
    header that is there and wrong is a LayoutError."""
    import posix_ipc

    full = f"/b25.{instance}.r"
    mem = posix_ipc.SharedMemory(full, posix_ipc.O_CREX, size=0)
    try:
        with pytest.raises(AttachTimeout, match="has not sized the segment yet"):
            Consumer.attach(instance, "r", REC, None, timeout=0.0)
        os.ftruncate(mem.fd, L.HEADER_SIZE + 4096)
        with pytest.raises(AttachTimeout, match="has not written the segment's header yet"):
            Consumer.attach(instance, "r", REC, None, timeout=0.05)
    finally:
        mem.close_fd()
        mem.unlink()
    with pytest.raises(LayoutError, match="no b25 magic"):
        p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
        try:
            p.seg.words[L.W_MAGIC] = 0x1234
            Consumer.attach(instance, "r", REC, None, timeout=0.05)
        finally:
            p.close(unlink=True)


def test_attach_when_consumer_not_declared_then_value_error(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    try:
        with pytest.raises(ValueError, match="consumer not declared"):
            Consumer.attach(instance, "r", REC, "zzz", timeout=1)
    finally:
        p.close(unlink=True)


def test_segments_are_created_0600(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    try:
        mode = stat.S_IMODE(os.stat(f"/dev/shm/b25.{instance}.r").st_mode)
        assert mode == 0o600
    finally:
        p.close(unlink=True)


def test_producer_reopen_resumes_at_stored_cursor(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
    for i in range(5):
        p.try_publish(i, 0, 0.0, 0, 0, 0, 0, 0)
    p.close()
    p2 = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
    try:
        assert p2.next_sequence == 5
    finally:
        p2.close(unlink=True)


def test_struct_for_when_dtype_has_void_padding_then_padding_is_skipped() -> None:
    dt = np.dtype([("a", "<i8"), ("name", "S8"), ("_pad", "V48")])
    s = struct_for(dt)
    assert s.size == 64
    buf = bytearray(64)
    s.pack_into(buf, 0, 5, b"abc")
    r = np.frombuffer(bytes(buf), dt)[0]
    assert r["a"] == 5 and r["name"] == b"abc"


def test_anonymous_segment_when_used_as_ring_then_same_layout_and_nothing_in_dev_shm() -> None:
    before = set(os.listdir("/dev/shm"))
    dt = np.dtype([("seq", "<i8"), ("v", "<i8"), ("_pad", "V48")])
    seg = Segment.anonymous("scratch", L.KIND_RING, 8, dt, L.POLICY_BROADCAST)
    w = seg.words
    assert (w[L.W_MAGIC], w[L.W_VERSION], w[L.W_KIND], w[L.W_CAPACITY], w[L.W_RECORD_SIZE]) == (
        L.MAGIC, L.LAYOUT_VERSION, L.KIND_RING, 8, 64)
    assert w[L.W_DTYPE_HASH] == L.dtype_hash(dt)
    prod = Producer(seg, dt, "scratch")
    cons = Consumer(seg, dt, None, None)
    for i in range(20):  # laps the 8-slot ring: the lapped reader jumps to the newest
        assert prod.try_publish(i, i * 10)
    assert cons.poll_one() == (19, 190) and cons.lost == 19
    assert cons.poll_one() is None
    assert prod.try_publish(20, 200)
    assert cons.poll_one() == (20, 200)
    assert set(os.listdir("/dev/shm")) == before
    prod.close()
