"""``b25 report`` as a subprocess on a journal file with a deployment config: the live case's
sources (config, exchangeInfo file, no running instance: marks at the last fill price), the
self-contained HTML page, and clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from procs.execution.journal import Journal
from tests.support import ROOT
from tests.tools.report.test_metrics import journal

pytestmark = pytest.mark.proc

CONFIG = """
[deploy]
symbols = ["BTCUSDT", "ETHUSDT"]

[risk]
capital = "10000"

[[strategy.strategies]]
id = "mm"
class = "strategies.market_maker:MarketMaker"
symbols = ["BTCUSDT"]
num = 7

[[strategy.strategies]]
id = "taker"
class = "strategies.imbalance:ImbalanceTaker"
symbols = ["ETHUSDT"]
num = 8
"""


def _setup(tmp: Path) -> tuple[Path, Path, Path]:
    j = Journal(tmp / "execution.journal", fsync="never")
    for r in journal():
        j.append(r)
    j.close()
    (tmp / "b25.toml").write_text(CONFIG)
    info = json.loads((ROOT / "procs/exchange_sim/exchange_info_default.json").read_text())
    for s in info["symbols"]:
        if s["symbol"] == "BTCUSDT":
            s["pricePrecision"] = 1
        for f in s["filters"]:
            if s["symbol"] == "BTCUSDT" and f["filterType"] == "PRICE_FILTER":
                f["tickSize"] = "0.1"
    (tmp / "info.json").write_text(json.dumps(info))
    return tmp / "execution.journal", tmp / "b25.toml", tmp / "info.json"


def _report(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "procs.cli", "report", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=120)


def test_report_when_journal_and_config_then_json_figures_text_and_a_self_contained_page(tmp_path: Path) -> None:
    jpath, cfg, info = _setup(tmp_path)
    base = ("--journal", jpath, "--config", cfg, "--exchange-info", info, "--instance", "nosuchinstance")
    r = _report(*base, "--json", "--html", tmp_path / "html")
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    # no running instance: each symbol is marked at its last fill (BTC 60050, ETH 3000)
    assert rep["mark_source"] == "last fill price" and rep["marks"] == {"BTCUSDT": 60050.0, "ETHUSDT": 3000.0}
    assert rep["source"] == "live" and rep["capital"] == 10000.0
    assert rep["strategies"]["mm"]["net_pnl"] == -0.076 and rep["strategies"]["taker"]["net_pnl"] == -1.2
    assert rep["total"]["net_pnl"] == -1.276 and rep["total"]["fills"] == 5
    page = (tmp_path / "html" / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == 5  # equity, drawdown, daily P&L, position, latency
    assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", page), "the page must load nothing from elsewhere"
    assert "post_only" in page and "max_position" in page
    text = _report(*base, "--from", "2024-08-09T00:00:00Z")
    assert text.returncode == 0, text.stderr.decode()
    lines = text.stdout.decode().splitlines()
    assert lines[0].startswith("report 2024-08-09T00:00:00.000Z .. 2024-08-09T00:01:10.000Z")
    assert any(line.startswith("strategy mm") for line in lines)
    assert not any(line.startswith("strategy taker") for line in lines)  # no taker record after midnight


def test_report_when_inputs_are_wrong_then_exit_2_saying_what(tmp_path: Path) -> None:
    jpath, cfg, info = _setup(tmp_path)
    r = _report("--journal", tmp_path / "nope.journal", "--config", cfg, "--exchange-info", info)
    assert r.returncode == 2 and b"journal not found" in r.stderr
    r = _report("--journal", jpath, "--config", cfg, "--exchange-info", tmp_path / "missing.json")
    assert r.returncode == 2 and b"--exchange-info" in r.stderr
    r = _report("--run", tmp_path / "html")
    assert r.returncode == 2 and b"neither session.json nor b25.toml" in r.stderr
    r = _report("--journal", jpath, "--config", cfg, "--exchange-info", info, "--from", "yesterday")
    assert r.returncode == 2 and b"not a time" in r.stderr
