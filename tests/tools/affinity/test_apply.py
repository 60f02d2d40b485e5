"""--apply against real child processes: CPU masks read back, SCHED_FIFO set or refused and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from procs.tools.affinity.apply import apply_layout, apply_placement, parse_pids
from procs.tools.affinity.layout import Placement, Proposal
from procs.tools.affinity.topology import read_permissions
from tests.support import ROOT, spawn

pytestmark = pytest.mark.proc

SLEEPER = "import sys, threading, time; threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); " \
          "print('ready', flush=True); time.sleep(60)"


def start(procs, code=SLEEPER):
    p = spawn("-c", code, stdout=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout.readline().strip() == "ready"
    return p


def placement(name="strategy", cpus=(0,), policy="other", nice=0, prio=0, section="strategy"):
    return Placement(name=name, role="hot", section=section, cpus=cpus, idle="backoff",
                     policy=policy, priority=prio, nice=nice)


def tids(pid):
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


def test_apply_placement_when_child_running_then_every_thread_pinned_to_cpu_0(procs):
    child = start(procs)
    assert len(tids(child.pid)) >= 2
    out = apply_placement(placement(cpus=(0,)), child.pid)
    assert out[0].action == "affinity" and out[0].ok, out
    assert os.sched_getaffinity(child.pid) == {0}
    assert all(os.sched_getaffinity(t) == {0} for t in tids(child.pid))


def test_apply_placement_when_fifo_permitted_then_set_and_undone_by_a_later_layout(procs):
    if not read_permissions().fifo_allowed:
        pytest.skip("SCHED_FIFO not permitted for this user")
    child = start(procs)
    out = apply_placement(placement(policy="fifo", prio=10), child.pid)
    fifo = next(o for o in out if o.action == "fifo")
    if not fifo.ok:  # e.g. a container without an RT budget: refused, and said so
        assert "SCHED_FIFO" in fifo.detail
        return
    assert os.sched_getscheduler(child.pid) == os.SCHED_FIFO
    assert os.sched_getparam(child.pid).sched_priority == 10
    inherited = os.getpriority(os.PRIO_PROCESS, child.pid)  # pytest may itself run under nice
    target = 5 if inherited != 5 else 6
    out = apply_placement(placement(policy="other", nice=target), child.pid)
    assert os.sched_getscheduler(child.pid) == os.SCHED_OTHER
    assert os.getpriority(os.PRIO_PROCESS, child.pid) == target
    assert [o.action for o in out] == ["affinity", "policy", "nice"]


def test_apply_placement_when_unprivileged_then_refused_fifo_is_reported_not_raised():
    if os.geteuid() != 0 and read_permissions().fifo_allowed:
        pytest.skip("this user may set SCHED_FIFO, so there is nothing to refuse")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "tests.support.unprivileged_apply"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["uid"] != 0
    assert doc["affinity"] == [0], "pinning one's own process needs no privilege"
    assert doc["policy"] == os.SCHED_OTHER
    by_action = {o["action"]: o for o in doc["outcomes"]}
    assert by_action["affinity"]["ok"]
    assert not by_action["fifo"]["ok"]
    assert "permission denied" in by_action["fifo"]["detail"]
    assert not by_action["nice"]["ok"], "the nice fallback is refused too, and said so"


def test_apply_layout_when_pid_gone_or_missing_then_reported_as_refused(procs):
    gone = spawn("-c", "pass")
    gone.wait()
    prop = Proposal(mode="shared", hot_node=None, hot_cpus=(0,), housekeeping=(0,),
                    placements=[placement("market_data", section="market_data"), placement("risk", section="risk")])
    out = apply_layout(prop, {"market_data": gone.pid})
    md = next(o for o in out if o.name == "market_data" and o.action == "affinity")
    assert not md.ok and "no such process" in md.detail
    risk = next(o for o in out if o.name == "risk")
    assert risk.action == "find" and not risk.ok and "not running" in risk.detail


def test_apply_layout_when_process_has_a_child_then_child_moves_to_housekeeping(procs):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); print('ready', flush=True); time.sleep(60)")
    parent = start(procs, code)
    import psutil

    kids = psutil.Process(parent.pid).children()
    assert kids
    prop = Proposal(mode="dedicated", hot_node=0, hot_cpus=(1,), housekeeping=(0,),
                    placements=[placement("market_data", cpus=(1,), section="market_data")])
    try:
        out = apply_layout(prop, {"market_data": parent.pid})
        assert os.sched_getaffinity(parent.pid) == {1}
        assert os.sched_getaffinity(kids[0].pid) == {0}
        assert any(o.pid == kids[0].pid and o.ok and "housekeeping" in o.detail for o in out)
    finally:
        kids[0].kill()


def test_parse_pids_when_bad_item_then_value_error_names_it():
    assert parse_pids("market_data=12, strategy=34") == {"market_data": 12, "strategy": 34}
    with pytest.raises(ValueError, match="item='risk'"):
        parse_pids("market_data=12,risk")
