"""The portfolio tab's account panel over a risk.state the real risk engine wrote (a reconciliation
with the simulator's brackets, fills, the exchange's mark on one symbol and the mid on the other).

Regenerate the picture in docs/ after an intended change (and look at it):
    B25_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/tui/test_account.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from procs.core import messages as M
from procs.exchange_sim.trading.settings import brackets
from procs.risk.config import RiskConfig, SymbolLimits
from procs.risk.engine import ReconcileResult, RiskEngine
from procs.venue.binance.account import _brackets, margin_tiers
from tests.support.tui import run, screen_text, until
from tests.support.tui_world import SYMBOLS, instruments
from tests.tui.test_session import _history
from tui.account import AccountPanel
from tui.session import HistoryView

DOCS = Path(__file__).resolve().parents[2] / "docs"
UPDATE = os.environ.get("B25_UPDATE_GOLDEN") == "1"


def _engine_state(world, **cfg: object) -> RiskEngine:
    ins = instruments()
    btc, eth = ins["BTCUSDT"], ins["ETHUSDT"]
    eng = RiskEngine(RiskConfig(holds_file="-", **cfg), [ins[s] for s in SYMBOLS], lambda *a: None, lambda why: True)
    tiers = margin_tiers(_brackets.decode(msgspec.json.encode([{"symbol": s, "brackets": brackets()} for s in SYMBOLS])))
    eng.on_reconcile(ReconcileResult(ok=True, wallet_balance="20000", tiers=tiers))
    eng.on_fill(1, 0, M.BUY, btc.qty_to_lots("1.5"), btc.price_to_ticks("60000"), 0)
    eng.on_fill(2, 1, M.SELL, eth.qty_to_lots("4"), eth.price_to_ticks("3000"), 0)
    now = time.monotonic_ns()
    eng.on_venue_mark(0, btc.price_to_ticks("59500"), now)
    eng.on_book(1, eth.price_to_ticks("3010"), eth.price_to_ticks("3010.2"), now)
    eng.tick(now)
    w = world.risk
    w.begin()
    eng.write_state(w.records, now)
    w.end()
    return eng


def test_portfolio_tab_when_risk_publishes_the_account_then_margin_leverage_and_liquidation_shown(
        world, make_app, tmp_path):
    world.standard()
    eng = _engine_state(world, max_margin_ratio="0.2", capital="20000", default=SymbolLimits(max_leverage="5"))
    _history(tmp_path / "hist")
    app = make_app()
    app.source.history = HistoryView(tmp_path / "hist", every_s=0.0)
    acct = eng.account
    assert acct is not None and acct.margin_ratio is not None

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("2")
            panel = app.query_one(AccountPanel)
            await until(pilot, lambda: "margin ratio" in screen_text(app))
            await pilot.pause(0.3)
            text = screen_text(app)
            assert f"wallet {float(acct.wallet):,.2f}" in text
            assert f"margin ratio {float(acct.margin_ratio) * 100:.2f}% / 20%" in text
            assert f"leverage {float(acct.leverage):.2f}x" in text
            btc = acct.positions[0]
            assert f"{float(btc.leverage):.2f}x" in text and f"{float(btc.distance_pct):.1f}" in text
            lines = [ln for ln in str(panel.render()).splitlines() if ln.startswith(("BTCUSDT", "ETHUSDT"))]
            assert "mark" in lines[0] and "mid" in lines[1]  # where each mark comes from
            assert "mm" in text and "taker" in text  # per-strategy P&L and positions (risk's history)
            if UPDATE:
                (DOCS / "tui-portfolio-160x40.svg").write_text(app.export_screenshot(title="b25 tui: portfolio"))

    run(go())
