"""Shared test fixtures: paths to the real recordings and per-test shm instance names."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REAL


@pytest.fixture
def real_data() -> Path:
    """The read-only real recordings (../shared/data/real relative to the checkout)."""
    if not REAL.is_dir():
        pytest.skip(f"real recordings not found at {REAL}")
    return REAL


@pytest.fixture
def instance() -> Iterator[str]:
    """A unique shm instance name for one test.

    The test must remove what it creates; teardown removes any leftover and fails the test, so
    a leak is caught where it happens rather than in /dev/shm after the run.
    """
    from shm.inspect import clean
    from shm.segment import list_fifos, list_segments, list_semaphores

    name = f"t{os.getpid()}x{uuid.uuid4().hex[:8]}"
    yield name
    left = list_segments(name) + list_semaphores(name) + list_fifos(name)
    if left:
        clean(name, force=True)
        pytest.fail(f"test left shared memory behind: {left}")



@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; every one is killed and reaped at teardown."""
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdout, p.stderr):
            if f:
                f.close()


@pytest.fixture(autouse=True)
def _starting_a_process_needs_the_proc_mark(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a process must be marked ``proc`` (``-m "not proc"`` then runs in-process only)."""
    if request.node.get_closest_marker("proc") is not None:
        return
    import multiprocessing.process

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process but is not marked proc")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
