"""The peer side of ``b25 bench replay`` without the peer venv: no network, no hftbacktest.

The real run (venv creation from PyPI, conversion, backtest) takes minutes and needs PyPI, so it
is run by hand (``python -m procs.tools.bench.replay_peer``); these tests cover the command lines, the
parsing of the peer script's JSON, the error paths and the caching, with a stand-in for the peer
venv's python that answers like ``_hbt_peer_script.py``.
"""

from __future__ import annotations

import gzip
import json
import stat
import sys
from pathlib import Path

import pytest

from procs.tools.bench import replay_peer as rp

FAKE_PYTHON = """#!{exe}
# Stands in for the peer venv's python running _hbt_peer_script.py: same argv, same JSON.
import json, pathlib, sys
args = sys.argv[2:]
calls = pathlib.Path(__file__).parent.parent / "calls.log"
with open(calls, "a") as f:
    f.write(args[0] + "\\n")
if args[0] == "convert":
    out = args[args.index("--output") + 1]
    pathlib.Path(out).write_bytes(b"npz")
    print("Correcting the latency")
    print(json.dumps({{"rows": 1000, "source_lines": 10, "seconds": 2.0}}))
elif args[0] == "run":
    print(json.dumps({{"version": "9.9.9", "events": 1000, "feeds": 10, "seconds": 0.5,
                       "runs_seconds": [0.5, 1.0], "jit_seconds": 3.0, "engine_seconds": 0.25}}))
"""


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "btcusdt_test.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'1723161255030314667 {"stream":"btcusdt@trade","data":{"e":"trade"}}\n')
    return path


def _fake_venv(tmp_path: Path, script: str = FAKE_PYTHON) -> Path:
    venv = tmp_path / "peer"
    (venv / "bin").mkdir(parents=True)
    py = venv / "bin" / "python"
    py.write_text(script.format(exe=sys.executable))
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    (venv / rp.READY_MARKER).write_text(rp.REQUIREMENT + "\n")
    return venv


def test_commands_when_built_then_pinned_and_run_in_peer_venv(tmp_path: Path) -> None:
    venv, data, npz = tmp_path / "v", tmp_path / "d.gz", tmp_path / "d.npz"
    py = str(venv / "bin" / "python")
    assert rp.create_venv_cmd(venv, "python3") == ["python3", "-m", "venv", str(venv)]
    pip = rp.pip_install_cmd(venv)
    assert pip[:4] == [py, "-m", "pip", "install"] and pip[-1] == f"hftbacktest=={rp.HFTBACKTEST_VERSION}"
    assert rp.convert_cmd(venv, data, npz) == [py, str(rp.SCRIPT), "convert", "--input", str(data),
                                               "--output", str(npz)]
    assert rp.convert_cmd(venv, data, npz, 5000)[-2:] == ["--max-lines", "5000"]
    assert rp.run_cmd(venv, npz, 3, 100) == [py, str(rp.SCRIPT), "run", "--npz", str(npz), "--repeats", "3",
                                             "--warmup-rows", "100"]
    assert rp.SCRIPT.is_file()


def test_peer_env_when_built_then_b25_venv_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", "/work/main/.venv")
    monkeypatch.setenv("PYTHONPATH", "/work/main")
    env = rp.peer_env()
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env and env["PYTHONNOUSERSITE"] == "1"


def test_parse_when_noise_before_json_then_last_line_is_the_result() -> None:
    out = "Correcting the latency\nSaving to x.npz\n" + json.dumps({"rows": 5}) + "\n"
    assert rp.parse_script_output("convert", 0, out, "") == {"rows": 5}


def test_parse_when_script_reports_error_then_peer_error_names_step() -> None:
    out = json.dumps({"error": "convert: IndexError: index 10 is out of bounds"})
    with pytest.raises(rp.PeerError, match="convert failed in the peer venv: convert: IndexError"):
        rp.parse_script_output("convert", 1, out, "Traceback ...")


def test_parse_when_crashed_without_json_then_stderr_tail_in_error() -> None:
    with pytest.raises(rp.PeerError, match=r"run failed in the peer venv: rc=-11: .*Segmentation fault"):
        rp.parse_script_output("run", -11, "", "Fatal Python error: Segmentation fault\n")
    with pytest.raises(rp.PeerError, match="rc=0"):
        rp.parse_script_output("run", 0, "not json", "")


def test_install_error_when_index_unreachable_then_hints_pypi(tmp_path: Path) -> None:
    out = ("WARNING: Retrying ... Failed to establish a new connection: [Errno -3] Temporary failure in name "
           "resolution\nERROR: Could not find a version that satisfies the requirement hftbacktest==2.4.4\n"
           "ERROR: No matching distribution found for hftbacktest==2.4.4\n")
    msg = rp.install_error(1, out, tmp_path)
    assert "is PyPI reachable" in msg and "No matching distribution found" in msg and "\n" not in msg
    assert "is PyPI reachable" not in rp.install_error(1, "error: subprocess-exited-with-error", tmp_path)


def test_peer_result_when_built_then_events_per_s_excludes_convert_and_jit() -> None:
    run = {"version": "2.4.4", "events": 1000, "feeds": 10, "seconds": 0.5, "runs_seconds": [0.5, 1.5, 1.0],
           "jit_seconds": 3.0, "engine_seconds": 0.25}
    res = rp.peer_result(run, {"rows": 1000, "source_lines": 10, "seconds": 2.0, "cached": True},
                         {"created": False, "seconds": 0.0})
    assert res["impl"] == "hftbacktest" and res["version"] == "2.4.4"
    assert res["events"] == 1000 and res["events_per_s"] == 2000 and res["events_per_s_median"] == 1000
    assert res["feeds_per_s"] == 20 and res["engine_events_per_s"] == 4000
    assert res["convert_seconds"] == 2.0 and res["convert_cached"] is True and res["jit_seconds"] == 3.0


def test_cache_path_when_quick_or_data_changes_then_new_name(tmp_path: Path, recording: Path) -> None:
    full = rp.cache_path(tmp_path, recording, quick=False)
    assert full.parent == tmp_path and full.name.startswith("btcusdt_test-") and full.suffix == ".npz"
    assert rp.HFTBACKTEST_VERSION in full.name
    assert rp.cache_path(tmp_path, recording, quick=True) != full
    with gzip.open(recording, "ab") as f:
        f.write(b"1 {}\n" * 100)
    assert rp.cache_path(tmp_path, recording, quick=False) != full


def test_run_peer_when_data_missing_then_error_dict(tmp_path: Path) -> None:
    res = rp.run_peer(tmp_path / "nope.gz", venv=tmp_path / "peer")
    assert res == {"impl": "hftbacktest", "error": f"recording not found: data={tmp_path / 'nope.gz'}"}
    assert not (tmp_path / "peer").exists()


@pytest.mark.proc
def test_run_peer_when_venv_ready_then_converts_once_and_reports(tmp_path: Path, recording: Path) -> None:
    venv = _fake_venv(tmp_path)
    first = rp.run_peer(recording, venv=venv)
    assert "error" not in first, first
    assert first["version"] == "9.9.9" and first["events"] == 1000 and first["events_per_s"] == 2000
    assert first["convert_seconds"] == 2.0 and first["convert_cached"] is False
    assert first["venv_created"] is False and first["source_lines"] == 10
    second = rp.run_peer(recording, venv=venv)
    assert second["convert_cached"] is True and second["convert_seconds"] == 2.0
    assert (venv / "calls.log").read_text().split() == ["convert", "run", "run"]


@pytest.mark.proc
def test_run_peer_when_peer_script_fails_then_error_not_traceback(tmp_path: Path, recording: Path) -> None:
    # b25's own python has no hftbacktest: the real script must report that as one JSON error.
    venv = _fake_venv(tmp_path, "")
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(sys.executable)
    res = rp.run_peer(recording, venv=venv)
    assert set(res) == {"impl", "error"}
    assert "convert failed in the peer venv" in res["error"] and "No module named 'hftbacktest'" in res["error"]
    assert "Traceback" not in res["error"]


@pytest.mark.proc
def test_run_peer_when_install_fails_then_error_and_no_ready_marker(
    tmp_path: Path, recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail = "import sys; print('ERROR: No matching distribution found for hftbacktest'); sys.exit(1)"
    monkeypatch.setattr(rp, "create_venv_cmd", lambda venv: [sys.executable, "-c", "pass"])
    monkeypatch.setattr(rp, "pip_install_cmd", lambda venv, *reqs: [sys.executable, "-c", fail])
    venv = tmp_path / "peer"
    res = rp.run_peer(recording, venv=venv)
    assert res["impl"] == "hftbacktest" and res["error"].startswith("pip install hftbacktest==")
    assert "is PyPI reachable" in res["error"]
    assert not (venv / rp.READY_MARKER).exists()
