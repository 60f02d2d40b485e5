"""Fixtures for strategy tests: plugin modules written into a temporary directory on sys.path."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


class PluginDir:
    """Writes strategy modules under unique names, so tests never share a sys.modules entry."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []

    def module(self, source: str, name: str | None = None) -> str:
        name = name or f"tplug_{uuid.uuid4().hex[:10]}"
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        if name not in self.names:
            self.names.append(name)
        return name


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginDir]:
    monkeypatch.syspath_prepend(str(tmp_path))
    d = PluginDir(tmp_path)
    yield d
    for n in d.names:
        sys.modules.pop(n, None)


Writer = Callable[[str], str]
