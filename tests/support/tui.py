"""Helpers for TUI tests: run a coroutine, wait in the app, read panels and the screen as text."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from rich.console import Console
from textual.widgets import DataTable

from tui.app import B25App


def run(coro) -> None:
    asyncio.run(coro)


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the app run until ``cond()`` holds (condition polling, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {cond}")
        await pilot.pause(0.02)


def rows(table) -> list[list[str]]:
    """A panel's rows as cell text (TextTable panels or DataTables)."""
    if hasattr(table, "plain_rows"):
        return table.plain_rows()
    assert isinstance(table, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def screen_text(app: B25App) -> str:
    """The screen as plain text (what a terminal shows, without colours)."""
    w, h = app.size
    console = Console(width=w, height=h, file=io.StringIO(), record=True, force_terminal=True, color_system=None,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()
