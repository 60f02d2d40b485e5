"""Layout snapshot: the market tab at 80x24 over a fixed test-filled instance, as plain text,
compared with the checked-in golden file.

Regenerate after an intended layout change (and review the diff):
    B25_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/tui/test_snapshot.py
which rewrites tests/tui/golden_market_80x24.txt and the README's tui/screenshot.svg (120x34).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.tui import rows, run, screen_text, until
from tui.panels import BookLadder, OrdersPanel, TradesTape

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden_market_80x24.txt"
SVG = HERE.parents[1] / "tui" / "screenshot.svg"
UPDATE = os.environ.get("B25_UPDATE_GOLDEN") == "1"


async def _settled(app, pilot) -> None:
    await until(pilot, lambda: app.query_one(BookLadder).row_count == 10
                and app.query_one(TradesTape).row_count == 6 and len(rows(app.query_one(OrdersPanel))) == 4)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)


def test_market_tab_when_rendered_at_80x24_then_matches_golden_text(world, make_app):
    world.standard()
    app = make_app()
    got: dict[str, str] = {}

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await _settled(app, pilot)
            got["text"] = screen_text(app)

    run(go())
    if UPDATE:
        GOLDEN.write_text(got["text"])
        big = make_app()

        async def shot():
            async with big.run_test(size=(120, 34)) as pilot:
                await _settled(big, pilot)
                SVG.write_text(big.export_screenshot(title="b25 tui"))

        run(shot())
    assert got["text"] == GOLDEN.read_text(), (
        "TUI layout changed; if intended, regenerate with B25_UPDATE_GOLDEN=1 (see this module's docstring)")
