"""Intake: batches read record by record, committed once; a failing handler stops the intake."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from procs.core import messages as M
from procs.execution.intake import Intake
from shm.ring import struct_for


class FakeConsumer:
    """A gating consumer's surface: poll/commit, and the ring layout the intake reads slots with."""

    def __init__(self, n: int) -> None:
        self.position = 10
        self.slots = np.zeros(16, dtype=M.OrderIntent)  # a 16-slot ring; sequence s sits in slot s & 15
        for j in range(n):
            self.slots["intent_id"][(self.position + j) & 15] = j
        self.n = n
        self.struct = struct_for(M.OrderIntent)
        self.seg = SimpleNamespace(mm=memoryview(self.slots.view(np.uint8)))
        self.data_offset, self.mask, self.record_size = 0, 15, M.OrderIntent.itemsize
        self.committed = 0

    def poll(self, limit: int = 0) -> np.ndarray:
        s = self.position & 15
        return self.slots[s:s + self.n] if not self.committed else self.slots[:0]

    def commit(self) -> None:
        self.committed += 1

    def has_data(self) -> bool:
        return not self.committed


def test_drain_when_batch_read_then_each_record_with_its_sequence_and_one_commit() -> None:
    seen: list[tuple[int, int, int]] = []
    rows: list[tuple] = []

    def handle(ring: int, seq: int, row: tuple, t: int) -> None:
        seen.append((ring, seq, row[0]))
        rows.append(row)

    it = Intake(None, "x", handle, lambda: True, "poll")  # type: ignore[arg-type]
    c = FakeConsumer(3)
    c.slots["price"] = np.arange(16) * 7 - 20
    c.slots["ts_intent"] = 1 << 62
    it.consumers = [c, None]
    assert it.drain_once() == 3
    assert seen == [(0, 10, 0), (0, 11, 1), (0, 12, 2)] and c.committed == 1
    # flat tuples in dtype order, as numpy gives them less the trailing padding (no value to unpack)
    assert M.OrderIntent.names[-1] == "_pad" and rows == [r[:-1] for r in c.slots[10:13].tolist()]


def test_drain_when_handler_raises_then_intake_stops_and_reports_without_commit() -> None:
    errors: list[BaseException] = []

    def boom(*_a: object) -> None:
        raise RuntimeError("broken invariant")

    it = Intake(None, "x", boom, lambda: True, "poll", on_error=errors.append)  # type: ignore[arg-type]
    c = FakeConsumer(2)
    it.consumers = [c, None]
    assert it._guarded_drain() == 0
    assert it.stopping and isinstance(errors[0], RuntimeError) and c.committed == 0  # re-read after restart


class Loop:
    def __init__(self) -> None:
        self.soon: list[object] = []

    def call_soon(self, fn: object) -> None:
        self.soon.append(fn)


def test_wake_when_no_intent_yet_then_prewake_callback_runs_before_polling() -> None:
    warmed: list[int] = []
    seen: list[int] = []
    it = Intake(None, "x", lambda ring, seq, row, t: seen.append(seq), lambda: True, "poll",  # type: ignore[arg-type]
                on_prewake=lambda: warmed.append(len(seen)))
    it.mode = "fd"
    it.waiter = SimpleNamespace(disarm=lambda: None, arm=lambda: False)  # type: ignore[assignment]
    it.loop = Loop()  # type: ignore[assignment]
    empty = FakeConsumer(0)
    empty.committed = 1  # nothing to read
    it.consumers = [empty, None]
    it._on_wake()
    assert warmed == [0] and seen == [] and it.loop.soon  # type: ignore[attr-defined]  # warmed, then polls on
    c = FakeConsumer(2)
    it.consumers = [c, None]
    it._on_wake()  # the intents are there already: no warm-up in their way
    assert warmed == [0] and seen == [10, 11] and c.committed == 1
