"""The ``peer`` of ``b25 bench replay``: hftbacktest's own backtest of the same recording.

hftbacktest pins numpy (``numpy>=2.0,<2.3`` in 2.4.4) and numba (``~=0.61``), so it never enters
b25's venv: ``run_peer`` creates its own venv once (``PEER_VENV``, git-ignored), installs
``hftbacktest==HFTBACKTEST_VERSION`` from PyPI there, and drives ``_hbt_peer_script.py`` in it
as a subprocess that imports nothing from b25. Three steps, each cached where it can be:

1. venv: ``python -m venv`` + ``pip install``; a marker file written only after a successful
   install makes the next run skip this step (a half-done install is simply redone).
2. convert: ``hftbacktest.data.utils.binancefutures.convert`` (hftbacktest's converter for the
   Binance futures raw feed, ``<local ts ns> <json>`` lines, snapshot inline) -> npz of its
   64-byte event rows, cached under the venv by file name, size, mtime and version. Its time is
   reported as ``convert_seconds`` (from the run that converted; ``convert_cached`` says so).
3. run: a ``HashMapMarketDepthBacktest`` (linear asset, tick 0.1, lot 0.001, power-prob queue
   model, constant 10 ms order latency, no-partial-fill exchange) and a numba strategy that does
   nothing but ``wait_next_feed`` to the end of the data, so it is woken on every market feed
   and the engine processes every row. The strategy is compiled on a small slice first (numba's
   JIT is paid there and reported as ``jit_seconds``); the timed passes then run machine code
   only. ``seconds`` is the best of ``repeats`` passes (the machine is shared; as in
   ``procs.tools.bench.book``), ``events`` the rows of the converted data, ``feeds`` the wake-ups
   (one per source message: rows of one message share a local timestamp).

``run_peer`` never raises: a failure (PyPI unreachable, install or conversion failed) comes back
as ``{"impl": "hftbacktest", "error": "..."}`` for the caller to print in its JSON.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "real" / "hftbacktest-binance" / "usdm" / "btcusdt_20240808.gz"
PEER_VENV = ROOT / ".venv-peers" / "hftbacktest"
SCRIPT = Path(__file__).with_name("_hbt_peer_script.py")
IMPL = "hftbacktest"
# The newest release that installs on Python 3.11 here; pinned so figures compare across runs.
HFTBACKTEST_VERSION = "2.4.4"
REQUIREMENT = f"hftbacktest=={HFTBACKTEST_VERSION}"
READY_MARKER = ".b25-ready"
CACHE_DIR = "b25-cache"
REPEATS = 10
WARMUP_ROWS = 20_000
QUICK_LINES = 5_000  # source lines converted in quick mode (the snapshot is within the first few)
INSTALL_TIMEOUT_S = 1800
STEP_TIMEOUT_S = 1800
# pip's words for "no network / no index": turned into a hint instead of a wall of retries.
_NETWORK_SIGNS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "ConnectTimeoutError",
    "ReadTimeoutError",
)


class PeerError(Exception):
    """A peer step failed; the message is what the benchmark JSON shows."""


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def create_venv_cmd(venv: Path, python: str = sys.executable) -> list[str]:
    # b25's own interpreter (3.11, what hftbacktest >= 2.4 requires); venv takes its base Python.
    return [python, "-m", "venv", str(venv)]


def pip_install_cmd(venv: Path, requirements: tuple[str, ...] = (REQUIREMENT,)) -> list[str]:
    return [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            *requirements]


def convert_cmd(venv: Path, data: Path, npz: Path, max_lines: int = 0) -> list[str]:
    cmd = [str(venv_python(venv)), str(SCRIPT), "convert", "--input", str(data), "--output", str(npz)]
    if max_lines:
        cmd += ["--max-lines", str(max_lines)]
    return cmd


def run_cmd(venv: Path, npz: Path, repeats: int = REPEATS, warmup_rows: int = WARMUP_ROWS,
            market_maker: bool = False) -> list[str]:
    return [str(venv_python(venv)), str(SCRIPT), "run", "--npz", str(npz), "--repeats", str(repeats),
            "--warmup-rows", str(warmup_rows)] + (["--market-maker"] if market_maker else [])


def peer_env() -> dict[str, str]:
    """The environment for peer subprocesses: nothing of b25's venv or path leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def cache_path(cache_dir: Path, data: Path, quick: bool) -> Path:
    """Where the converted npz of ``data`` lives; a changed recording or version gets a new name."""
    st = data.stat()
    stem = data.name.split(".")[0]
    tag = f"-quick{QUICK_LINES}" if quick else ""
    return cache_dir / f"{stem}-{st.st_size}-{int(st.st_mtime)}-hbt{HFTBACKTEST_VERSION}{tag}.npz"


def _tail(text: str, lines: int = 6, chars: int = 800) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[-chars:]


def install_error(returncode: int, output: str, venv: Path, requirements: tuple[str, ...] = (REQUIREMENT,)) -> str:
    """One line for a failed ``pip install``, with a hint when the index could not be reached."""
    msg = f"pip install {' '.join(requirements)} failed: rc={returncode} venv={venv}"
    if any(s in output for s in _NETWORK_SIGNS):
        msg += " (is PyPI reachable from this host?)"
    return f"{msg}: {_tail(output)}"


def parse_script_output(step: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The script's last stdout line as a dict; any failure becomes a PeerError naming the step."""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    doc: Any = None
    if lines:
        try:
            doc = json.loads(lines[-1])
        except ValueError:
            doc = None
    if isinstance(doc, dict) and "error" in doc:
        raise PeerError(f"{step} failed in the peer venv: {doc['error']}")
    if returncode != 0 or not isinstance(doc, dict):
        # A crash (a segfault is rc < 0) prints no JSON: stderr's tail is all there is.
        raise PeerError(f"{step} failed in the peer venv: rc={returncode}: {_tail(stderr) or _tail(stdout)}")
    return doc


def peer_result(run: dict[str, Any], convert: dict[str, Any], venv_info: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's ``peer`` entry from the script's run and convert documents."""
    events, seconds = int(run["events"]), float(run["seconds"])
    engine = run.get("engine_seconds")
    runs = [float(s) for s in run.get("runs_seconds", [])]
    return {
        "impl": IMPL,
        "version": run["version"],
        "events": events,
        "feeds": run.get("feeds"),
        "seconds": round(seconds, 6),
        "events_per_s": round(events / seconds) if seconds > 0 else None,
        "events_per_s_median": round(events / statistics.median(runs)) if runs else None,
        "feeds_per_s": round(run["feeds"] / seconds) if seconds > 0 and run.get("feeds") else None,
        "engine_events_per_s": round(events / engine) if engine else None,
        "runs_seconds": [round(s, 6) for s in runs],
        "jit_seconds": round(float(run.get("jit_seconds", 0.0)), 3),
        "source_lines": convert.get("source_lines"),
        "convert_seconds": round(float(convert["seconds"]), 3),
        "convert_cached": bool(convert.get("cached", False)),
        "venv_created": venv_info["created"],
        "venv_seconds": round(venv_info["seconds"], 3),
        "method": "HashMapMarketDepthBacktest, strategy = wait_next_feed to the end; "
                  "best pass after a JIT warm-up on a slice",
        **({"mm_seconds": round(float(run["mm_seconds"]), 6),
            "mm_events_per_s": round(events / float(run["mm_seconds"])) if run["mm_seconds"] else None,
            "mm_runs_seconds": [round(float(s), 6) for s in run["mm_runs_seconds"]],
            "mm_orders": run["mm_orders"], "mm_fills": run["mm_fills"],
            "mm_method": "a numba market maker shaped as b25's MarketMaker (post-only 0.001 quotes 10 ticks "
                         "around the mid, position skew, requote at 2 ticks, cap 0.01), woken on every feed "
                         "and order response; 10 ms order latency each way"}
           if "mm_seconds" in run else {}),
    }


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=peer_env(), cwd=ROOT,
                          stdin=subprocess.DEVNULL)


def ensure_venv(venv: Path, requirements: tuple[str, ...] = (REQUIREMENT,)) -> dict[str, Any]:
    """Create a peer venv with ``requirements`` unless a finished one is there; returns created/seconds.

    Every benchmark peer (hftbacktest, nautilus_trader) gets its own venv this way, so b25's
    environment keeps its own numpy and uvloop.
    """
    marker = venv / READY_MARKER
    want = " ".join(requirements)
    if marker.is_file() and marker.read_text().strip() == want and venv_python(venv).exists():
        return {"created": False, "seconds": 0.0}
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Two benchmarks started together must not pip into one venv at once.
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text().strip() == want and venv_python(venv).exists():
            return {"created": False, "seconds": 0.0}
        t0 = time.perf_counter()
        r = _run(create_venv_cmd(venv), 300)
        if r.returncode != 0:
            raise PeerError(f"python -m venv failed: rc={r.returncode} venv={venv}: {_tail(r.stderr + r.stdout)}")
        r = _run(pip_install_cmd(venv, requirements), INSTALL_TIMEOUT_S)
        if r.returncode != 0:
            raise PeerError(install_error(r.returncode, r.stdout + r.stderr, venv, requirements))
        marker.write_text(want + "\n")
        return {"created": True, "seconds": time.perf_counter() - t0}


def ensure_converted(venv: Path, data: Path, quick: bool) -> tuple[Path, dict[str, Any]]:
    """The npz of ``data`` in the venv's cache, converting it first if needed."""
    cache = venv / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    npz = cache_path(cache, data, quick)
    meta = npz.with_suffix(".json")
    if npz.is_file() and meta.is_file():
        try:
            info = json.loads(meta.read_text())
            return npz, {**info, "cached": True}
        except ValueError:
            pass  # a torn sidecar: convert again
    r = _run(convert_cmd(venv, data, npz, QUICK_LINES if quick else 0), STEP_TIMEOUT_S)
    info = parse_script_output("convert", r.returncode, r.stdout, r.stderr)
    meta.write_text(json.dumps(info))
    return npz, {**info, "cached": False}


def run_peer(data: Path, venv: Path | None = None, quick: bool = False, market_maker: bool = False) -> dict[str, Any]:
    """hftbacktest's backtest of ``data`` with a do-nothing strategy (and ``market_maker``: its
    market-making example too); ``{"impl", "error"}`` on failure."""
    venv = Path(venv) if venv is not None else PEER_VENV
    data = Path(data)
    try:
        if not data.is_file():
            raise PeerError(f"recording not found: data={data}")
        venv_info = ensure_venv(venv)
        npz, convert = ensure_converted(venv, data, quick)
        repeats, warmup = (1, 1_000) if quick else (REPEATS, WARMUP_ROWS)
        r = _run(run_cmd(venv, npz, repeats, warmup, market_maker), STEP_TIMEOUT_S)
        return peer_result(parse_script_output("run", r.returncode, r.stdout, r.stderr), convert, venv_info)
    except PeerError as e:
        return {"impl": IMPL, "error": str(e)}
    except subprocess.TimeoutExpired as e:
        return {"impl": IMPL, "error": f"peer step timed out: timeout_s={e.timeout} cmd={' '.join(map(str, e.cmd[:4]))}"}
    except (OSError, KeyError, TypeError, ValueError) as e:
        return {"impl": IMPL, "error": f"{type(e).__name__}: {e}"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="hftbacktest's do-nothing backtest of a recording, as JSON")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--venv", type=Path, default=None)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    res = run_peer(a.data, a.venv, a.quick)
    print(json.dumps(res))
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
