"""procs.tools.stack itself: the generated config, a process that fails to come up, an owner stopped by
a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from procs.tools.stack import ROOT, Stack, StackError, dumps_toml, merge
from shm.segment import list_segments, list_semaphores, pid_alive

pytestmark = pytest.mark.proc


def test_dumps_toml_when_repo_config_merged_with_overrides_then_reads_back_equal():
    base = tomllib.loads((ROOT / "b25.toml").read_text())
    over = {"risk": {"default": {"max_position": "1"}, "symbols": {"ETHUSDT": {"max_order_qty": "2"}}},
            "strategy": {"strategies": [{"id": "e", "class": "m:C", "symbols": ["BTCUSDT"],
                                         "params": {"a": 1.5, "b": "x\"y", "c": [1, 2], "d": True}}]}}
    doc = merge(base, over)
    assert tomllib.loads(dumps_toml(doc)) == doc
    assert doc["risk"]["default"]["max_order_qty"] == "0.1"  # merged, not replaced
    assert doc["risk"]["symbols"]["BTCUSDT"]["max_position"] == "0.2"


def test_start_when_a_process_fails_then_error_names_it_with_its_log_and_nothing_is_left(tmp_path, instance):
    s = Stack(tmp_path, instance=instance, overrides={"risk": {"max_drawdon": "5"}})
    with pytest.raises(StackError) as err:
        s.start()
    msg = str(err.value)
    assert msg.startswith("risk did not come up") and "max_drawdon" in msg
    assert set(s.exit_codes) == {"exchange_sim", "market_data", "risk", "execution", "strategy"}
    assert all(p.poll() is not None for p in s.popen.values())
    assert not list_segments(instance) and not list_semaphores(instance)


OWNER = """
import json, sys, time
from procs.tools.stack import Stack
with Stack(sys.argv[1], instance=sys.argv[2], overrides={"strategy": {"strategies": []}}) as s:
    print(json.dumps({p: s.pid(p) for p in s.procs}), flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_owner_when_signalled_then_every_process_stops_and_the_instance_is_removed(tmp_path, instance, sig):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path), instance], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, owner.stderr.read() if owner.stderr else ""
        pids = json.loads(line)
        owner.send_signal(sig)
        _, err = owner.communicate(timeout=60)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert "KeyboardInterrupt" in err  # the owner unwound through the Stack's clean-up
    assert not [p for p, pid in pids.items() if pid_alive(pid)]
    assert not list_segments(instance) and not list_semaphores(instance)
    assert (Path(tmp_path) / f"stack-{instance}" / "log" / "execution.log").exists()


def test_running_stack_when_up_then_every_named_consumer_slot_is_held_by_a_live_process(make_stack):
    # a slot the registry names but no process attaches shows as a dead consumer with an ever
    # growing lag (b25 shm ls, b25_ring_consumer_lag): a false alarm for the operator
    from procs.core.registry import build_registry
    from shm.inspect import describe
    from shm.segment import shm_name
    from tests.support.system import NO_STRATEGIES, ManualOrders

    s = make_stack(overrides=NO_STRATEGIES)
    manual = ManualOrders(s.instance)  # orders.manual is created by its producer (the TUI, the ops API)
    from procs.core.services import SERVICES

    # a ring whose producing service is not running (orders.remote without the bridge) does not exist
    producer = {ring: svc.name for svc in SERVICES for ring in svc.produces}
    named = {name: spec.consumers for name, spec in build_registry().rings.items()
             if spec.consumers and producer.get(name, s.procs[0]) in s.procs}

    def unheld() -> list[str]:
        out = []
        for ring, consumers in named.items():
            d = describe(shm_name(s.instance, ring))
            slots = d.get("consumers", [])
            out += [f"{ring}[{c}]" for k, c in enumerate(consumers) if k >= len(slots) or not slots[k]["alive"]]
        return out

    try:
        s.wait_for(lambda: not unheld(), "every named consumer attached", timeout=15)
    except AssertionError:
        raise AssertionError(f"named consumers never attached: {unheld()}") from None
    finally:
        manual.p.close()
