"""A live session against the simulator, looked at afterwards: risk's P&L history (written every
second, served by the monitor, surviving a SIGKILL of risk), the monitor's bars from the recorder's
files, and ``b25 report`` on the live journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from procs.core import messages as M
from procs.execution.journal import read_journal
from procs.risk.history import ACCOUNT, read_history
from procs.tools.bars import compute_bars
from procs.tools.stack import PIPELINE
from tests.support import ROOT
from tests.support.system import NO_STRATEGIES

pytestmark = pytest.mark.proc

MM = {"id": "mm", "class": "strategies.market_maker:MarketMaker", "symbols": ["BTCUSDT"],
      "params": {"quote_qty": "0.001", "max_position": "0.005", "spread_ticks": 2, "requote_ticks": 1}}
OVERRIDES = {**NO_STRATEGIES, "risk": {"history": {"interval_s": 1.0, "seal_s": 3.0}},
             "market_data": {"recorder": {"enabled": True}}}
FILLS = (M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _fills(stack) -> int:
    return sum(1 for r in read_journal(stack.journal_path)[0] if r.kind in FILLS)


def _rows(folder: Path, **kw) -> list[dict]:
    rows = read_history(folder, **kw).to_pylist()
    for r in rows:
        r["ts"] = int(r["ts"].timestamp() * 1000)
    return rows


def test_live_session_when_trading_then_history_bars_and_report_agree_and_history_survives_sigkill(make_stack):
    stack = make_stack(procs=(*PIPELINE, "monitor"), overrides=OVERRIDES, strategies=[MM])
    folder = stack.run_dir / "history" / stack.instance
    mon = f"http://127.0.0.1:{stack.monitor_port}"
    stack.wait_for(lambda: _fills(stack) >= 3, "three fills of the market maker", timeout=120)
    stack.wait_for(lambda: len({r["ts"] for r in _rows(folder, strategy="mm")}) >= 4, "four samples of mm", timeout=60)

    # -- the monitor answers with what the files hold (a span that is over: its rows are settled)
    cutoff = _rows(folder, strategy=ACCOUNT)[-2]["ts"]  # samples before the one before the last are settled
    api = _get(f"{mon}/api/history/pnl?from=0&to={cutoff}")
    assert api["rows"] == _rows(folder, start_ms=0, end_ms=cutoff)
    assert len({r["ts"] for r in api["rows"]}) >= 3
    assert {r["strategy"] for r in api["rows"]} == {"mm", ACCOUNT}
    stepped = _get(f"{mon}/api/history/pnl?strategy=mm&from=0&to={cutoff}&step=1m")["rows"]
    assert stepped and all(r["strategy"] == "mm" and r["ts"] % 60_000 == 0 for r in stepped)
    bad = urllib.request.Request(f"{mon}/api/history/pnl?from=yesterday")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400 and json.loads(err.value.read())["field"] == "from"
    def recorded() -> list[Path]:
        return sorted((stack.run_dir / "record").glob(f"{stack.instance}_md_*.gz"))

    def settled() -> int:  # the recorder hands its batches over at least every second
        return int(time.time() * 1000) - 5000

    stack.wait_for(lambda: compute_bars(recorded(), "1s", {"BTCUSDT"}).rows(None, settled()),
                   "recorded trades older than 5 s", timeout=60, every=0.5)
    cutoff = settled()
    bars = _get(f"{mon}/api/history/bars?symbol=BTCUSDT&interval=1s&to={cutoff}")
    files = recorded()
    assert bars["files"] == [f.name for f in files] and bars["count"] > 0
    assert bars["bars"] == compute_bars(files, "1s", {"BTCUSDT"}).rows(None, cutoff)

    # -- b25 report on the live journal, once the strategy has stopped (its quotes cancelled)
    stack.popen["strategy"].terminate()
    assert stack.popen["strategy"].wait(30) == 0
    stack.wait_for(lambda: not stack.open_orders("BTCUSDT"), "the quotes cancelled", timeout=30)
    time.sleep(2.5)  # two more samples after the last fill
    r = subprocess.run([sys.executable, "-m", "procs.cli", "report", "--run", str(stack.run_dir), "--instance",
                        stack.instance, "--json"], cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    rep = json.loads(r.stdout)
    recs = read_journal(stack.journal_path)[0]
    assert rep["source"] == "live" and rep["mark_source"] == "risk.state", (rep["marks"], r.stderr.decode())
    assert rep["capital"] == 100000.0
    total = rep["total"]
    assert total["fills"] == sum(1 for x in recs if x.kind in FILLS) >= 3
    assert total["orders_sent"] == len({x.cid for x in recs if x.kind == M.ORDER_SENT})
    assert total["order_to_ack_us"]["count"] == sum(1 for x in recs if x.kind == M.ORDER_ACCEPTED)
    assert total["maker_share"] == 1.0  # post-only quotes
    assert list(rep["strategies"]) == ["mm"] and list(rep["symbols"]) == ["BTCUSDT"]
    # risk's integer ledger (the history's last account row) and the report's exact decimals agree on
    # what fills fix: fees exactly (integer 1e-8 units both), realized to within the ledger's documented
    # rounding (procs/risk/ledger.py: a partial close rounds to the unit, < 1e-8, and to_e8 floors, < 1e-8)
    last = [x for x in _rows(folder, strategy=ACCOUNT)][-1]
    assert last["fees"] == pytest.approx(total["fees"], abs=1e-12)
    assert abs(last["realized"] - total["realized_pnl"]) < 2e-8 + 1e-12, (last["realized"], total["realized_pnl"])
    assert last["open_orders"] == 0

    # -- SIGKILL of the writer: what it wrote up to the second before is there, readable
    before = _rows(folder, strategy=ACCOUNT)
    risk_pid = stack.pid("risk")
    killed_ms = int(time.time() * 1000)
    os.kill(risk_pid, signal.SIGKILL)
    stack.popen["risk"].wait(10)
    after_kill = _rows(folder, strategy=ACCOUNT)
    assert after_kill[: len(before)] == before
    assert killed_ms - after_kill[-1]["ts"] <= 3000, "more than a few seconds lost"
    # a new risk seals the tail (if the kill left one) into the day file and goes on; no sample twice
    stack.start_proc("risk")
    stack.wait_running(["risk"])
    stack.wait_for(lambda: _rows(folder, strategy=ACCOUNT)[-1]["ts"] > killed_ms + 1000, "samples again", timeout=30)
    rows = _rows(folder)
    keys = [(x["ts"], x["strategy"], x["symbol"]) for x in rows]
    assert len(keys) == len(set(keys))
    assert [x for x in rows if x["strategy"] == ACCOUNT][: len(after_kill)] == after_kill
    day = sorted(p for p in folder.glob("pnl-*.parquet") if not p.name.endswith(".tail.parquet"))[-1]
    assert pq.ParquetFile(day).num_row_groups >= 2
