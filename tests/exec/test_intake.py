"""Intake: batches read record by record, committed once; a failing handler stops the intake."""

from __future__ import annotations

import numpy as np

from procs.core import messages as M
from procs.exec.intake import Intake


class FakeConsumer:
    def __init__(self, n: int) -> None:
        self.recs = np.zeros(n, dtype=M.OrderIntent)
        self.recs["intent_id"] = np.arange(n)
        self.position = 10
        self.committed = 0

    def poll(self, limit: int = 0) -> np.ndarray:
        return self.recs if not self.committed else self.recs[:0]

    def commit(self) -> None:
        self.committed += 1

    def has_data(self) -> bool:
        return not self.committed


def test_drain_when_batch_read_then_each_record_with_its_sequence_and_one_commit() -> None:
    seen: list[tuple[int, int, int]] = []
    it = Intake(None, "x", lambda ring, seq, row, t: seen.append((ring, seq, row[0])), lambda: True, "poll")  # type: ignore[arg-type]
    c = FakeConsumer(3)
    it.consumers = [c, None]
    assert it.drain_once() == 3
    assert seen == [(0, 10, 0), (0, 11, 1), (0, 12, 2)] and c.committed == 1


def test_drain_when_handler_raises_then_intake_stops_and_reports_without_commit() -> None:
    errors: list[BaseException] = []

    def boom(*_a: object) -> None:
        raise RuntimeError("broken invariant")

    it = Intake(None, "x", boom, lambda: True, "poll", on_error=errors.append)  # type: ignore[arg-type]
    c = FakeConsumer(2)
    it.consumers = [c, None]
    assert it._guarded_drain() == 0
    assert it.stopping and isinstance(errors[0], RuntimeError) and c.committed == 0  # re-read after restart
