"""``python -m procs.risk`` as a real process against a real ``exchange_sim`` process."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from procs.core import control as C
from procs.core import messages as M
from procs.core.registry import EXEC, RISK_STATE, alerts_name, build_registry
from procs.core.status import read_status
from procs.exchange_sim.trading.config import DEFAULT_API_KEY, DEFAULT_API_SECRET
from procs.risk import alerts as A
from procs.risk import state as S
from procs.venue.binance.signing import Signer, rest_query
from shm.counters import read_counters
from shm.inspect import clean
from shm.segment import Segment
from tests.support import spawn

pytestmark = pytest.mark.proc


class Lines:
    """Collects a process's stderr JSON lines in a thread (a full pipe would block it)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._t = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._t.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def find(self, event: str) -> dict[str, Any] | None:
        return next((x for x in list(self.lines) if x.get("event") == event), None)


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``cond`` until truthy; the timeout only bounds a broken run (not a speed check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


def place_market_order(port: int, symbol: str, side: str, qty: str) -> dict:
    body = rest_query(Signer(DEFAULT_API_KEY, DEFAULT_API_SECRET),
                      {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty, "newOrderRespType": "RESULT"},
                      5000)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/fapi/v1/order", data=body.encode(), method="POST",
                                 headers={"X-MBX-APIKEY": DEFAULT_API_KEY,
                                          "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_process_when_exchange_has_unknown_position_then_mismatch_reducing_kill_switch_halts_restart_seeds(
        instance: str, procs: list[subprocess.Popen], tmp_path: Path) -> None:
    sim = spawn("-m", "procs.exchange_sim", "--port", "0", "--ws-port", "0",
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(sim)
    sim_log = Lines(sim)
    port = wait_for(lambda: (sim_log.find("listening") or {}).get("rest_port"), "simulator listening")

    reg = build_registry()
    exec_p = reg.producer(instance, EXEC)  # stands in for execution
    exec_inbox = C.ControlInbox(instance, "execution")
    cfg = tmp_path / "b25.toml"
    cfg.write_text(f"""
[deploy]
symbols = ["BTCUSDT", "ETHUSDT"]

[venue]
rest_url = "http://127.0.0.1:{port}"
api_key = "{DEFAULT_API_KEY}"
api_secret = "{DEFAULT_API_SECRET}"

[risk]
reconcile_interval_s = 0.2
mismatch_confirmations = 2
holds_file = "{tmp_path / 'risk.holds.json'}"
[risk.history]
dir = "{tmp_path / 'history'}"
[risk.default]
max_position = "1"
""")
    risk = spawn("-m", "procs.risk", "--config", str(cfg), "--instance", instance,
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(risk)
    risk_log = Lines(risk)
    counters_seg = None
    state_r = alerts_c = None
    try:
        counters_seg = wait_for(lambda: _attach_counters(instance), "risk counters")
        wait_for(lambda: read_counters(counters_seg)[0]["reconciliations"] >= 1, "first reconciliation")
        state_r = reg.reader(instance, RISK_STATE)
        alerts_c = reg.consumer(instance, alerts_name("risk"))
        alerts_c._next = 0  # observer from the first alert
        assert state_r.read()[0][0]["trading_state"] == M.ACTIVE
        assert state_r.read()[0][0]["max_position"][0] == 1000
        assert read_status(instance, "risk")["state"] == "RUNNING"

        filled = place_market_order(port, "BTCUSDT", "BUY", "0.010")
        assert filled["status"] == "FILLED"

        def state() -> Any:
            return state_r.read()[0][0]

        wait_for(lambda: state()["trading_state"] == M.REDUCING, "REDUCING after the mismatch")
        assert state()["halt_reason"] == S.REASON_RECONCILE
        assert state()["position"][0] == 0  # risk's own view: no fill came through exec
        alerts = alerts_c.poll()
        mm = [a for a in alerts if a["code"] == A.RECONCILE_MISMATCH]
        assert mm and mm[0]["level"] == M.ALERT_CRITICAL and mm[0]["symbol_id"] == 0
        assert b"BTCUSDT exchange position 0.01" in mm[0]["text"]
        alerts_c.commit()

        C.send_command(instance, "risk", C.SetKillSwitch(on=True, operator="test"))
        wait_for(lambda: state()["trading_state"] == M.HALTED, "HALTED after the kill switch")
        assert state()["halt_reason"] == S.REASON_KILL_SWITCH
        cmds = wait_for(exec_inbox.poll, "CancelAll in the execution inbox")
        assert isinstance(cmds[0], C.CancelAll) and cmds[0].operator == "risk"
        wait_for(lambda: read_counters(counters_seg)[0]["trading_state"] == M.HALTED, "counters refreshed")
        c = read_counters(counters_seg)[0]
        assert c["mismatches"] == 1 and c["cancel_alls"] == 1

        assert stop(risk) == 0, "".join(risk_log.raw[-10:])
        assert read_status(instance, "risk")["state"] == "STOPPED"
        assert risk_log.find("risk_stopped") is not None
        assert not any(DEFAULT_API_SECRET in line for line in risk_log.raw)

        # a restarted risk takes the position it cannot know from the exchange; the kill switch,
        # which only an operator may clear, outlives the restart (the reconcile hold does not)
        risk = spawn("-m", "procs.risk", "--config", str(cfg), "--instance", instance,
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(risk)
        risk_log = Lines(risk)
        wait_for(lambda: state()["position"][0] == 10, "seeded position after restart")
        wait_for(lambda: read_counters(counters_seg)[0]["reconciliations"] >= 3, "reconciliations after restart")
        assert state()["trading_state"] == M.HALTED and state()["halt_reason"] == S.REASON_KILL_SWITCH
        assert wait_for(lambda: risk_log.find("alert_raised"), "restore alert")["code"] == "holds_restored"
        C.send_command(instance, "risk", C.SetKillSwitch(on=False, operator="test"))
        wait_for(lambda: state()["trading_state"] == M.ACTIVE, "ACTIVE once an operator clears it")
        assert state()["halt_reason"] == 0
        assert read_counters(counters_seg)[0]["mismatches"] == 0
        assert any(r.get("code") == "position_seeded" for r in risk_log.lines if r.get("event") == "alert_raised")
        assert stop(risk) == 0, "".join(risk_log.raw[-10:])
    finally:
        for r in (state_r, alerts_c):
            if r is not None:
                r.close()
        if counters_seg is not None:
            counters_seg.close()
        if risk.poll() is None:
            stop(risk)
        exec_p.close(unlink=True)
        exec_inbox.close(unlink=True)
        C.unlink_queues(instance, ("risk",))
        clean(instance, force=True)
        assert stop(sim) == 0


def test_process_when_config_invalid_then_exits_2_naming_the_field(tmp_path: Path, instance: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[risk]\nmax_drawdon = "5"\n')
    p = spawn("-m", "procs.risk", "--config", str(cfg), "--instance", instance,
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2 and "max_drawdon" in err


def _attach_counters(instance: str) -> Segment | None:
    try:
        return Segment.attach(instance, "counters.risk", None, None, timeout=0.05)
    except (TimeoutError, OSError, RuntimeError):
        return None
