"""``b25 bench ipc``: the mmap-floor transport (no ring code) runs through the same protocol."""

from __future__ import annotations

import os

import pytest

from procs.tools.bench.ipc import TRANSPORTS, floor_gap_us, run_transport

KEYS = {"transport", "p50_us", "p99_us", "p999_us", "msgs_per_s", "idle_cpu_pct"}


def test_floor_gap_when_both_run_then_spin_minus_floor_else_none() -> None:
    spin = {"transport": "b25-spin", "p50_us": 2.5}
    floor = {"transport": "mmap-floor", "p50_us": 1.25}
    assert floor_gap_us([spin, {"transport": "pipe", "p50_us": 30.0}, floor]) == 1.25
    assert floor_gap_us([spin]) is None and floor_gap_us([floor]) is None
    assert TRANSPORTS[-1] == "mmap-floor"


@pytest.mark.proc
@pytest.mark.timeout(120)
def test_mmap_floor_when_quick_then_sane_figures_and_no_named_shm() -> None:
    before = set(os.listdir("/dev/shm"))
    r = run_transport("mmap-floor", n_lat=2000, n_tput=20000, idle_s=0.2)
    assert set(r) == KEYS and r["transport"] == "mmap-floor"
    # figures are sane, never fast: speed depends on the machine and its load
    assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"]
    assert r["msgs_per_s"] > 0 and r["idle_cpu_pct"] >= 0
    assert set(os.listdir("/dev/shm")) - before == set()  # an anonymous mmap: nothing named
