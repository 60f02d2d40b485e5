"""The Recorder end to end: market_data records a live session against the simulator, and the
files are read back by ``b25 book`` and ``b25 bars``. The rebuilt book equals every book
market_data published on ``md.book``, and the bars equal bars made from the simulator's own log of
the trades it sent (``GET /sim/trades``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from procs.core import messages as M
from procs.core.instruments import int_to_decimal
from procs.core.registry import MD_BOOK
from procs.monitor.shmview import RingView
from procs.tools.bars import compute_bars
from procs.tools.stack import Stack
from tests.support import ROOT
from tests.support.bars import assert_same_bars, reference_bars

pytestmark = pytest.mark.proc

LEVELS = 5


def _post(stack: Stack, path: str) -> None:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{stack.rest_url}{path}", data=b"", method="POST"),
                                timeout=5) as r:
        r.read()


def _levels(rec: np.void, side: str, n: int, price_scale: int, qty_scale: int) -> list[list[Decimal]]:
    k = min(n, int(rec[f"n_{side}s"]))
    return [[Decimal(int_to_decimal(int(rec[f"{side}_px"][i]), price_scale)),
             Decimal(int_to_decimal(int(rec[f"{side}_qty"][i]), qty_scale))] for i in range(k)]


def test_recorder_when_a_live_session_is_recorded_then_book_and_bars_read_it_back(instance: str,
                                                                                   tmp_path: Path) -> None:
    overrides = {"sim": {"start_paused": True, "generator": {"msg_rate": 300, "trade_prob": 0.3}},
                 "market_data": {"recorder": {"enabled": True}}, "strategy": {"strategies": []}}
    stack = Stack(tmp_path, procs=("exchange_sim", "market_data"), instance=instance, overrides=overrides)
    published: list = []
    with stack:
        from procs.core.deploy import depth as configured_depth

        depth = configured_depth(str(stack.config_path))
        info = stack.venue().info(attempts=1).instruments
        # the market starts once market_data listens: the recording holds the whole session
        stack.wait_for(lambda: sum(stack.sim_get("/sim/stats")["subscriptions"].values()) >= 4,
                       "market_data subscribed", timeout=30)
        view = RingView(instance, MD_BOOK, M.book_update_dtype(depth))
        _post(stack, "/sim/resume")
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline:
            published.extend(view.poll(limit=4096, history=4095))
            time.sleep(0.05)
        _post(stack, "/sim/pause")
        time.sleep(1.0)  # the last frames through market_data
        published.extend(view.poll(limit=4096, history=4095))
        assert view.lost == 0
        view.close()
        trades = stack.sim_get("/sim/trades")
        syms = list(stack.symbols)
        stack.popen["market_data"].terminate()  # a clean stop closes the recorder's file
        assert stack.popen["market_data"].wait(30) == 0
    files = sorted((stack.run_dir / "record").glob(f"{instance}_md_*.gz"))
    assert files and len(published) > 300 and len(trades) > 50

    # b25 book on the recording: the book after every published update, level for level
    r = subprocess.run([sys.executable, "-m", "procs.cli", "book", *map(str, files), "--depth", str(LEVELS)],
                       cwd=ROOT, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    rebuilt = {}
    for line in r.stdout.decode().splitlines():
        d = json.loads(line)
        rebuilt[(d["symbol"], d["u"])] = ([[Decimal(p), Decimal(q)] for p, q in d["bids"]],
                                          [[Decimal(p), Decimal(q)] for p, q in d["asks"]])
    checked = 0
    for rec in published:
        if int(rec["flags"]) & M.BOOK_RESYNCING:
            continue
        sym = syms[int(rec["symbol_id"])]
        ins = info[sym]
        key = (sym, int(rec["update_id"]))
        if int(rec["flags"]) & M.BOOK_SNAPSHOT and key not in rebuilt:
            continue  # a snapshot with no buffered diff after it: b25 book prints diffs only
        want = (_levels(rec, "bid", LEVELS, ins.price_scale, ins.qty_scale),
                _levels(rec, "ask", LEVELS, ins.price_scale, ins.qty_scale))
        assert rebuilt.get(key) == want, f"{key}: rebuilt {rebuilt.get(key)} published {want}"
        checked += 1
    assert checked >= len(published) - 2 * len(syms)

    # b25 bars on the recording = bars of the simulator's own trade log
    log = [{"e": "trade", **t} for t in trades]
    for interval in ("1s", "1m"):
        assert_same_bars(compute_bars(files, interval).rows(), reference_bars(log, interval), f"recorder {interval}")
