"""An event is journaled, then published on ``exec``: a SIGKILL between the two leaves it in the
journal only. At the next start execution publishes again, in order, the events the journal
holds that the ring does not (a CI run of the mid-burst kill test: an ORDER_EXPIRED the strategy
never saw). The ring outlives execution in shm; reports on it carry event_seq 0."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from procs.core import messages as M
from procs.core.registry import EXEC, build_registry
from procs.execution import recovery
from procs.execution.counters import Counter, Hist
from procs.execution.engine import EventSink
from procs.execution.journal import REC_EPOCH, JournalRecord
from shm import layout as L
from shm.counters import Counters
from shm.ring import Producer


def _record(seq: int, wall_ns: int, kind: int = M.ORDER_EXPIRED) -> JournalRecord:
    return JournalRecord(kind, f"b25-1-{seq}", strategy_id=3, symbol_id=0, side=M.BUY, order_type=M.LIMIT,
                         price=5_000_000 + seq, qty=1, client_tag=100 + seq, order_id=9000 + seq, cum_qty=0,
                         reason=0, ts_event=seq * 1_000_000, epoch=1, wall_ns=wall_ns, event_seq=seq)


def _report(sink: EventSink) -> None:
    """What ``Engine.report_orders`` publishes when no order is open: ORDERS_REPORTED, event_seq 0."""
    sink.publish((0, M.ORDERS_REPORTED, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, b"", 0))


@pytest.fixture
def exec_ring(instance: str):
    reg = build_registry()
    producer = reg.producer(instance, EXEC)
    reader = reg.consumer(instance, EXEC, "strategy", timeout=5)
    counters = Counters.create(instance, "execution", Counter, Hist)
    try:
        yield SimpleNamespace(sink=EventSink(producer, lambda: None), c=counters), producer, reader
    finally:
        counters.close(unlink=True)
        reader.close()
        producer.close(unlink=True)


def _published(reader) -> list[tuple[int, int, int, int, bytes]]:
    got = reader.poll(64)
    out = [(int(e["event_seq"]), int(e["kind"]), int(e["client_tag"]), int(e["order_id"]),
            bytes(e["client_order_id"]).rstrip(b"\0")) for e in got]
    reader.commit()
    return out


def test_republish_when_the_journal_holds_events_past_the_ring_then_they_are_published_in_order(exec_ring) -> None:
    engine, producer, reader = exec_ring
    born = producer.created_ns
    records = [JournalRecord(REC_EPOCH, epoch=1, wall_ns=born), *(_record(s, born + s) for s in range(1, 6)),
               JournalRecord(M.ORDER_SENT, "b25-1-6", epoch=1, wall_ns=born + 6)]  # journal-only (event_seq 0)
    for r in records[1:4]:  # events 1..3 reached the ring before the kill; 4 and 5 did not
        engine.sink.publish((r.event_seq, r.kind, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                             r.cid.encode(), 0))
    assert [e[0] for e in _published(reader)] == [1, 2, 3]
    through = recovery.published_through(producer)
    assert through == (3, born)
    assert recovery.republish_unpublished(engine, records, through) == 2
    assert _published(reader) == [(4, M.ORDER_EXPIRED, 104, 9004, b"b25-1-4"), (5, M.ORDER_EXPIRED, 105, 9005, b"b25-1-5")]
    assert engine.c.get(Counter.EVENTS_REPUBLISHED) == 2
    assert recovery.republish_unpublished(engine, records, recovery.published_through(producer)) == 0  # all there


def test_republish_when_reports_follow_the_newest_event_then_only_the_unpublished_come_again(exec_ring) -> None:
    """A report (a strategy's restart, or execution's own) carries event_seq 0: the newest event
    is found behind it, not taken as 0 (which would publish the whole journal again)."""
    engine, producer, reader = exec_ring
    born = producer.created_ns
    records = [_record(s, born + s) for s in range(1, 5)]
    recovery.republish_unpublished(engine, records[:2], (0, born))  # events 1, 2 on the ring
    _report(engine.sink)
    _report(engine.sink)
    assert len(_published(reader)) == 4
    assert recovery.published_through(producer) == (2, born)
    assert recovery.republish_unpublished(engine, records, recovery.published_through(producer)) == 2
    assert [e[0] for e in _published(reader)] == [3, 4]


def test_republish_when_the_ring_holds_no_event_then_only_those_journaled_since_its_creation(exec_ring) -> None:
    """A ring with no event on it: the journal's events from before the ring was created were
    another ring's (``make stop`` removes the segments), the ones after it were never published."""
    engine, producer, reader = exec_ring
    born = producer.created_ns
    assert recovery.published_through(producer) == (0, born)  # nothing published yet
    records = [_record(1, born - 2), _record(2, born - 1), _record(3, born + 1)]
    assert recovery.republish_unpublished(engine, records[:2], recovery.published_through(producer)) == 0
    _report(engine.sink)  # execution's own report after its start, then the SIGKILL
    assert recovery.published_through(producer) == (0, born)
    assert recovery.republish_unpublished(engine, records, recovery.published_through(producer)) == 1
    assert [e[0] for e in _published(reader)] == [0, 3]


def test_republish_when_reports_lapped_every_event_off_the_ring_then_nothing_is_guessed(instance: str) -> None:
    producer = Producer.create(instance, "exec_small", M.OrderEvent, 8, L.POLICY_BROADCAST)
    counters = Counters.create(instance, "execution", Counter, Hist)
    try:
        sink = EventSink(producer, lambda: None)
        engine = SimpleNamespace(sink=sink, c=counters)
        recovery.republish_unpublished(engine, [_record(1, producer.created_ns + 1)], (0, producer.created_ns))
        assert recovery.published_through(producer) == (1, producer.created_ns)
        for _ in range(7):
            _report(sink)
        assert recovery.published_through(producer) == (1, producer.created_ns)  # still in the window
        _report(sink)
        assert recovery.published_through(producer) == (-1, producer.created_ns)
        records = [_record(s, producer.created_ns + s) for s in (1, 2)]
        assert recovery.republish_unpublished(engine, records, (-1, producer.created_ns)) == 0
        assert counters.get(Counter.EVENTS_REPUBLISHED) == 1
    finally:
        counters.close(unlink=True)
        producer.close(unlink=True)
