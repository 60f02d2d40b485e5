"""Starting real b25 processes from tests: the simulator (ephemeral ports) and the others."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.support import spawn


def start_sim(procs: list, *args: str, timeout: float = 30) -> tuple[subprocess.Popen, int, int]:
    """``python -m procs.exchange_sim --port 0 --ws-port 0 <args>``; returns (proc, rest_port, ws_port)."""
    p = spawn("-m", "procs.exchange_sim", "--port", "0", "--ws-port", "0", *args,
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    deadline = time.monotonic() + timeout
    assert p.stderr is not None
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            if p.poll() is not None:
                raise AssertionError(f"exchange_sim exited rc={p.returncode}")
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("event") == "listening":
            _drain(p)
            return p, int(rec["rest_port"]), int(rec["ws_port"])
    raise AssertionError("exchange_sim did not report its ports")


def _drain(p: subprocess.Popen) -> None:
    """Keep reading the child's stderr so a full pipe never blocks it."""
    import threading

    def run() -> None:
        assert p.stderr is not None
        for _ in p.stderr:
            pass

    threading.Thread(target=run, daemon=True).start()


def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "b25.toml"
    path.write_text(text)
    return path


def start_proc(procs: list, module: str, config: Path, instance: str, *args: str,
               log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed when the test ends
    p = spawn("-m", module, "--config", str(config), "--instance", instance, *args, stdout=out, stderr=out)
    procs.append(p)
    return p


def stop(p: subprocess.Popen, timeout: float = 15) -> int:
    """SIGTERM and wait; returns the exit status."""
    if p.poll() is None:
        p.terminate()
    return p.wait(timeout)
