"""apply_sched: a process puts itself (every thread, and threads started later) under the
scheduling policy from its config; a bad spec is refused naming the field; a refusal by the
kernel is logged and the process runs on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from procs.core.agent import parse_sched
from procs.core.config import ConfigError, load_section
from procs.market_data.config import MarketDataConfig

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, sys, threading, time
from procs.core.agent import apply_sched
before = threading.Thread(target=time.sleep, args=(2,)); before.start()
got = apply_sched(sys.argv[1])
after = threading.Thread(target=time.sleep, args=(2,)); after.start()
tids = [int(t) for t in os.listdir("/proc/self/task")]
print(json.dumps({"applied": got, "policies": [os.sched_getscheduler(t) for t in tids],
                  "nice": [os.getpriority(os.PRIO_PROCESS, t) for t in tids], "threads": len(tids)}))
"""


def _run_child(spec: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, spec], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fifo_permitted() -> bool:
    try:
        return os.geteuid() == 0 or os.getrlimit(os.RLIMIT_RTPRIO)[0] > 0
    except OSError:
        return False


@pytest.mark.parametrize(("spec", "want"), [("", ("", 0)), ("fifo:10", ("fifo", 10)), ("rr:1", ("rr", 1)),
                                            ("nice:-5", ("nice", -5)), ("nice:19", ("nice", 19))])
def test_parse_sched_when_valid_then_policy_and_value(spec: str, want: tuple[str, int]) -> None:
    assert parse_sched(spec) == want


@pytest.mark.parametrize(("spec", "words"), [("fifo", "integer"), ("fifo:0", "1..99"), ("fifo:100", "1..99"),
                                             ("idle:3", "fifo:N"), ("nice:-21", "-20..19"), ("nice:x", "integer")])
def test_parse_sched_when_invalid_then_error_names_spec(spec: str, words: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_sched(spec)
    assert words in str(e.value) and f"sched={spec!r}" in str(e.value)


def test_config_when_sched_invalid_then_config_error_names_section(tmp_path: Path) -> None:
    cfg = tmp_path / "b25.toml"
    cfg.write_text('[market_data.runtime]\nsched = "fifo:0"\n')
    with pytest.raises(ConfigError) as e:
        load_section(cfg, "market_data", MarketDataConfig)
    assert "section [market_data] field runtime.sched: sched fifo value must be in" in str(e.value)


@pytest.mark.proc
def test_apply_sched_when_nice_then_every_thread_including_later_ones() -> None:
    got = _run_child("nice:7")
    assert got["applied"] == "nice:7"
    assert got["threads"] >= 3 and got["nice"] == [7] * got["threads"]


@pytest.mark.proc
@pytest.mark.skipif(not _fifo_permitted(), reason="SCHED_FIFO needs root or RLIMIT_RTPRIO > 0 here")
def test_apply_sched_when_fifo_permitted_then_every_thread_is_fifo() -> None:
    got = _run_child("fifo:3")
    assert got["applied"] == "fifo:3"
    assert got["threads"] >= 3 and got["policies"] == [os.SCHED_FIFO] * got["threads"]


@pytest.mark.proc
def test_apply_sched_when_refused_then_logged_and_nothing_applied() -> None:
    # raising nice back down needs CAP_SYS_NICE: drop to nobody in the child when we are root
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges in the child")
    code = ("import os, json, sys; from procs.core.agent import apply_sched;"  # import before: root-only stdlib
            "os.setpriority(os.PRIO_PROCESS, 0, 5); os.setgid(65534); os.setuid(65534);"
            "print(json.dumps({'applied': apply_sched('fifo:5'),"
            "'policy': os.sched_getscheduler(0)}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"applied": "", "policy": os.SCHED_OTHER}
    assert "sched_refused" in out.stderr


def test_hold_cpu_latency_when_negative_then_nothing_asked() -> None:
    from procs.core.agent import hold_cpu_latency

    assert hold_cpu_latency(-1) is None


@pytest.mark.skipif(not os.access("/dev/cpu_dma_latency", os.W_OK), reason="/dev/cpu_dma_latency not writable here")
def test_hold_cpu_latency_when_permitted_then_request_held_until_closed() -> None:
    import struct

    from procs.core.agent import hold_cpu_latency

    fd = hold_cpu_latency(7)
    assert fd is not None
    try:
        with open("/dev/cpu_dma_latency", "rb") as f:  # reading gives the effective system-wide value
            assert struct.unpack("i", f.read(4))[0] <= 7
    finally:
        os.close(fd)


@pytest.mark.proc
def test_freeze_gc_when_called_then_start_up_objects_frozen_and_garbage_collected_first() -> None:
    child = """
import gc, json, weakref
from procs.core.agent import freeze_gc
class Node:
    pass
a = Node(); b = Node(); a.peer = b; b.peer = a  # a cycle: garbage only the collector frees
ref = weakref.ref(a)
del a, b
n = freeze_gc()
print(json.dumps({"frozen": n, "count": gc.get_freeze_count(), "young": gc.get_count()[0], "cycle_freed": ref() is None}))
"""
    out = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["frozen"] == got["count"] > 1000  # the interpreter's and the imports' objects
    assert got["cycle_freed"]  # collected before the freeze, not frozen as garbage
    assert got["young"] < 50
