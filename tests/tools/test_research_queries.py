"""Every query in docs/analytics.md runs, with DuckDB and polars, on a converted real recording."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from procs.tools.bars import compute_bars
from procs.tools.convert import convert
from tests.support import REAL, ROOT

DOC = ROOT / "docs" / "analytics.md"
SRC = "hftbacktest-binance/usdm/btcusdt_20240808.gz"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real recordings not found at {REAL}")
    work = tmp_path_factory.mktemp("research")
    counts = convert([REAL / SRC], work / "data", depth=5)
    assert counts == {"books": 6547, "trades": 21313}
    return work


def test_every_sql_block_in_the_doc_runs_and_the_bars_query_equals_b25_bars(converted: Path) -> None:
    import duckdb

    blocks = _blocks("sql")
    assert len(blocks) == 4
    cwd = os.getcwd()
    os.chdir(converted)  # the doc's queries name data/...
    try:
        con = duckdb.connect()
        results = [con.execute(q).fetchall() for q in blocks]
    finally:
        os.chdir(cwd)
    for q, rows in zip(blocks, results, strict=True):
        assert rows, f"no rows from:\n{q}"
    ours = compute_bars([REAL / SRC], "1m").rows()
    bars = results[0]
    assert [(b["symbol"], b["open"], b["high"], b["low"], b["close"], b["trades"]) for b in ours] == \
        [(r[0], r[2], r[3], r[4], r[5], r[8]) for r in bars]
    for b, r in zip(ours, bars, strict=True):
        assert r[6] == pytest.approx(b["volume"]) and r[7] == pytest.approx(b["vwap"])
        assert r[9] == pytest.approx(b["buy_volume"]) and r[10] == pytest.approx(b["sell_volume"])
    spread = results[1]
    assert all(0.1 - 1e-9 <= row[1] <= row[2] for row in spread)  # never below one tick, mean <= widest


def test_the_polars_block_in_the_doc_runs(converted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = _blocks("python")
    cwd = os.getcwd()
    os.chdir(converted)
    try:
        exec(compile(block, str(DOC), "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "spread" in out and "61800.3" in out  # the first minute's open
