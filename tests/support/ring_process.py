"""Helper processes for the cross-process shm tests: ``python tests/support/ring_process.py ROLE ...``."""

from __future__ import annotations

import sys
import time

import numpy as np

from shm import layout as L
from shm.idle import Waiter, make_idle
from shm.ring import Consumer, Producer
from shm.seqlock import StateWriter

REC = np.dtype([("seq", "<i8"), ("check", "<i8"), ("pad", "<i8", (6,))])
MIX = 0x9E3779B97F4A7C15 & ((1 << 63) - 1)
MASK63 = (1 << 63) - 1
STATE = np.dtype([("v", "<i8", (64,))])


def check_of(seq: int) -> int:
    return (seq * MIX) & MASK63


def producer(instance: str, total: int, capacity: int, pace_us: float) -> None:
    p = Producer.create(instance, "test.ring", REC, capacity, L.POLICY_GATING, ("c",))
    seq = p.next_sequence  # resume after a crash at the cursor stored in the header
    print(f"start {seq}", flush=True)
    pad = (0, 0, 0, 0, 0, 0)
    while seq < total:
        if p.try_publish(seq, check_of(seq), *pad):
            seq += 1
            if pace_us:
                time.sleep(pace_us / 1e6)
        else:
            time.sleep(0.00002)
    print("done", flush=True)
    time.sleep(30)  # stay alive as the producer until the test stops us


def consumer(instance: str, total: int, out_path: str, idle: str) -> None:
    waiter = Waiter(instance, "test-consumer") if idle in ("block", "backoff") else None
    c = Consumer.attach(instance, "test.ring", REC, "c", timeout=10, waiter=waiter)
    idle_s = make_idle(idle, waiter)
    print(f"start {c.position}", flush=True)
    got = 0
    bad = 0
    expected = c.position
    with open(out_path, "ab") as out:
        while expected < total:
            batch = c.poll()
            n = len(batch)
            if n:
                seqs = batch["seq"]
                want = np.arange(expected, expected + n, dtype=np.int64)
                checks = ((want.astype(np.uint64) * np.uint64(MIX)) & np.uint64(MASK63)).astype(np.int64)
                if not np.array_equal(seqs, want) or not np.array_equal(batch["check"], checks):
                    bad += 1
                out.write(seqs.tobytes())
                out.flush()
                expected += n
                got += n
                c.commit()
            idle_s.idle(n)
    print(f"ok got={got} bad={bad} last={expected}", flush=True)
    if waiter:
        waiter.close()


def seqlock_writer(instance: str, seconds: float) -> None:
    w = StateWriter.create(instance, "test.state", STATE)
    k = 0
    end = time.monotonic() + seconds
    print("start", flush=True)
    rec = w.records
    while time.monotonic() < end:
        k += 1
        w.begin()
        rec["v"][0, :] = k
        w.end()
    print(f"done {k}", flush=True)
    time.sleep(30)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "producer":
        producer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif role == "consumer":
        consumer(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif role == "seqlock":
        seqlock_writer(sys.argv[2], float(sys.argv[3]))
