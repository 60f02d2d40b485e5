"""Fixtures for TUI tests: a test-filled instance and the app over it (no b25 process runs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.tui_world import DEPTH, SYMBOLS, World, instruments
from tui.app import B25App
from tui.commands import Commands, TokenGate
from tui.source import ShmSource


@pytest.fixture
def world(instance: str) -> Iterator[World]:
    w = World(instance)
    yield w
    w.close()


@pytest.fixture
def make_app(instance: str) -> Iterator[Callable[[], B25App]]:
    made: list[tuple[ShmSource, Commands]] = []

    def make(token_gate: TokenGate | None = None) -> B25App:
        src = ShmSource(instance, SYMBOLS, instruments(), DEPTH, stale_after_s=2.0)
        cmd = Commands(instance, DEPTH, operator="test")
        made.append((src, cmd))
        return B25App(src, cmd, refresh_s=0.1, title="b25 test", token_gate=token_gate)

    yield make
    for src, cmd in made:
        cmd.close(unlink=True)  # the TUI leaves orders.manual for execution; the test removes it
        src.close()
