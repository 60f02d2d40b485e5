"""``b25 shm ls`` and ``b25 shm clean`` on real segments."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from shm import layout as L
from shm.ring import Consumer, Producer
from shm.segment import list_segments
from tests.support import ROOT

REC = np.dtype([("seq", "<i8"), ("pad", "<i8", (7,))])


def _b25(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "procs.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.proc
def test_shm_ls_shows_cursor_lag_and_producer_liveness(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_GATING, ("c",))
    c = Consumer.attach(instance, "r", REC, "c", timeout=1)
    try:
        for i in range(5):
            p.try_publish(i, *([0] * 7))
        c.poll()
        c.commit()
        p.try_publish(5, *([0] * 7))
        r = _b25("shm", "ls", "--instance", instance, "--json")
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        assert len(rows) == 1
        row = rows[0]
        assert row["segment"] == f"/b25.{instance}.r" and row["producer_alive"] is True
        assert row["cursor"] == 6 and row["consumers"][0]["lag"] == 1
        text = _b25("shm", "ls", "--instance", instance).stdout
        assert "lag=1" in text and "alive" in text
    finally:
        c.close()
        p.close(unlink=True)


@pytest.mark.proc
def test_shm_clean_refuses_live_producer_unless_forced(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
    try:
        r = _b25("shm", "clean", "--instance", instance)
        assert r.returncode == 1 and "producer alive" in r.stderr
        assert list_segments(instance) == [f"/b25.{instance}.r"]
        r = _b25("shm", "clean", "--instance", instance, "--force")
        assert r.returncode == 0 and f"removed /b25.{instance}.r" in r.stdout
        assert list_segments(instance) == []
    finally:
        p.close()


@pytest.mark.proc
def test_shm_clean_removes_segments_of_dead_producer(instance: str) -> None:
    p = Producer.create(instance, "r", REC, 8, L.POLICY_BROADCAST)
    p.seg.words[L.W_PRODUCER_PID] = 2**22 + 12345  # a pid that is not running
    p.close()
    r = _b25("shm", "clean", "--instance", instance)
    assert r.returncode == 0, r.stderr
    assert list_segments(instance) == []
