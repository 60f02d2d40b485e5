"""Shared test fixtures: paths to the real recordings and per-test shm instance names."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"


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


def spawn(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    """Start ``python <args>`` in the repo root with the test's interpreter."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    if env:
        e.update(env)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=e, **kw)


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
