"""Segment layout: every offset and size of a b25 shared-memory segment, drawn once.

Each ring, state block and counters file is one POSIX shm object ``/b25.<instance>.<name>``.
All words are little-endian int64 and 8-byte aligned (an aligned 8-byte store is atomic on
x86-64). Lines are 64 bytes so the producer's cursor and each consumer's cursor never share a
cache line (no false sharing between the writer and the readers)::

    offset  line  contents (int64 words)
    0       0     MAGIC | VERSION | KIND | CAPACITY | RECORD_SIZE | DTYPE_HASH | POLICY | N_CONSUMERS
    64      1     PRODUCER_PID | HEARTBEAT_NS | START_NS | FULL_WAITS | DATA_OFFSET | NAME_HASH | WAITER_EPOCH | -
    128     2     WRITE_CURSOR (next sequence to publish; a release store after the record)
    192     3     SEQLOCK_SEQ (state blocks: odd while the writer is inside)
    256     4+k   consumer k: CURSOR | PID | ACTIVE | SLEEPING | WAKE_TOKEN | LOST | HEARTBEAT_NS | NAME_HASH
    ...
    DATA_OFFSET   records: CAPACITY x RECORD_SIZE bytes (ring), or the state payload

A ``sequence`` counts records ever published; slot = sequence & (CAPACITY - 1).
"""

from __future__ import annotations

import hashlib

import numpy as np

MAGIC = int.from_bytes(b"B25SHM\x00\x01", "little")
# 2: counters segments hold histograms of 32 sub-buckets per power of two (were 8)
LAYOUT_VERSION = 2
LINE = 64
WORD = 8

# kinds
KIND_RING = 1
KIND_STATE = 2
KIND_COUNTERS = 3
KIND_NAMES = {KIND_RING: "ring", KIND_STATE: "state", KIND_COUNTERS: "counters"}

# policies
POLICY_BROADCAST = 1
POLICY_GATING = 2
POLICY_NAMES = {POLICY_BROADCAST: "broadcast", POLICY_GATING: "gating", 0: "-"}

# line 0: identity (word indexes into the int64 view)
W_MAGIC = 0
W_VERSION = 1
W_KIND = 2
W_CAPACITY = 3
W_RECORD_SIZE = 4
W_DTYPE_HASH = 5
W_POLICY = 6
W_N_CONSUMERS = 7
# line 1: producer
W_PRODUCER_PID = 8
W_HEARTBEAT_NS = 9
W_START_NS = 10
W_FULL_WAITS = 11
W_DATA_OFFSET = 12
W_NAME_HASH = 13
W_WAITER_EPOCH = 14  # bumped when a consumer registers a wake token: producers re-read tokens
# line 2: write cursor
W_WRITE_CURSOR = 16
# line 3: seqlock sequence
W_SEQLOCK = 24

CONSUMER_BASE_LINE = 4
MAX_CONSUMERS = 16
# consumer line word offsets
C_CURSOR = 0
C_PID = 1
C_ACTIVE = 2
C_SLEEPING = 3
C_WAKE_TOKEN = 4
C_LOST = 5
C_HEARTBEAT_NS = 6
C_NAME_HASH = 7

HEADER_SIZE = (CONSUMER_BASE_LINE + MAX_CONSUMERS) * LINE


def consumer_word(k: int, field: int) -> int:
    """Word index of ``field`` in consumer line ``k``."""
    return (CONSUMER_BASE_LINE + k) * (LINE // WORD) + field


def align(n: int, to: int = LINE) -> int:
    return (n + to - 1) // to * to


def dtype_hash(dtype: np.dtype) -> int:
    """A stable 63-bit hash of a record dtype (field names, types, offsets, itemsize)."""
    d = np.dtype(dtype)
    text = repr((d.descr, d.itemsize, [(n, str(d.fields[n][0]), d.fields[n][1]) for n in d.names or ()]))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def name_hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def segment_size(kind: int, capacity: int, record_size: int) -> int:
    if kind == KIND_RING:
        return HEADER_SIZE + capacity * record_size
    return HEADER_SIZE + align(capacity * record_size)
