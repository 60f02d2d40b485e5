"""``b25 bars`` and ``b25 convert`` on every real recording, against independent computations.

The reference here shares no code with procs/: it reads the files line by line with ``json``,
keeps the trade events by their ``e`` field, and makes the bars with pandas (``groupby`` on the
trade time floored to the interval). DuckDB then computes the same bars from ``b25 convert``'s
Parquet, and the converted books are checked against the recorded ``@bookTicker`` events that
carry the same update id.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from procs.tools.bars import BarSet, compute_bars, interval_ms
from tests.support import ROOT
from tests.support.bars import assert_same_bars
from tests.support.bars import reference_bars as support_bars

RECORDINGS = [  # every recording in shared/data/real that carries Binance trades (one chain per entry)
    ["hftbacktest-binance/usdm/btcusdt_20240808.gz"],
    ["hftbacktest-binance/usdm/btcusdt_20240718.gz", "hftbacktest-binance/usdm/btcusdt_20240719.gz"],
    ["hftbacktest-binance/usdm/ethusdt_20240718.gz"],
    ["hftbacktest-binance/usdm/btcusdt_20230404.dat.gz"],
    ["hftbacktest-binance/spot/btcusdt_20240808.gz"],
    ["hftbacktest-binance/cm/btcusd_perp_20240808.gz"],
    ["cryptofeed-binance/BINANCE_FUTURES.ws.1.0"],
    ["cryptofeed-binance/BINANCE_DELIVERY.ws.1.0"],
    ["cryptofeed-binance/BINANCE.ws.1.0"],
]


def _payloads(path: Path):
    """(receive-time text, payload dict) of every JSON line, whichever recorder wrote it."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as f:
        for n, line in enumerate(f):
            if ".ws." in path.name:
                if n == 0:
                    continue  # "<url> <-> <ts>" header
                ts, _, body = line.partition(": ")
            else:
                ts, _, body = line.partition(" ")
            if not body.strip():
                continue
            msg = json.loads(body)
            yield ts, msg.get("data", msg)


def reference_bars(paths: list[Path], interval: str):
    """The reference bars of the recordings' trade events (tests/support/bars.py)."""
    trades = [d for p in paths for _, d in _payloads(p) if isinstance(d, dict) and d.get("e") in ("trade", "aggTrade")]
    return support_bars(trades, interval)


@pytest.mark.parametrize("files", RECORDINGS, ids=lambda f: Path(f[0]).name)
def test_bars_when_real_recording_then_equal_to_an_independent_computation(real_data: Path, files: list[str]) -> None:
    paths = [real_data / f for f in files]
    for interval in ("1s", "1m"):
        ours = compute_bars(paths, interval).rows()
        ref = reference_bars(paths, interval)
        assert len(ref) > 0
        assert_same_bars(ours, ref, f"{files[0]} {interval}")


def test_bars_when_files_computed_apart_and_merged_then_equal_to_computed_together(real_data: Path) -> None:
    a, b = (real_data / f for f in RECORDINGS[1])
    whole = compute_bars([a, b], "1m")
    merged = BarSet(interval_ms("1m"))
    merged.merge(compute_bars([a], "1m"))
    merged.merge(compute_bars([b], "1m"))
    assert merged.rows() == whole.rows()
    # 2024-07-19 00:00 has trades from both files: a merged bar, not two
    assert sum(1 for r in whole.rows() if r["open_time"] == 1721347200000) == 1


def test_bars_when_a_file_is_given_twice_then_its_trades_count_once(real_data: Path) -> None:
    p = real_data / RECORDINGS[2][0]
    skipped: dict[str, int] = {}
    assert compute_bars([p, p], "1m", skipped=skipped).rows() == compute_bars([p], "1m").rows()
    assert skipped == {"ETHUSDT": 1640}


def test_interval_when_bad_then_value_error_naming_it() -> None:
    assert interval_ms("5m") == 300_000 and interval_ms("1d") == 86_400_000
    for bad in ("", "5", "0m", "1w", "7m"):
        with pytest.raises(ValueError, match="interval"):
            interval_ms(bad)


def _b25(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "procs.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          timeout=300)


@pytest.mark.proc
def test_bars_cli_when_csv_and_parquet_then_same_bars_and_bad_args_exit_2(real_data: Path, tmp_path: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    src = real_data / RECORDINGS[2][0]
    r = _b25("bars", src, "--interval", "1m", "--out", tmp_path / "b.parquet")
    assert r.returncode == 0, r.stderr.decode()
    r = _b25("bars", src, "--interval", "1m", "--out", tmp_path / "b.csv", "--from", "2024-07-18T23:58:00Z")
    assert r.returncode == 0, r.stderr.decode()
    full = pq.read_table(tmp_path / "b.parquet").to_pylist()
    part = pacsv.read_csv(tmp_path / "b.csv").to_pylist()
    assert [b["open_time"].minute for b in full] == [57, 58, 59]
    assert [b["close"] for b in part] == [b["close"] for b in full[1:]]
    bad = _b25("bars", src, "--interval", "7m")
    assert bad.returncode == 2 and b"interval" in bad.stderr
    bad = _b25("bars", src, "--interval", "1m", "--out", tmp_path / "b.json")
    assert bad.returncode == 2 and b".parquet or .csv" in bad.stderr


@pytest.mark.proc
def test_convert_when_real_recording_then_duckdb_reads_bars_and_the_touch_matches_the_recorded_tickers(
        real_data: Path, tmp_path: Path) -> None:
    import duckdb

    src = real_data / RECORDINGS[0][0]
    r = _b25("convert", src, "--to", "parquet", tmp_path, "--depth", "3")
    assert r.returncode == 0, r.stderr.decode()
    con = duckdb.connect()
    trades = str(tmp_path / "trades.parquet")
    books = str(tmp_path / "books.parquet")
    bars = con.execute(f"""
        SELECT symbol, epoch_ms(time_bucket(INTERVAL 1 MINUTE, trade_time)) AS open_time,
               arg_min(price, (trade_time, trade_id)) AS open, max(price) AS high, min(price) AS low,
               arg_max(price, (trade_time, trade_id)) AS close, sum(qty) AS volume, count(*) AS trades
        FROM '{trades}' GROUP BY ALL ORDER BY ALL""").fetchall()
    ours = compute_bars([src], "1m").rows()
    assert [(b["symbol"], b["open_time"], b["open"], b["high"], b["low"], b["close"], b["trades"]) for b in ours] \
        == [row[:6] + row[7:] for row in bars]
    assert [round(b["volume"], 6) for b in ours] == [round(row[6], 6) for row in bars]
    # the touch after every applied diff equals the exchange's own bookTicker with the same update id
    tickers = [(d["u"], float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]))
               for _, d in _payloads(src) if d.get("e") == "bookTicker"]
    con.execute("CREATE TABLE tickers (u BIGINT, b DOUBLE, bq DOUBLE, a DOUBLE, aq DOUBLE)")
    con.executemany("INSERT INTO tickers VALUES (?, ?, ?, ?, ?)", tickers)
    joined = con.execute(f"""SELECT count(DISTINCT u), count(*), count(*) FILTER (WHERE bid_px_1 = b AND bid_qty_1 = bq AND ask_px_1 = a
                         AND ask_qty_1 = aq) FROM '{books}' JOIN tickers ON update_id = u""").fetchone()
    # 629 bookTickers carry the update id of an applied depth event: every one agrees, price and size
    assert joined == (629, 629, 629)
    n_books, crossed = con.execute(f"SELECT count(*), count(*) FILTER (WHERE bid_px_1 >= ask_px_1) FROM '{books}'").fetchone()
    assert n_books == 6547 and crossed == 0
