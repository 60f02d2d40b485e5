"""Parity: ``b25 backtest`` (one process) gives exactly what ``b25 replay --lockstep`` (the real
processes) gives on the same real recording, strategy, params and latency model: the same orders
(sequence, price, quantity, exchange time), fills, fees and P&L, i.e. the same journal hash,
for the market maker and the taker, with the default model (the recording's own feed latency,
lognormal order legs) and with zero latency."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs.tools.backtest.run import BacktestOptions, backtest
from procs.tools.replay.report import build_summary, deterministic_part
from procs.tools.replay.run import ReplayOptions, replay

pytestmark = pytest.mark.proc  # the lockstep side starts the real processes

RECORDING = "hftbacktest-binance/usdm/btcusdt_20240718.gz"  # 11414 frames, 3 minutes of BTCUSDT
STRATEGIES = {  # as tests/tools/replay/test_replay.py pins them
    "market_maker": ("strategies.market_maker:MarketMaker",
                     {"quote_qty": "0.001", "max_position": "0.01", "price_ref": "microprice", "spread_ticks": 10,
                      "skew_ticks": 5.0, "requote_ticks": 2}),
    "imbalance": ("strategies.imbalance:ImbalanceTaker", {"max_position": "0.02", "cooldown_ms": 200}),
}


@pytest.mark.parametrize("latency", ["default", "constant 0"])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_backtest_when_same_inputs_as_lockstep_then_the_same_orders_fills_and_pnl(
        real_data: Path, instance: str, name: str, latency: str) -> None:
    cls, params = STRATEGIES[name]
    data = [str(real_data / RECORDING)]
    res = replay(ReplayOptions(data=data, strategy=cls, params=params, latency=latency, instance=instance))
    assert all(rc == 0 for rc in res.exit_codes.values()), res.exit_codes
    lockstep = deterministic_part(build_summary(res)[0])
    fast = deterministic_part(build_summary(backtest(BacktestOptions(data=data, strategy=cls, params=params,
                                                                     latency=latency)))[0])
    assert lockstep.pop("mode") == "lockstep" and fast.pop("mode") == "backtest"
    assert lockstep["fills"] > 0, "the strategy should trade on this recording"
    assert fast == lockstep
