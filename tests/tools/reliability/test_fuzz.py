"""Property tests of every input b25 reads from outside (issue 16): each ``b25 fuzz`` target run
for a few hundred generated inputs with each engine (``b25 fuzz --inputs N`` runs them for as
many as asked), and proof that the properties are not vacuous: with a defect put back, each
engine finds it, and the random engine's reported seed reproduces it."""

from __future__ import annotations

import argparse
import re

import msgspec
import pytest

from procs.execution import journal as J
from procs.tools.reliability import fuzz
from procs.tools.reliability import fuzz_targets as F
from procs.tools.reliability.draw import RandomDraw
from procs.tools.reliability.fuzz import ENGINES, reproduce, run_target
from procs.tools.reliability.fuzz_targets import TARGETS
from procs.venue.binance import orders

INPUTS = {"ring": 300, "sim_rest": 400, "config_text": 200, "market_data": 200}
RANDOM_INPUTS = 2000  # the random engine is about 50 times cheaper an input


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("engine", ENGINES)
def test_target_when_fed_generated_inputs_then_no_crash_and_every_property_holds(name: str, engine: str) -> None:
    n = RANDOM_INPUTS if engine == "random" else INPUTS.get(name, 300)
    r = run_target(TARGETS[name], n, start_seed=16, engine=engine)
    assert r.crashes == 0, r.failure
    assert r.inputs == n


def _unchecked(_journal_type: type, rec: J.JournalRecord) -> bytearray:  # the frame format before the checksum
    payload = msgspec.msgpack.encode(rec)
    return bytearray(len(payload).to_bytes(4, "little") + payload)


@pytest.mark.parametrize("engine", ENGINES)
def test_journal_target_when_the_checksum_is_left_out_then_it_finds_the_misread(monkeypatch, engine: str) -> None:
    """The journal property is not vacuous: frames without their crc32 misread a damaged tail."""
    monkeypatch.setattr(F, "_frame", _unchecked)
    r = run_target(F.TARGETS["journal"], 3000, start_seed=16, engine=engine)
    assert r.crashes == 1 and "never written" in r.failure, r.failure
    assert J.CHECKED  # the writer's frames carry it


@pytest.mark.parametrize("engine", ENGINES)
def test_user_stream_target_when_numbers_are_not_checked_then_it_finds_the_bad_report(monkeypatch, engine: str) -> None:
    """The venue properties are not vacuous: an adapter that passes any text on as a number (as
    it did before) hands the engine a price it cannot read."""
    monkeypatch.setattr(orders, "_DECIMAL", re.compile(r".*", re.S))
    r = run_target(F.TARGETS["venue_user_stream"], 1000, start_seed=16, engine=engine)
    assert r.crashes == 1 and "passed as a number" in r.failure, r.failure


@pytest.mark.parametrize("engine", ENGINES)
def test_open_algo_orders_target_when_numbers_are_not_checked_then_it_finds_the_bad_report(monkeypatch, engine: str) -> None:
    """The algo decoders are held to the same contract: a trigger price that is not a number (as
    algo_report passed one on before) is found."""
    monkeypatch.setattr(orders, "_DECIMAL", re.compile(r".*", re.S))
    r = run_target(F.TARGETS["venue_open_algo_orders"], 5000, start_seed=16, engine=engine)
    assert r.crashes == 1 and "passed as a number" in r.failure, r.failure


def test_random_engine_when_it_crashes_then_the_reported_seed_reproduces_the_input_and_the_failure(monkeypatch, capsys) -> None:
    monkeypatch.setattr(orders, "_DECIMAL", re.compile(r".*", re.S))
    target = F.TARGETS["venue_user_stream"]
    r = run_target(target, 5000, start_seed=16, engine="random")
    seed = int(re.search(r"--reproduce (\d+)", r.failure).group(1))
    assert r.crashes == 1 and fuzz.input_seed(16, r.inputs - 1) == seed
    assert repr(target.generate(RandomDraw(seed)))[:200] in r.failure  # the same input, drawn again
    with pytest.raises(AssertionError, match="passed as a number"):
        reproduce(target, seed)
    args = argparse.Namespace(inputs=1, targets="venue_user_stream", seed=None, engine="random", reproduce=seed, json=False, jobs=1)
    assert fuzz.run(args) == 1
    assert "passed as a number" in capsys.readouterr().err
    monkeypatch.undo()
    assert fuzz.run(args) == 0  # the defect taken out, the same input passes
    assert f"input seed {seed} passes" in capsys.readouterr().out


def test_random_draw_when_seeded_the_same_then_the_same_input_and_it_reaches_the_edges() -> None:
    a, b = RandomDraw(5), RandomDraw(5)
    assert [a.integer(-(1 << 70), 1 << 70) for _ in range(50)] == [b.integer(-(1 << 70), 1 << 70) for _ in range(50)]
    d = RandomDraw(1)
    ints = {d.integer(-(1 << 70), 1 << 70) for _ in range(2000)}
    assert {0, 1, -1, -(1 << 70), 1 << 70} <= ints and any(abs(i) > 1 << 60 for i in ints)
    floats = [d.floating() for _ in range(2000)]
    assert any(f != f for f in floats) and float("inf") in floats and float("-inf") in floats
    texts = [d.text(20) for _ in range(500)]
    assert "" in texts and any(len(t) == 20 for t in texts) and any(not t.isascii() for t in texts)
    assert all(d.integer(3, 9) in range(3, 10) for _ in range(1000))
    assert all(len(d.binary(16, min_size=1)) in range(1, 17) for _ in range(1000))


@pytest.mark.proc
def test_fuzz_when_run_in_two_processes_or_on_other_targets_then_each_target_gets_the_same_inputs() -> None:
    """--jobs changes where the targets run, and --targets which run, not what each is fed: the
    same inputs write the same log lines (bad input is logged once per kind, so the count depends
    on the inputs). Each run is a fresh ``b25 fuzz`` process: the once-per-kind memory is the
    process's."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    reports = []
    for jobs, targets in (("1", "venue_user_stream,sim_rest,control_queue"), ("2", "control_queue,sim_rest"),
                          ("1", "sim_rest")):
        p = subprocess.run([sys.executable, "-m", "procs.cli", "fuzz", "--inputs", "300", "--seed", "9", "--json",
                            "--targets", targets, "--jobs", jobs], cwd=root, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        reports.append(json.loads(p.stdout))
    one, two, three = ({name: (t["inputs"], t["crashes"], t["log_lines"]) for name, t in r["targets"].items()}
                       for r in reports)
    assert list(one) == ["venue_user_stream", "sim_rest", "control_queue"] and list(two) == ["control_queue", "sim_rest"]
    assert two == {name: one[name] for name in two} and three == {"sim_rest": one["sim_rest"]}
    assert one["sim_rest"][2] > 0 and one["venue_user_stream"][2] > 0  # the simulator and the adapter logged bad input
    assert reports[1]["jobs"] == 2 and reports[1]["inputs"] == 600


@pytest.mark.parametrize(("inputs", "jobs"), [(1, 2), (9_999, 2), (20_000, 2), (20_001, 2), (1_000_000, 3), (50_000, 1)])
def test_shards_cover_every_input_of_a_run_once(inputs: int, jobs: int) -> None:
    parts = fuzz.shards(inputs, jobs)
    covered = [k for first, count in parts for k in range(first, first + count)]
    assert covered == list(range(inputs))
    assert len(parts) == max(1, min(jobs, inputs // fuzz.SHARD_MIN_INPUTS))


@pytest.mark.proc
def test_fuzz_when_a_long_run_is_sharded_across_processes_then_every_input_is_fed_once() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    p = subprocess.run([sys.executable, "-m", "procs.cli", "fuzz", "--inputs", "20001", "--seed", "3", "--json",
                        "--targets", "control,journal", "--jobs", "2"], cwd=root, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout)
    assert report["inputs"] == 40002 and report["crashes"] == 0
    for name in ("control", "journal"):
        assert report["targets"][name]["inputs"] == 20001 and report["targets"][name]["shards"] == 2


def test_market_data_target_when_run_then_books_are_published_and_undamaged_runs_are_compared() -> None:
    """The market_data properties are not vacuous: runs start from a snapshot and sync (a run that
    never publishes a book checks nothing), and undamaged runs are held to the recording's book."""
    from procs.tools.reliability.draw import RandomDraw as Random

    target = F.FeedTarget()
    try:
        assert len(target.checkpoints) >= 10 and target.checkpoints[0][0] > 0
        for k in range(300):
            target.check(F.feed_run(Random(k)))
        assert target.synced_runs >= 150, target.synced_runs
        assert target.exact_runs >= 30, target.exact_runs
    finally:
        target.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_market_data_target_when_the_snapshot_loses_its_best_bid_then_it_finds_the_wrong_book(monkeypatch, engine: str) -> None:
    """A book that is ordered but wrong (the snapshot's best bid dropped) passes the ordering
    property; the comparison with the recording's book finds it."""
    from procs.book.fastbook import FastBook

    load = FastBook.load_snapshot
    monkeypatch.setattr(FastBook, "load_snapshot", lambda self, bids, asks: load(self, bids[1:], asks))
    r = run_target(F.TARGETS["market_data"], 300, start_seed=16, engine=engine)
    assert r.crashes == 1 and "is not the recording's" in r.failure, r.failure
