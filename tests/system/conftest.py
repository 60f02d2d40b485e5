"""System tests: every real process on exchange_sim, started through ``procs.tools.stack.Stack``.

Fixtures: ``make_stack`` (a started Stack on the test's shm instance, stopped at teardown) and
``plugins`` (writes strategy modules into a directory the stack puts on PYTHONPATH); the helpers
are in ``tests.support.system``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from procs.tools.stack import Stack


@pytest.fixture
def plugins(tmp_path: Path) -> Callable[[str, str], Path]:
    """``plugins(module_name, source)`` writes a strategy module the stack can import."""
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)

    def write(name: str, source: str) -> Path:
        p = d / f"{name}.py"
        p.write_text(textwrap.dedent(source))
        return p

    write.dir = d  # type: ignore[attr-defined]
    return write


@pytest.fixture
def make_stack(instance: str, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(**Stack kwargs)``: a started stack on this test's instance; stopped at teardown."""
    stacks: list[Stack] = []

    def make(**kw: Any) -> Stack:
        kw.setdefault("pythonpath", [tmp_path / "plugins"])
        s = Stack(tmp_path, instance=instance, **kw)
        stacks.append(s)
        return s.start()

    yield make
    for s in reversed(stacks):
        codes = s.stop()
        assert all(c == 0 for c in codes.values()), f"unclean exit: {codes}"
