"""Fixtures for execution tests: a real simulator per test and rigs that clean up after themselves."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.execution_rig import Rig, start_sim, write_config


@pytest.fixture
def sim(procs: list[subprocess.Popen]) -> Iterator[tuple[int, int]]:
    p, rest_port, ws_port, _tail = start_sim(procs)
    yield rest_port, ws_port
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


@pytest.fixture
def make_rig(instance: str, procs: list, sim: tuple[int, int], tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(**over: Any) -> Rig:
        cfg = write_config(tmp_path, sim[0], sim[1], **over)
        r = Rig(instance, procs, cfg, sim[0])
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.close()
