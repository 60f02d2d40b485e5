"""Recording readers: every format, timestamps in ns, kinds, snapshots placed where they arrived."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from procs.venue.binance.recordings import iter_frames, sniff_format, symbols, ts_to_ns


@pytest.mark.parametrize("path,lines,kind", [
    ("hftbacktest-binance/usdm/btcusdt_20240808.gz", 93954, "usdm"),
    ("hftbacktest-binance/usdm/btcusdt_20230404.dat.gz", 13384, "usdm"),
    ("hftbacktest-binance/cm/btcusd_perp_20240808.gz", 48270, "coinm"),
    ("hftbacktest-binance/spot/btcusdt_20240808.gz", 41249, "spot"),
])
def test_iter_frames_when_hftbacktest_file_then_every_line_with_ns_time_and_one_snapshot(
        real_data: Path, path: str, lines: int, kind: str) -> None:
    frames = list(iter_frames(real_data / path))
    assert len(frames) == lines
    assert {f.market for f in frames} == {kind}
    snaps = [f for f in frames if f.snapshot_symbol]
    assert len(snaps) == 1 and snaps[0].raw.startswith(b'{"lastUpdateId"')
    assert all(1.6e18 < f.ts_recv_ns < 1.8e18 for f in frames)  # us in 2023 -> ns
    assert all(a.ts_recv_ns <= b.ts_recv_ns + 10**9 for a, b in zip(frames, frames[1:], strict=False))


def test_iter_frames_when_cryptofeed_ws_then_merged_with_http_snapshots_by_time(real_data: Path) -> None:
    frames = list(iter_frames(real_data / "cryptofeed-binance/BINANCE_FUTURES.ws.1.0"))
    snaps = [f for f in frames if f.snapshot_symbol]
    assert [f.snapshot_symbol for f in snaps] == ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]
    assert len(frames) == 1535 + 4 and {f.market for f in frames} == {"usdm"}
    ts = [f.ts_recv_ns for f in frames]
    assert ts == sorted(ts)
    assert snaps[0].ts_recv_ns == 1626992741_301402000  # exact from "1626992741.301402"


def test_iter_frames_when_http_file_given_then_reads_its_ws_sibling_once(real_data: Path) -> None:
    d = real_data / "cryptofeed-binance"
    both = list(iter_frames([d / "BINANCE.http.0.0", d / "BINANCE.ws.1.0"]))
    assert len(both) == 265 + 4 and {f.market for f in both} == {"spot"}


def test_iter_frames_when_coinm_cryptofeed_then_kind_from_url(real_data: Path) -> None:
    frames = list(iter_frames(real_data / "cryptofeed-binance/BINANCE_DELIVERY.ws.1.0"))
    assert {f.market for f in frames} == {"coinm"}
    assert len([f for f in frames if f.snapshot_symbol]) == 10


def test_iter_frames_when_two_files_then_one_chain_in_order(real_data: Path) -> None:
    d = real_data / "hftbacktest-binance/usdm"
    frames = list(iter_frames([d / "btcusdt_20240718.gz", d / "btcusdt_20240719.gz"]))
    assert len(frames) == 11414 + 60570
    assert len([f for f in frames if f.snapshot_symbol]) == 1


def test_iter_frames_when_kind_given_then_it_overrides_detection(real_data: Path) -> None:
    frames = iter_frames(real_data / "hftbacktest-binance/spot/btcusdt_20240808.gz", kind="usdm")
    assert next(frames).market == "usdm"
    with pytest.raises(ValueError, match="kind"):
        next(iter_frames(real_data / "hftbacktest-binance/spot/btcusdt_20240808.gz", kind="bogus"))


def test_iter_frames_when_b25_recorder_file_with_wrapped_snapshot_then_symbol_from_stream(tmp_path: Path) -> None:
    p = tmp_path / "rec.gz"
    with gzip.open(p, "wb") as f:
        f.write(b'1723161255030314667 {"stream":"ethusdt@depthSnapshot","data":{"lastUpdateId":5,'
                b'"bids":[],"asks":[]}}\n')
        f.write(b'1723161255030314668 {"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","s":"BTCUSDT",'
                b'"U":1,"u":2,"pu":0,"b":[],"a":[]}}\n')
    frames = list(iter_frames(p))
    assert [f.snapshot_symbol for f in frames] == ["ETHUSDT", None]
    assert sniff_format(p) == "lines" and frames[1].market == "usdm"


def test_ts_to_ns_when_units_differ_then_ns() -> None:
    assert ts_to_ns(b"1723161255030314667") == 1723161255030314667
    assert ts_to_ns(b"1680652700423575") == 1680652700423575000
    assert ts_to_ns(b"1680652700423") == 1680652700423000000
    assert ts_to_ns(b"1626992741.06217") == 1626992741062170000
    assert ts_to_ns("1626992740") == 1626992740000000000


def test_iter_frames_when_not_a_recording_then_value_error(real_data: Path) -> None:
    with pytest.raises(ValueError, match="not a recording"):
        list(iter_frames(real_data / "cryptofeed-binance/BINANCE_FUTURES.0"))


@pytest.mark.parametrize("path,want", [
    ("hftbacktest-binance/usdm/btcusdt_20230404.dat.gz",
     {"DepthUpdate": 4322, "BookTicker": 6765, "Trade": 2197, "MarkPrice": 99, "DepthSnapshot": 1}),
    ("cryptofeed-binance/BINANCE_FUTURES.ws.1.0",
     {"DepthUpdate": 764, "BookTicker": 613, "AggTrade": 91, "DepthSnapshot": 4}),
    ("cryptofeed-binance/BINANCE.ws.1.0",
     {"DepthUpdate": 177, "BookTicker": 84, "AggTrade": 2, "DepthSnapshot": 4}),
])
def test_decode_when_every_real_frame_then_typed_messages_and_no_errors(real_data: Path, path: str,
                                                                         want: dict[str, int]) -> None:
    from collections import Counter

    from procs.venue.binance.market import MarketCodec as FrameDecoder

    dec = FrameDecoder()
    got = Counter(type(dec.decode(f.raw)[1]).__name__ for f in iter_frames(real_data / path))
    got.pop("NoneType", None)  # klines: well-formed, ignored
    assert dict(got) == want
    assert dec.decode_errors == 0


def test_symbols_when_recordings_then_every_stream_and_snapshot_symbol(real_data: Path) -> None:
    assert symbols([real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"]) == ["BTCUSDT"]
    assert symbols([real_data / "cryptofeed-binance/BINANCE.ws.1.0"]) == ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]
