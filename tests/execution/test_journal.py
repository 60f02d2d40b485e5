"""Journal: msgpack frames, 0600, torn tail dropped, fsync policies."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from procs.core import messages as M
from procs.execution.journal import Journal, JournalRecord, read_journal


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_journal_when_appended_then_read_back_in_order_with_mode_0600(tmp_path: Path, policy: str) -> None:
    p = tmp_path / "j" / "x.journal"
    j = Journal(p, policy, 0)
    for i in range(5):
        j.append(JournalRecord(M.ORDER_SENT, cid=f"b25-1-{i}", qty=i, ring=0, ring_seq=i))
    j.maybe_sync()
    j.close()
    recs, good = read_journal(p)
    assert [r.cid for r in recs] == [f"b25-1-{i}" for i in range(5)] and good == p.stat().st_size
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    if policy == "always":
        assert j.syncs >= 5


def test_journal_when_tail_torn_then_reader_drops_it_and_writer_truncates(tmp_path: Path) -> None:
    p = tmp_path / "x.journal"
    j = Journal(p)
    j.append(JournalRecord(M.ORDER_SENT, cid="one"))
    j.append(JournalRecord(M.ORDER_ACCEPTED, cid="one", order_id=5))
    j.close()
    size = p.stat().st_size
    with open(p, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x95\x01")  # a frame cut short by a crash
    recs, good = read_journal(p)
    assert len(recs) == 2 and good == size
    j = Journal(p)
    assert j.end == size and p.read_bytes()[size:size + 6] == bytes(6)  # the torn bytes are gone
    assert read_journal(p) == (recs, size)  # the open file's zero tail is no record either
    j.append(JournalRecord(M.ORDER_CANCELED, cid="one"))
    j.close()
    assert [r.kind for r in read_journal(p)[0]] == [M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_CANCELED]


def test_journal_when_missing_then_empty(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "none") == ([], 0)


def test_journal_when_existing_file_is_loose_then_tightened_to_0600(tmp_path: Path) -> None:
    p = tmp_path / "x.journal"
    p.write_bytes(b"")
    os.chmod(p, 0o644)
    Journal(p).close()
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_journal_when_batch_syncer_running_then_thread_syncs_and_loop_never_does(tmp_path: Path) -> None:
    import threading
    import time

    p = tmp_path / "x.journal"
    j = Journal(p, "batch", 5)
    j.start_syncer()
    synced_by: list[str] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        synced_by.append(threading.current_thread().name)
        real(fd)

    os.fdatasync = spy  # type: ignore[assignment]
    try:
        j.append(JournalRecord(M.ORDER_SENT, cid="b25-1-1", qty=1, ring=0, ring_seq=1))
        j.maybe_sync(time.monotonic_ns() + 10**9)  # the loop's timer: a no-op while the thread runs
        deadline = time.monotonic() + 10
        while j.syncs == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert j.syncs >= 1
        assert synced_by and set(synced_by) == {"journal-sync"}
        j.append(JournalRecord(M.ORDER_SENT, cid="b25-1-2", qty=1, ring=0, ring_seq=2))
        j.close()  # stops the thread and syncs what is left, on the caller's thread
    finally:
        os.fdatasync = real  # type: ignore[assignment]
    assert synced_by[-1] == threading.current_thread().name
    assert [r.cid for r in read_journal(p)[0]] == ["b25-1-1", "b25-1-2"]


@pytest.mark.proc
def test_journal_when_process_killed_without_close_then_every_appended_record_survives(tmp_path: Path) -> None:
    # the frames live in the page cache through the shared mapping: a SIGKILL loses none of them
    import subprocess
    import sys

    p = tmp_path / "x.journal"
    child = (
        "import os, signal, sys\n"
        "from procs.core import messages as M\n"
        "from procs.execution.journal import Journal, JournalRecord\n"
        f"j = Journal({str(p)!r}, 'never')\n"
        "for i in range(300):\n"
        "    j.append(JournalRecord(M.ORDER_SENT, cid=f'b25-1-{i}', qty=i))\n"
        "j.warm(JournalRecord(M.ORDER_SENT, cid='b25-0-0'))  # scratch bytes past the end, as a crash mid-copy\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    r = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).parents[2], timeout=60)
    assert r.returncode == -9
    assert p.stat().st_size == Journal.CHUNK  # still grown ahead: the zero tail a crash leaves
    recs, good = read_journal(p)
    assert [r.cid for r in recs] == [f"b25-1-{i}" for i in range(300)] and 0 < good < Journal.CHUNK
    j = Journal(p)  # the restart: the tail (and the scratch bytes) go, appends continue after
    j.append(JournalRecord(M.ORDER_CANCELED, cid="b25-1-0"))
    j.close()
    recs, good = read_journal(p)
    assert len(recs) == 301 and recs[-1].kind == M.ORDER_CANCELED and good == p.stat().st_size


def test_journal_when_records_outgrow_the_mapping_then_it_grows_and_keeps_them_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Journal, "CHUNK", 256)
    p = tmp_path / "x.journal"
    j = Journal(p, "batch", 0)
    for i in range(100):
        j.append(JournalRecord(M.ORDER_SENT, cid=f"b25-1-{i}", qty=i, ring=0, ring_seq=i))
        if i == 40:
            j.maybe_sync()
    assert p.stat().st_size % 256 == 0 and p.stat().st_size > j.end > 100 * 40
    j.close()
    recs, good = read_journal(p)
    assert [r.qty for r in recs] == list(range(100)) and good == p.stat().st_size == j.end


def test_journal_when_warmed_then_no_record_appears_and_the_next_append_overwrites_it(tmp_path: Path) -> None:
    p = tmp_path / "x.journal"
    j = Journal(p, "never")
    j.append(JournalRecord(M.ORDER_SENT, cid="b25-1-1"))
    end = j.end
    j.warm(JournalRecord(M.ORDER_SENT, cid="b25-0-0", qty=999))
    assert j.end == end and j.records == 1
    assert [r.cid for r in read_journal(p)[0]] == ["b25-1-1"]
    j.append(JournalRecord(M.ORDER_ACCEPTED, cid="b25-1-1", order_id=5))
    j.close()
    assert [(r.kind, r.cid) for r in read_journal(p)[0]] == [(M.ORDER_SENT, "b25-1-1"), (M.ORDER_ACCEPTED, "b25-1-1")]


def test_journal_when_the_disk_is_full_then_append_raises_and_what_was_written_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a mapped page with no block behind it would be a SIGBUS at some later store: the blocks are
    # taken when the file grows, so a full disk is an OSError there, and nothing is half written
    import errno

    p = tmp_path / "x.journal"
    j = Journal(p, "never", chunk=256)
    for i in range(3):
        j.append(JournalRecord(M.ORDER_SENT, cid=f"b25-1-{i}"))
    assert not j.low
    size = p.stat().st_size
    real = os.posix_fallocate

    def full(fd: int, off: int, n: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    low_at = None
    with pytest.raises(OSError, match="No space"):
        for i in range(3, 100):
            j.append(JournalRecord(M.ORDER_SENT, cid=f"b25-1-{i}", qty=i))
            if j.low and low_at is None:
                low_at = j.records  # under half a chunk left and no room for more: low, before it is used up
    written = j.records
    assert low_at is not None and low_at < written  # the reserve took records after low was set
    assert 3 <= written < 100 and p.stat().st_size == size  # the file stayed at its old size
    assert not j.retry_room()  # still full
    monkeypatch.setattr(os, "posix_fallocate", real)  # space again: appends go on
    j.append(JournalRecord(M.ORDER_CANCELED, cid="b25-1-0"))
    assert j.retry_room(now_ns=1 << 62) and not j.low
    j.close()
    recs = read_journal(p)[0]
    assert [r.cid for r in recs[:-1]] == [f"b25-1-{i}" for i in range(written)] and recs[-1].kind == M.ORDER_CANCELED
