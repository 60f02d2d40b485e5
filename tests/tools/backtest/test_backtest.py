"""``b25 backtest`` on real recordings, in this process: every shipped strategy runs unchanged,
a run is deterministic, several days play as one stream (a periodic timer does not step
through the months between them), the decoded recording is cached and a damaged cache rebuilt,
and the command's bad input exits 2 naming what was wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from procs.core import messages as M
from procs.exchange_sim.eventclock import SILENCE_NS, timer_stops_clock
from procs.exchange_sim.market import recorded as R
from procs.execution.journal import parse_journal
from procs.tools.backtest import cli
from procs.tools.backtest.run import BacktestOptions, backtest
from procs.tools.replay.report import build_summary, deterministic_part

DAY = "hftbacktest-binance/usdm/btcusdt_20240718.gz"  # 11414 frames
OLD_DAY = "hftbacktest-binance/usdm/btcusdt_20230404.dat.gz"  # 13384 frames, 15 months earlier
STRATEGIES = sorted(p.stem for p in (Path(__file__).resolve().parents[3] / "strategies").glob("*.py")
                    if p.stem != "__init__")
CLASSES = {"echo": "Echo", "imbalance": "ImbalanceTaker", "market_maker": "MarketMaker", "noop": "DoNothing"}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("B25_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _summary(real_data: Path, strategy: str, files: tuple[str, ...] = (DAY,), limit: int = 0, **kw) -> dict:
    res = backtest(BacktestOptions(data=[str(real_data / f) for f in files], strategy=strategy, limit_events=limit,
                                   **kw))
    return build_summary(res)[0] | {"_counters": res.counters}


def test_backtest_strategies_when_listed_then_each_is_known_here() -> None:
    assert set(STRATEGIES) == set(CLASSES), "a new strategy in strategies/: name its class here"


@pytest.mark.parametrize("name", STRATEGIES)
def test_backtest_when_each_shipped_strategy_then_it_runs_unchanged(real_data: Path, name: str) -> None:
    s = _summary(real_data, f"strategies.{name}:{CLASSES[name]}", limit=4000)
    assert s["events"] == 4000 and s["mode"] == "backtest"
    assert s["md_messages"] > 1000
    assert s["journal_records"] >= 2  # the epoch and the intent ring's position, at least
    if name == "noop":
        assert s["orders"] == 0
    elif name == "echo":
        assert s["orders"] > 100  # an intent per book update


def test_backtest_when_repeated_then_the_same_journal(real_data: Path) -> None:
    first = _summary(real_data, "strategies.market_maker:MarketMaker", limit=6000)
    second = _summary(real_data, "strategies.market_maker:MarketMaker", limit=6000)
    assert first["orders"] > 10
    assert deterministic_part(first) == deterministic_part(second)


def test_backtest_when_started_then_no_orders_report_and_intents_number_from_0_as_on_a_fresh_ring(
        real_data: Path) -> None:
    """A backtest, like a lockstep replay, starts on a fresh instance: the strategy asks execution
    for no report of open orders (decision 040), so its first order is intent 0 at ring_seq 0."""
    res = backtest(BacktestOptions(data=[str(real_data / DAY)], strategy="strategies.market_maker:MarketMaker",
                                   limit_events=2000))
    assert res.counters["execution"].get("order_reports", 0) == 0
    sent = [r for r in parse_journal(res.journal)[0] if r.kind == M.ORDER_SENT]
    assert sent, "the market maker should quote within 2000 frames"
    assert (sent[0].intent_id, sent[0].ring_seq) == (0, 0)
    assert [r.intent_id for r in sent] == [r.ring_seq for r in sent]


def test_backtest_when_two_days_months_apart_then_one_stream_and_timers_skip_the_gap(real_data: Path) -> None:
    s = _summary(real_data, "strategies.market_maker:MarketMaker", files=(OLD_DAY, DAY))
    assert s["events"] == 13384 + 11414
    assert s["orders"] > 0
    fired = s["_counters"]["strategy"].get("timers_fired", 0)
    # the 1 s stale-quote timer over ~280 s of data plus a minute after each day: stepped through
    # the 15 months between the files it would fire some 40 million times
    assert 0 < fired < 2_000


def test_timer_stops_clock_when_deadline_in_a_silence_then_it_does_not() -> None:
    last_x = 1_000
    assert timer_stops_clock(0, last_x + 5, last_x + 10, 10**18, last_x)
    assert not timer_stops_clock(0, last_x + SILENCE_NS + 1, last_x + 2 * SILENCE_NS, 10**18, last_x)
    assert not timer_stops_clock(0, 50, 40, 10**18, last_x)  # the next event comes first
    assert not timer_stops_clock(0, 50, 100, 40, last_x)  # past the recording's end


def test_recording_cache_when_loaded_twice_then_read_back_and_a_damaged_one_rebuilt(real_data: Path,
                                                                                     _cache: Path) -> None:
    from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO

    files = [str(real_data / DAY)]
    first = R.load(files, DEFAULT_EXCHANGE_INFO, limit=3000)
    second = R.load(files, DEFAULT_EXCHANGE_INFO, limit=3000)
    assert not first.cached and second.cached
    assert first.frames == second.frames == 3000
    for k, v in first.arrays.items():
        assert (second.arrays[k] == v).all(), k
    (cached,) = list((_cache / "backtest").glob("*.npz"))
    cached.write_bytes(b"not an npz")
    third = R.load(files, DEFAULT_EXCHANGE_INFO, limit=3000)
    assert not third.cached and (third.arrays["px"] == first.arrays["px"]).all()


@pytest.mark.proc  # the sweep's worker processes (the pool stops them before it returns)
def test_backtest_cli_when_sweep_then_one_row_per_point(real_data: Path, tmp_path: Path, capsys) -> None:
    rc = cli.main(["--data", str(real_data / DAY), "--strategy", "strategies.market_maker:MarketMaker",
                   "--limit-events", "3000", "--sweep", "spread_ticks=5,20", "--workers", "2", "--json",
                   "--report", str(tmp_path / "rep")])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["point"] for r in rows] == [{"spread_ticks": 5}, {"spread_ticks": 20}]
    assert [r["params"]["spread_ticks"] for r in rows] == [5, 20]
    assert all(r["events"] == 3000 for r in rows)
    assert (tmp_path / "rep" / "point-001" / "report.json").exists()


def test_backtest_cli_when_run_then_summary_and_report_of_its_journal(real_data: Path, tmp_path: Path,
                                                                      capsys) -> None:
    rc = cli.main(["--data", str(real_data / DAY), "--strategy", "strategies.imbalance:ImbalanceTaker",
                   "--limit-events", "5000", "--json", "--report", str(tmp_path / "rep")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "backtest" and out["report"]["source"] == "backtest"
    assert out["report"]["total"]["fills"] == out["fills"]
    assert (tmp_path / "rep" / "execution.journal").read_bytes()


@pytest.mark.parametrize(("args", "named"), [
    (["--sweep", "spread_ticks"], "--sweep"),
    (["--params", "[1]"], "--params"),
    (["--latency", "warp 9"], "latency"),
    (["--limit-events", "-1"], "--limit-events"),
])
def test_backtest_cli_when_bad_input_then_exit_2_naming_it(real_data: Path, capsys, args: list[str],
                                                           named: str) -> None:
    rc = cli.main(["--data", str(real_data / DAY), "--strategy", "strategies.noop:DoNothing", "--no-report", *args])
    assert rc == 2
    assert named in capsys.readouterr().err


def test_backtest_cli_when_recording_missing_then_exit_2(tmp_path: Path, capsys) -> None:
    rc = cli.main(["--data", str(tmp_path / "nope.gz"), "--strategy", "strategies.noop:DoNothing", "--no-report"])
    assert rc == 2
    assert "nope.gz" in capsys.readouterr().err
