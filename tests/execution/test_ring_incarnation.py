"""recovery.attach_ring: journaled intent sequences count for the ring they were read from.

An intent read, journaled and then read again after a crash (its batch was not committed) is
skipped; an intent of a re-created ring (the count starts again at 0) is not."""

from __future__ import annotations

from pathlib import Path

from procs.execution import recovery
from procs.execution.journal import REC_POSITION, Journal, JournalRecord, read_journal
from tests.support.execution_engine import make, run, submit

OLD, NEW = 1_000, 2_000  # created_ns of two incarnations of orders.strategy


def sent_cids(wire) -> list[str]:
    return [s[1]["newClientOrderId"] for s in wire.sent]


def test_attach_ring_when_same_ring_after_a_crash_then_journaled_intents_are_skipped(tmp_path: Path) -> None:
    def first() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert recovery.attach_ring(eng, 0, 0, OLD) == "unknown"  # a fresh journal
        for seq in range(5):
            submit(eng, seq, seq + 1)
        eng.journal.close()  # the crash: the batch 2..4 was journaled, its cursor not committed
    run(first)

    def second() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.processed_seq == [4, -1, -1] and eng.ring_created == [OLD, 0, 0]
        assert recovery.attach_ring(eng, 0, 2, OLD) == "same"
        for seq in range(2, 6):
            submit(eng, seq, seq + 1)
        assert c["duplicate_intents"] == 3 and sent_cids(wire) == ["b25-2-1"]  # only seq 5 is new
    run(second)


def test_attach_ring_when_ring_recreated_then_its_intents_count_from_zero_across_restarts(tmp_path: Path) -> None:
    # the old ring got to 2064; the new one starts at 0. Before, a crash in the new ring's life
    # brought the old count back: the guess reset it (journaled intents sent twice), and once
    # the new ring was past 2064 - 256 its intents were skipped as done (orders lost).
    def first() -> None:
        eng, prod, wire, c = make(tmp_path)
        recovery.attach_ring(eng, 0, 2000, OLD)
        for seq in range(2000, 2065):
            submit(eng, seq, seq)
        eng.journal.close()
    run(first)

    def second() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.processed_seq[0] == 2064
        assert recovery.attach_ring(eng, 0, 0, NEW) == "recreated"
        assert eng.processed_seq[0] == -1
        for seq in range(17):
            submit(eng, seq, 5000 + seq)
        assert c.get("duplicate_intents", 0) == 0 and len(wire.sent) == 17
        eng.journal.close()  # a crash with 10..16 journaled but not committed
    run(second)

    def third() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.processed_seq == [16, -1, -1] and eng.ring_created == [NEW, 0, 0]  # not 2064
        assert recovery.attach_ring(eng, 0, 10, NEW) == "same"
        for seq in range(10, 18):
            submit(eng, seq, 5000 + seq)
        assert c["duplicate_intents"] == 7 and len(wire.sent) == 1  # 10..16 not sent twice
        eng.journal.close()
    run(third)

    def fourth() -> None:  # the new ring has now passed where the old one stopped
        eng, prod, wire, c = make(tmp_path)
        assert recovery.attach_ring(eng, 0, 2060, NEW) == "same"
        eng.processed_seq[0] = 2059  # as if the new ring's intents up to 2059 were journaled
        for seq in range(2060, 2066):
            submit(eng, seq, 9000 + seq)
        assert c.get("duplicate_intents", 0) == 0 and len(wire.sent) == 6  # none skipped as the old ring's
    run(fourth)


def legacy_journal(path: Path) -> None:
    j = Journal(path, "never")
    for seq in range(300, 310):  # journaled by a version that did not name the ring
        j.append(JournalRecord(2, cid=f"b25-1-{seq}", ring=0, ring_seq=seq, epoch=1))
    j.close()


def test_attach_ring_when_journal_predates_ring_names_then_the_old_guess_applies(tmp_path: Path) -> None:
    legacy_journal(tmp_path / "j")

    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.processed_seq[0] == 309 and eng.ring_created == [0, 0, 0]
        assert recovery.attach_ring(eng, 0, 305, NEW) == "unknown"  # within a batch: taken as the same ring
        assert recovery.attach_ring(eng, 1, 0, NEW) == "unknown"
        assert eng.processed_seq == [309, -1, -1] and eng.ring_created == [NEW, NEW, 0]
    run(body)
    recs = [r for r in read_journal(tmp_path / "j")[0] if r.kind == REC_POSITION]
    assert [(r.ring, r.ring_seq, r.ts_event) for r in recs] == [(0, 309, NEW), (1, -1, NEW)]


def test_attach_ring_when_journal_predates_ring_names_and_far_ahead_then_recreated(tmp_path: Path) -> None:
    legacy_journal(tmp_path / "j")

    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert recovery.attach_ring(eng, 0, 0, NEW) == "recreated"  # 309 >= 0 + 256: another ring's count
        assert eng.processed_seq[0] == -1
    run(body)


def test_compact_keeps_which_ring_the_count_belongs_to(tmp_path: Path) -> None:
    def first() -> None:
        eng, prod, wire, c = make(tmp_path)
        recovery.attach_ring(eng, 0, 0, NEW)
        for seq in range(3):
            submit(eng, seq, seq + 1)
        eng.journal.close()
        recovery.compact(eng, tmp_path / "j")
    run(first)

    def second() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.processed_seq == [2, -1, -1] and eng.ring_created == [NEW, 0, 0]
        assert recovery.attach_ring(eng, 0, 1, NEW) == "same"
    run(second)
