"""`b25 book` as a real subprocess: output format, and a non-zero exit on an unbridgeable gap."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ETH = "hftbacktest-binance/usdm/ethusdt_20240718.gz"


def _book(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "procs.book.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, timeout=120)


@pytest.mark.proc
def test_book_cli_when_real_recording_then_one_json_line_per_applied_diff(real_data: Path) -> None:
    r = _book(real_data / ETH, "--depth", "5")
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3268
    first = json.loads(lines[0])
    assert list(first) == ["symbol", "u", "bids", "asks"]
    assert first["symbol"] == "ETHUSDT" and first["u"] == 4984028386786
    assert len(first["bids"]) == 5 and len(first["asks"]) == 5
    for side in (first["bids"], first["asks"]):
        for px, qty in side:
            assert isinstance(px, str) and isinstance(qty, str)
            assert not (("." in px and px.endswith("0")) or ("." in qty and qty.endswith("0")))
    bids = [float(p) for p, _ in first["bids"]]
    asks = [float(p) for p, _ in first["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert lines[0].startswith('{"symbol": "ETHUSDT", "u": 4984028386786, "bids": [["')


@pytest.mark.proc
def test_book_cli_when_engines_differ_then_output_identical(real_data: Path) -> None:
    src = real_data / "cryptofeed-binance/BINANCE_FUTURES.ws.1.0"
    py = _book(src, "--engine", "python", "--depth", "7")
    nb = _book(src, "--depth", "7")
    assert py.returncode == nb.returncode == 0
    assert py.stdout == nb.stdout and len(py.stdout.splitlines()) == 252 + 188 + 132 + 180


@pytest.mark.proc
def test_book_cli_when_symbol_filter_then_only_that_symbol(real_data: Path) -> None:
    r = _book(real_data / "cryptofeed-binance/BINANCE_FUTURES.ws.1.0", "--symbol", "CTKUSDT", "--depth", "2")
    assert r.returncode == 0
    syms = {json.loads(x)["symbol"] for x in r.stdout.decode().splitlines()}
    assert syms == {"CTKUSDT"}


@pytest.mark.proc
def test_book_cli_when_a_diff_is_missing_then_gap_on_stderr_and_exit_nonzero(real_data: Path, tmp_path: Path) -> None:
    src = real_data / ETH
    out = tmp_path / "ethusdt_corrupt.gz"
    seen_depth_after_snapshot = 0
    dropped = None
    with gzip.open(src, "rb") as fin, gzip.open(out, "wb") as fout:
        snapshot_seen = False
        for line in fin:
            if b'"lastUpdateId"' in line:
                snapshot_seen = True
            elif snapshot_seen and b"@depth" in line[:60]:
                seen_depth_after_snapshot += 1
                if seen_depth_after_snapshot == 500:
                    dropped = json.loads(line.split(b" ", 1)[1])["data"]
                    continue
            fout.write(line)
    assert dropped is not None
    r = _book(out, "--depth", "1")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "book_gap_unbridged" in err and "ETHUSDT" in err
    assert f"last_u={dropped['pu']}" in err  # the update ids around the hole are named
    assert len(r.stdout.decode().splitlines()) < 3268
