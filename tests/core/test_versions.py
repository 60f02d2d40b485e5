"""Config versions: stored once per content, 0600, append-only, with who, why and from where."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from procs.core.versions import VersionStore, on_start, sha256, store_for


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_record_when_new_content_then_a_numbered_0600_copy_and_an_index_line(tmp_path: Path) -> None:
    store = VersionStore(tmp_path / "v")
    ev = store.record(b"[risk]\nmax_daily_loss = \"1000\"\n", "start", "file", reason="start", process="risk")
    assert (ev.seq, ev.sha256, ev.source, ev.process) == (1, sha256(b"[risk]\nmax_daily_loss = \"1000\"\n"), "file", "risk")
    assert store.data(1) == b"[risk]\nmax_daily_loss = \"1000\"\n"
    assert _mode(store.dir / "000001.toml") == 0o600 and _mode(store.dir / "index.jsonl") == 0o600
    assert _mode(store.dir) == 0o700
    line = json.loads((store.dir / "index.jsonl").read_text())
    assert line["time"].endswith("Z") and line["event"] == "start" and line["operator"] == ""


def test_record_when_same_content_again_then_same_version_and_one_more_event(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    a = store.record(b"x = 1\n", "start", "file", process="risk")
    b = store.record(b"x = 2\n", "reload", "ops_api", "alice", "wider limits", "risk", ["risk"])
    c = store.record(b"x = 1\n", "rollback", "cli", "bob", "rollback to 1: too wide")
    assert (a.seq, b.seq, c.seq) == (1, 2, 1)
    versions = store.versions()
    assert [v.seq for v in versions] == [1, 2]
    assert [e.event for e in versions[0].applied] == ["start", "rollback"] and versions[0].processes == ["risk"]
    assert (versions[1].first.operator, versions[1].first.reason, versions[1].first.sections) == (
        "alice", "wider limits", ["risk"])
    assert sorted(p.name for p in store.dir.glob("*.toml")) == ["000001.toml", "000002.toml"]


def test_record_when_an_unknown_source_then_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="source must be one of file, ops_api, tui, cli: source='mail'"):
        VersionStore(tmp_path).record(b"", "reload", "mail")


def test_events_when_the_last_line_is_torn_then_it_is_skipped(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.record(b"a = 1\n", "start", "file")
    with open(store.dir / "index.jsonl", "a") as f:
        f.write('{"seq": 2, "sha')  # a crash mid-write
    assert [e.seq for e in store.events()] == [1]
    assert store.record(b"b = 1\n", "reload", "file").seq == 2  # numbering goes on from the files


def test_version_when_unknown_then_keyerror_names_the_known_range(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.record(b"a = 1\n", "start", "file")
    with pytest.raises(KeyError, match=r"no config version 7 .* known=1..1"):
        store.data(7)


def test_by_hash_when_a_status_block_prefix_then_that_version(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.record(b"a = 1\n", "start", "file")
    v2 = store.record(b"a = 2\n", "reload", "file")
    assert store.by_hash(v2.sha256[:16]).seq == 2
    assert store.by_hash("defaults") is None and store.by_hash("") is None


def _append(directory: str, n: int) -> None:
    store = VersionStore(directory)
    for i in range(n):
        store.record(f"k = {i % 5}\n".encode(), "start", "file", process=f"p{multiprocessing.current_process().pid}")


@pytest.mark.proc
def test_record_when_processes_append_at_once_then_no_line_is_lost_and_numbers_stay_unique(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(str(tmp_path), 20)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    store = VersionStore(tmp_path)
    assert len(store.events()) == 80
    assert [v.seq for v in store.versions()] == [1, 2, 3, 4, 5]
    by_seq = {v.seq: store.data(v.seq) for v in store.versions()}
    assert len(set(by_seq.values())) == 5  # one file per content


def test_on_start_when_a_file_then_stored_under_versions_dir_and_instance(tmp_path: Path) -> None:
    cfg = tmp_path / "b25.toml"
    cfg.write_text(f'[deploy]\nversions_dir = "{tmp_path / "cfgv"}"\n')
    h = on_start(cfg, "inst1", "risk")
    assert h == sha256(cfg.read_bytes())[:16]
    store = store_for(cfg, "inst1")
    assert store.dir == tmp_path / "cfgv" / "inst1"
    assert store.versions()[0].processes == ["risk"] and store.data(1) == cfg.read_bytes()
    assert on_start(None, "inst1", "risk") == "defaults"
