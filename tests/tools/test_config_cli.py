"""``b25 config``: validate, history, show, diff and rollback over a real version store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from procs.cli import main
from procs.core.versions import VersionStore
from tests.support import ROOT

SHIPPED = (ROOT / "b25.toml").read_text()


def _deployment(tmp_path: Path) -> tuple[Path, VersionStore]:
    cfg = tmp_path / "b25.toml"
    cfg.write_text(SHIPPED.replace("[deploy]\n", f'[deploy]\nversions_dir = "{tmp_path / "versions"}"\n', 1))
    store = VersionStore(tmp_path / "versions" / "inst")
    store.record(cfg.read_bytes(), "start", "file", reason="start", process="risk")
    return cfg, store


def _run(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    code = main(["config", "--config", str(cfg), "--instance", "inst", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_when_the_shipped_files_then_valid(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("b25.toml", "b25.testnet.toml"):
        assert main(["config", "validate", str(ROOT / name)]) == 0
        assert capsys.readouterr().out == f"{ROOT / name}: valid\n"


def test_validate_when_several_mistakes_then_each_on_its_own_line_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[risk]\nmax_drawdown = "lots"\n[deploy.rings]\nexec = 100\n[strategy.runtime]\nidle = "spinn"\n')
    assert main(["config", "validate", str(bad)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert sorted(line.split(": ", 1)[0] for line in lines) == sorted([
        f"invalid config {bad} section [deploy] field rings.exec",
        f"invalid config {bad} section [risk] field max_drawdown",
        f"invalid config {bad} section [strategy] field runtime.idle"])


def test_history_diff_show_when_two_versions_then_each_says_who_why_and_what(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, store = _deployment(tmp_path)
    v2 = cfg.read_text().replace('max_daily_loss = "1000"', 'max_daily_loss = "500"').replace(
        "depth = 20", "depth = 10")
    store.record(v2.encode(), "reload", "ops_api", "alice", "CPI day", "risk", ["risk"])
    code, out, _ = _run(capsys, cfg, "history")
    assert code == 0
    head, one, two, last = out.splitlines()
    assert last == f"last: version 2, reload {store.events()[-1].time} via ops_api by alice (risk): CPI day"
    assert head.split() == ["seq", "time", "sha256", "source", "operator", "reason", "applied", "by"]
    assert one.split()[0] == "1" and one.split()[3:] == ["file", "-", "start", "risk"]
    assert two.split()[0] == "2" and two.split()[3:] == ["ops_api", "alice", "CPI", "day", "risk"]
    code, out, _ = _run(capsys, cfg, "history", "--json")
    assert [v["seq"] for v in json.loads(out)["versions"]] == [1, 2]
    code, out, _ = _run(capsys, cfg, "diff", "1", "2")
    lines = out.splitlines()
    assert lines[0].startswith("--- version 1") and lines[1].startswith("+++ version 2") and "alice: CPI day" in lines[1]
    assert '[risk] max_daily_loss: "1000" -> "500"    (reload risk)' in lines
    depth = next(line for line in lines if line.startswith("[deploy] depth"))
    assert depth.startswith("[deploy] depth: 20 -> 10    (restart ") and "market_data" in depth and "risk" in depth
    code, out, _ = _run(capsys, cfg, "show", "2")
    assert out == v2
    code, _, err = _run(capsys, cfg, "show", "3")
    assert code == 2 and "no config version 3" in err


def test_rollback_when_nothing_runs_then_the_file_is_version_n_and_the_event_names_who_and_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, store = _deployment(tmp_path)
    original = cfg.read_bytes()
    cfg.write_text(cfg.read_text().replace('max_drawdown = "2000"', 'max_drawdown = "9000"'))
    code, out, _ = _run(capsys, cfg, "rollback", "1", "--reason", "too loose", "--operator", "carol")
    assert code == 0, out
    assert cfg.read_bytes() == original and "risk          not running" in out
    ev = store.events()[-1]
    assert (ev.seq, ev.event, ev.source, ev.operator, ev.reason) == (1, "rollback", "cli", "carol", "rollback to 1: too loose")
    code, _, err = _run(capsys, cfg, "rollback", "1", "--reason", "  ")
    assert code == 2 and "a reason is required" in err
