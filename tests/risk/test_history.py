"""The live P&L history's pieces without a process: what one sample holds (against the ledger by
hand), the day files (readable at every moment, sealed by time and at midnight), a writer killed
mid-day (its tail sealed by the next one, nothing twice), and the readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.risk.history import ACCOUNT, DayFiles, OpenOrders, downsample, read_history, sample_rows
from procs.risk.ledger import Ledger

BTC = Instrument(symbol="BTCUSDT", price_scale=1, qty_scale=3)
ETH = Instrument(symbol="ETHUSDT", price_scale=2, qty_scale=3)
T = 1723161480_000  # 2024-08-08T23:58:00Z, ms


def _events(*rows: tuple[int, int, int, bytes]) -> np.ndarray:
    out = np.zeros(len(rows), M.OrderEvent)
    for i, (kind, st, sym, cid) in enumerate(rows):
        out[i]["kind"], out[i]["strategy_id"], out[i]["symbol_id"], out[i]["client_order_id"] = kind, st, sym, cid
    return out


def test_sample_when_two_strategies_trade_then_rows_hold_the_ledger_by_hand() -> None:
    led = Ledger([BTC, ETH], capital=10000 * 10**8)
    led.fill(7, 0, M.BUY, 2, 600000, 1_200_000)  # mm buys 0.002 BTC @ 60000.0, fee 0.012
    led.fill(8, 1, M.BUY, 1000, 300000, 120_000_000)  # taker buys 1 ETH @ 3000.00, fee 1.2
    led.set_mark(0, 600100)
    led.set_mark(1, 299000)
    led.update_peaks()
    orders = OpenOrders()
    orders.on_batch(_events((M.ORDER_ACCEPTED, 7, 0, b"a1"), (M.ORDER_ACCEPTED, 7, 0, b"a2"),
                            (M.ORDER_SENT, 8, 1, b"b1"), (M.ORDER_CANCELED, 7, 0, b"a2"),
                            (M.ORDER_ACCEPTED, 9, 0, b"c1"), (M.ORDER_FILLED, 9, 0, b"c1")))
    rows = {(r[1], r[2]): r for r in sample_rows(led, orders, {7: "mm", 8: "taker"}, T)}
    assert set(rows) == {("mm", "BTCUSDT"), ("taker", "ETHUSDT"), (ACCOUNT, ACCOUNT)}  # c1 closed: no row
    # ts, strategy, symbol, position, realized, unrealized, fees, net, open orders, mark, equity, drawdown
    assert rows[("mm", "BTCUSDT")] == (T, "mm", "BTCUSDT", 0.002, 0.0, 0.02, 0.012, 0.008, 1, 60010.0, None, None)
    assert rows[("taker", "ETHUSDT")] == (T, "taker", "ETHUSDT", 1.0, 0.0, -10.0, 1.2, -11.2, 1, 2990.0, None, None)
    # the account: equity = 10000 + 0.008 - 11.2; its peak never rose above the capital
    acct = rows[(ACCOUNT, ACCOUNT)]
    assert acct[3:9] == (None, 0.0, -9.98, 1.212, -11.192, 2) and acct[10] == pytest.approx(9988.808)
    assert acct[11] == pytest.approx(11.192)


def _sample(ts_ms: int, net: float) -> list[tuple]:
    return [(ts_ms, "mm", "BTCUSDT", 0.001, net, 0.0, 0.0, net, 1, 60000.0, None, None),
            (ts_ms, ACCOUNT, ACCOUNT, None, net, 0.0, 0.0, net, 1, None, 10000 + net, 0.0)]


def test_day_files_when_samples_come_then_readable_every_second_sealed_on_time_and_at_midnight(tmp_path: Path) -> None:
    files = DayFiles(tmp_path, seal_s=3600)
    for i in range(3):
        files.append(_sample(T + i * 1000, float(i)))
        tail = pq.read_table(tmp_path / "pnl-20240808.tail.parquet")
        assert tail.num_rows == 2 * (i + 1)  # a whole file after every sample
    assert not (tmp_path / "pnl-20240808.parquet").exists()
    files.seal()
    assert pq.ParquetFile(tmp_path / "pnl-20240808.parquet").num_row_groups == 1
    assert not (tmp_path / "pnl-20240808.tail.parquet").exists()
    files.append(_sample(T + 3000, 3.0))
    files.append(_sample(T + 120_000, 4.0))  # 2024-08-09T00:00:00Z: the 8th is sealed, the 9th begins
    day8 = pq.ParquetFile(tmp_path / "pnl-20240808.parquet")
    assert day8.num_row_groups == 2 and day8.metadata.num_rows == 8
    assert pq.read_table(tmp_path / "pnl-20240809.tail.parquet").num_rows == 2
    rows = read_history(tmp_path).to_pylist()
    assert [r["net_pnl"] for r in rows if r["strategy"] == "mm"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    only = read_history(tmp_path, T + 1000, T + 3001, strategy=ACCOUNT).to_pylist()
    assert [r["equity"] for r in only] == [10001.0, 10002.0, 10003.0]


def test_day_files_when_the_writer_is_killed_then_the_next_one_seals_its_tail_once(tmp_path: Path) -> None:
    files = DayFiles(tmp_path, seal_s=3600)
    for i in range(5):
        files.append(_sample(T + i * 1000, float(i)))
    files.seal()
    for i in range(5, 8):
        files.append(_sample(T + i * 1000, float(i)))
    # killed here: no seal, no close. The kill could also fall between the day file's rename and the
    # tail's removal: a copy of the tail's first sample already in the day file shows that case
    kept_tail = (tmp_path / "pnl-20240808.tail.parquet").read_bytes()
    files.tail = files.tail[:2]
    files.seal()
    (tmp_path / "pnl-20240808.tail.parquet").write_bytes(kept_tail)
    del files
    DayFiles(tmp_path)  # the next writer's start
    assert not (tmp_path / "pnl-20240808.tail.parquet").exists()
    mm = [r["net_pnl"] for r in read_history(tmp_path).to_pylist() if r["strategy"] == "mm"]
    assert mm == [float(i) for i in range(8)]  # every sample, once


def test_downsample_when_a_step_is_given_then_the_last_row_of_each_bucket() -> None:
    rows = [{"ts": T + i * 1000, "strategy": "mm", "symbol": "BTCUSDT", "net_pnl": float(i)} for i in range(130)]
    got = downsample(rows, 60_000)
    assert [(r["ts"], r["net_pnl"]) for r in got] == [(T, 59.0), (T + 60_000, 119.0), (T + 120_000, 129.0)]
