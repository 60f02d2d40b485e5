"""The strategy roster: ids for ring numbers and the configured strategies, from the config file,
re-read when it changes; shown in the strategy tab."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.tui import rows, run, until
from tui.roster import StrategyRoster

CONFIG = """
[strategy]
[[strategy.strategies]]
id = "mm_btc"
class = "strategies.market_maker:MarketMaker"
symbols = ["BTCUSDT"]
num = 1
params = { quote_qty = "0.002", spread_ticks = 30 }

[[strategy.strategies]]
id = "imb_eth"
class = "strategies.imbalance:ImbalanceTaker"
symbols = ["ETHUSDT"]
enabled = false
"""


def _write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))  # a visible mtime change


def test_roster_when_config_read_then_names_and_rows(tmp_path: Path) -> None:
    cfg = tmp_path / "b25.toml"
    _write(cfg, CONFIG, 0)
    r = StrategyRoster(cfg)
    assert r.error == ""
    assert r.name(1) == "mm_btc" and r.name(999) == "999"
    assert r.rows() == [("mm_btc", "on", "MarketMaker", "BTCUSDT", "quote_qty=0.002, spread_ticks=30"),
                        ("imb_eth", "off", "ImbalanceTaker", "ETHUSDT", "")]


def test_roster_when_file_edited_then_reread_and_bad_edit_keeps_last_good(tmp_path: Path) -> None:
    cfg = tmp_path / "b25.toml"
    _write(cfg, CONFIG, 0)
    r = StrategyRoster(cfg)
    assert r.refresh() is False  # unchanged: not re-parsed
    _write(cfg, CONFIG.replace("spread_ticks = 30", "spread_ticks = 40"), 1)
    assert r.refresh() is True and "spread_ticks=40" in r.rows()[0][4]
    _write(cfg, CONFIG.replace('class = "strategies.market_maker:MarketMaker"', 'class = "nocolon"'), 2)
    assert r.refresh() is False
    assert "module:Class" in r.error and r.rows()[0][0] == "mm_btc"  # the last good roster stays


def test_roster_when_no_config_then_numbers_shown(tmp_path: Path) -> None:
    r = StrategyRoster(None)
    assert r.name(7) == "7" and r.rows() == []
    missing = StrategyRoster(tmp_path / "absent.toml")
    assert "cannot read" in missing.error


def test_strategy_tab_when_roster_set_then_signals_named_and_config_listed(world, make_app, tmp_path: Path) -> None:
    world.standard()
    world.beat()
    cfg = tmp_path / "b25.toml"
    _write(cfg, CONFIG, 0)
    app = make_app()
    app.source.roster = StrategyRoster(cfg)

    async def go():
        from tui.panels import StrategiesPanel, StrategyConfigPanel

        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.press("3")
            sig = app.query_one(StrategiesPanel)
            await until(pilot, lambda: sig.row_count == 1)
            assert rows(sig)[0][1:3] == ["mm_btc", "BTCUSDT"]
            conf = app.query_one(StrategyConfigPanel)
            await until(pilot, lambda: conf.row_count == 2)
            assert rows(conf)[0][:4] == ["mm_btc", "on", "MarketMaker", "BTCUSDT"]
            assert rows(conf)[1][:2] == ["imb_eth", "off"]

    run(go())
