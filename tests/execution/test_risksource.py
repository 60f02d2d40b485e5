"""execution fails closed without risk: RiskSource over a real risk.state block in shm."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from procs.core import messages as M
from procs.core.registry import RISK_STATE, build_registry
from procs.execution.pretrade import OpenCounts, RiskLimits, check_submit
from procs.execution.risksource import ALERT_RISK_BACK, ALERT_RISK_LOST, RiskSource, risk_alert
from shm import layout as L

SCALES = (2, 3)


def submit(lim: RiskLimits) -> int:
    return check_submit(0, M.BUY, M.LIMIT, 100, 1, 0, lim, OpenCounts(), 0, SCALES)


def write(w, **fields: int) -> None:
    w.begin()
    w.records["trading_state"][0] = M.ACTIVE
    for k, v in fields.items():
        w.records[k][0] = v
    w.end()


def test_required_when_no_block_then_new_orders_denied_risk_unavailable(instance: str) -> None:
    src = RiskSource(build_registry(), instance, required=True)
    assert submit(src()) == M.DENY_RISK_UNAVAILABLE
    assert src.lost == "no risk.state block" and not src.available
    assert M.DENY_NAMES[M.DENY_RISK_UNAVAILABLE] == "risk_unavailable"


@pytest.fixture
def block(instance: str) -> Iterator[tuple[Any, RiskSource]]:
    """A risk.state writer (as risk) and execution's RiskSource over it (required, stale_s 2 s)."""
    reg = build_registry()
    w = reg.writer(instance, RISK_STATE)
    src = RiskSource(reg, instance, required=True, stale_s=2.0)
    yield w, src
    src.close()
    w.close(unlink=True)


def test_required_when_block_created_but_never_written_then_denied_until_written(block) -> None:
    w, src = block
    assert submit(src()) == M.DENY_RISK_UNAVAILABLE  # its zeros would read as "no limits"
    write(w, max_open_orders=5)
    lim = src()
    assert submit(lim) == 0 and lim.max_open_orders == 5 and src.available


def test_check_when_producer_silent_then_dropped_and_picked_up_again_once_it_beats(block) -> None:
    w, src = block
    write(w)
    assert submit(src()) == 0
    hb = w.seg.words[L.W_HEARTBEAT_NS]
    assert src.check(hb + 1_900_000_000)  # within stale_s
    w.seg.words[L.W_HEARTBEAT_NS] = hb - 2_100_000_000  # its last beat, 2.1 s ago
    assert not src.check(hb)
    assert src.lost == "risk has not beaten for 2.1 s"
    assert submit(src()) == M.DENY_RISK_UNAVAILABLE  # the same look again: still silent
    src.next_try = 0.0
    assert submit(src()) == M.DENY_RISK_UNAVAILABLE
    w.heartbeat()
    src.next_try = 0.0
    assert submit(src()) == 0 and src.lost == ""


@pytest.mark.proc
def test_check_when_producer_dead_then_dropped_with_its_pid(block) -> None:
    w, src = block
    write(w)
    assert submit(src()) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    w.seg.words[L.W_PRODUCER_PID] = dead.pid
    assert not src.check()
    assert src.lost == f"risk (pid {dead.pid}) is not running"
    assert submit(src()) == M.DENY_RISK_UNAVAILABLE


def test_not_required_when_no_block_then_no_limits(instance: str) -> None:
    src = RiskSource(build_registry(), instance, required=False)
    assert src() == RiskLimits.permissive() and submit(src()) == 0


def test_cancel_path_when_risk_unavailable_then_not_checked() -> None:
    # cancels never go through check_submit: an unavailable risk blocks new exposure only
    assert submit(RiskLimits.unavailable()) == M.DENY_RISK_UNAVAILABLE
    assert check_submit(0, M.BUY, M.LIMIT, 0, 1, 0, RiskLimits.unavailable(), OpenCounts(), 0, SCALES) == M.DENY_BAD_INTENT


def test_on_change_when_an_attached_risk_goes_and_returns_then_heard_once_each(instance: str) -> None:
    reg = build_registry()
    heard: list[tuple[bool, str]] = []
    src = RiskSource(reg, instance, required=True, on_change=lambda up, why: heard.append((up, why)))
    src()  # start-up, before risk: logged, not an alert
    assert heard == [] and src.lost == "no risk.state block"
    w = reg.writer(instance, RISK_STATE)
    try:
        write(w)
        src.next_try = 0.0
        assert submit(src()) == 0 and heard == []  # the first attach is not a return
        w.seg.words[L.W_HEARTBEAT_NS] -= 3_000_000_000
        assert not src.check() and not src.check()
        assert len(heard) == 1 and heard[0][0] is False and heard[0][1].startswith("risk has not beaten for 3.")
        w.heartbeat()
        src.next_try = 0.0
        assert submit(src()) == 0
        assert heard[1] == (True, heard[0][1])
    finally:
        src.close()
        w.close(unlink=True)


def test_risk_alert_when_required_then_critical_and_says_orders_are_denied() -> None:
    assert risk_alert(False, "risk (pid 7) is not running", True) == (
        M.ALERT_CRITICAL, ALERT_RISK_LOST, "new orders denied: risk (pid 7) is not running")
    assert risk_alert(False, "x", False)[:2] == (M.ALERT_WARN, ALERT_RISK_LOST)
    assert risk_alert(True, "x", True) == (M.ALERT_INFO, ALERT_RISK_BACK, "risk is back (it was away: x)")
