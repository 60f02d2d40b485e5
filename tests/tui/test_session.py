"""The portfolio tab's session chart and strategy table over risk's P&L history files.

Regenerate the picture in docs/ after an intended change (and look at it):
    B25_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/tui/test_session.py
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from procs.risk.history import ACCOUNT, DayFiles
from tests.support.tui import rows, run, screen_text, until
from tui.session import HistoryView, SessionChart, StrategyPnlPanel

DOCS = Path(__file__).resolve().parents[2] / "docs"
UPDATE = os.environ.get("B25_UPDATE_GOLDEN") == "1"


def _history(folder: Path, minutes: int = 30) -> None:
    """A half hour of samples: mm drifts up with noise, taker loses a little, then recovers."""
    files = DayFiles(folder, seal_s=600)
    start = (int(time.time()) - minutes * 60) * 1000
    for i in range(minutes * 60):
        ts = start + i * 1000
        mm = 0.004 * i + 3 * math.sin(i / 90)
        taker = -2.5 * math.sin(i / 400) - 0.001 * i
        files.append([
            (ts, "mm", "BTCUSDT", 0.004, mm - 1, 1.5, 0.5, mm, 2, 60000.0, None, None),
            (ts, "taker", "ETHUSDT", -0.2, taker, 0.0, 0.1, taker, 0, 3000.0, None, None),
            (ts, ACCOUNT, ACCOUNT, None, mm + taker - 1, 1.5, 0.6, mm + taker, 2, None, 100000 + mm + taker, 0.0),
        ])
    files.seal()


def test_portfolio_tab_when_history_files_exist_then_the_session_chart_and_strategy_rows(world, make_app, tmp_path):
    world.standard()
    _history(tmp_path / "hist")
    app = make_app()
    app.source.history = HistoryView(tmp_path / "hist", every_s=0.0)

    async def go():
        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.press("2")
            table = app.query_one(StrategyPnlPanel)
            await until(pilot, lambda: table.row_count == 3 and app.query_one(SessionChart)._drawn > 0)
            await pilot.pause(0.2)
            got = rows(table)
            assert [r[:2] for r in got] == [["mm", "BTCUSDT"], ["taker", "ETHUSDT"], ["account", "all"]]
            last = 1799
            mm = 0.004 * last + 3 * math.sin(last / 90)
            assert got[0][2] == f"{mm:,.2f}" and got[0][7] == "2" and got[0][6] == "0.004"
            text = screen_text(app)
            assert "session P&L" in text and "net P&L (quote)" in text
            assert "account" in text and "mm" in text  # the chart's legend
            if UPDATE:
                (DOCS / "tui-portfolio-120x34.svg").write_text(app.export_screenshot(title="b25 tui: portfolio"))

    run(go())


def test_session_panels_when_no_history_then_they_say_so(world, make_app, tmp_path):
    world.standard()
    app = make_app()
    app.source.history = HistoryView(tmp_path / "none", every_s=0.0)

    async def go():
        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.press("2")
            await until(pilot, lambda: app.query_one(SessionChart)._drawn >= 0)
            await pilot.pause(0.2)
            assert "no P&L history yet" in screen_text(app)
            assert app.query_one(StrategyPnlPanel).row_count == 0

    run(go())
