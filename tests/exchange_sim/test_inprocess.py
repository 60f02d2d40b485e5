"""The in-process exchange of ``b25 backtest`` on a real recording: a compiled quiet run leaves the
exchange exactly as frame-by-frame application does, and the watched-level filter agrees with
the matching engine's own ``watches`` on every level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO
from procs.exchange_sim.eventclock import EventQueue
from procs.exchange_sim.inprocess import InProcessExchange
from procs.exchange_sim.latency import LatencyModel, schedule
from procs.exchange_sim.market import recorded as R
from procs.exchange_sim.market.fast_kernels import watched_levels
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.matching import SymbolEngine

RECORDING = "hftbacktest-binance/usdm/btcusdt_20230404.dat.gz"  # depth, trades and mark prices


@pytest.fixture
def recording(real_data: Path) -> R.Recording:
    return R.decode([str(real_data / RECORDING)], DEFAULT_EXCHANGE_INFO)


def _exchange(rec: R.Recording) -> tuple[InProcessExchange, np.ndarray]:
    model = LatencyModel.parse("constant 0")
    x, _r = schedule(model, rec.recv, rec.exch)
    return InProcessExchange(rec, TradingConfig(), model, EventQueue(), lambda: 0), x


def _state(ex: InProcessExchange) -> tuple:
    mk = ex.market
    fb = mk.fast[0]
    return (fb.bid_levels(), fb.ask_levels(), fb.crossed, list(mk.last_u), mk.sim_time_ms, list(mk.marks),
            dict(ex.rest_handler.venue.last_price), ex.depth_events, ex.trades_heard)


def test_quiet_run_when_idle_then_the_exchange_ends_as_frame_by_frame(recording: R.Recording) -> None:
    rec = recording
    assert rec.counts["depth"] > 1000 and rec.counts["trade"] > 1000 and rec.counts["mark"] > 10
    one, x = _exchange(rec)
    batched, _ = _exchange(rec)
    assert batched.idle()
    i = books = runs = 0
    while i < rec.frames:
        nxt, last_book, applied, _taken = batched.quiet_run(i, 1 << 62, x)
        last = -1
        for j in range(i, max(nxt, i + 1)):
            if one.apply(j) == 1:
                books += 1
                last = j
        if nxt == i:  # a snapshot or the first diff after one: both take it frame by frame
            batched.apply(i)
            nxt = i + 1
        else:
            runs += 1
            assert (last_book == last and applied > 0) or (last_book == -1 and applied == 0)
        i = nxt
        assert _state(one) == _state(batched), f"differs after frames up to {i}"
    assert runs >= 1
    assert books > 1000


def test_quiet_run_when_a_time_limit_then_it_stops_before_the_first_frame_at_it(recording: R.Recording) -> None:
    ex, x = _exchange(recording)
    kind = recording.kind
    limit = int(x[recording.frames // 2])
    i = runs = 0
    while True:
        nxt = ex.quiet_run(i, limit, x)[0]
        if nxt > i:
            runs += 1
            taken = kind[i:nxt] != R.INERT
            assert (x[i:nxt][taken] < limit).all(), "a frame at or after the limit was taken"
            i = nxt
            continue
        if x[i] >= limit:  # stopped by the limit: done
            break
        ex.apply(i)  # a snapshot's first diff, or a gap in the recording: frame by frame
        i += 1
    assert runs >= 1 and 0 < i <= recording.frames // 2 and x[i] >= limit


def test_watched_levels_when_random_levels_then_the_same_as_the_matching_engines_watches() -> None:
    eng = SymbolEngine("BTCUSDT", None, None)  # type: ignore[arg-type]  # watches reads only its own state
    rng = np.random.default_rng(7)
    for _ in range(200):
        eng.known[True] = {int(p): 1 for p in rng.integers(1000, 1100, rng.integers(0, 4))}
        eng.known[False] = {int(p): 1 for p in rng.integers(1000, 1100, rng.integers(0, 4))}
        eng.best = {True: None if rng.random() < 0.3 else int(rng.integers(1000, 1100)),
                    False: None if rng.random() < 0.3 else int(rng.integers(1000, 1100))}
        nb, na = int(rng.integers(0, 30)), int(rng.integers(0, 30))
        px = rng.integers(990, 1110, nb + na + 3).astype(np.int64)
        qty = rng.integers(0, 3, nb + na + 3).astype(np.int64)
        out = np.empty(nb + na, np.int64)
        kb, ka = eng.known[True], eng.known[False]
        bb, ba = eng.best[True], eng.best[False]
        m = watched_levels(px, qty, 3, nb, na, np.array(list(kb), np.int64), np.array(list(ka), np.int64),
                           -1 if bb is None else bb, -1 if ba is None else ba, out)
        want = [j for j in range(nb + na) if eng.watches(j < nb, int(px[3 + j]), int(qty[3 + j]))]
        assert out[:m].tolist() == want
