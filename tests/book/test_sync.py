"""BookSync against synthetic corruption of a real recording: drop, duplicate, reorder, bad input."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from procs.book.rebuild import snapshot_resolver
from procs.book.sync import BookSync, SyncState, SyncStatus
from procs.core.instruments import int_to_decimal
from procs.venue.binance.depth import RULES
from procs.venue.binance.market import DepthSnapshot, DepthUpdate
from procs.venue.binance.market import MarketCodec as FrameDecoder
from procs.venue.binance.recordings import iter_frames, recorded_instruments
from tests.support import REAL

ETH = "hftbacktest-binance/usdm/ethusdt_20240718.gz"
SPOT = "hftbacktest-binance/spot/btcusdt_20240808.gz"


def _load(path: Path) -> tuple[DepthSnapshot, list[DepthUpdate], str]:
    """The snapshot and every depth diff of a one-symbol recording, in arrival order."""
    dec = FrameDecoder()
    snap = None
    diffs: list[DepthUpdate] = []
    kind = ""
    for fr in iter_frames(path):
        kind = fr.market
        _, msg = dec.decode(fr.raw)
        if isinstance(msg, DepthSnapshot):
            snap = msg
        elif isinstance(msg, DepthUpdate):
            diffs.append(msg)
    assert snap is not None
    return snap, diffs, kind


@pytest.fixture(scope="module")
def eth() -> tuple[DepthSnapshot, list[DepthUpdate], str]:
    if not REAL.is_dir():
        pytest.skip("real recordings not found")
    return _load(REAL / ETH)


FAST = False  # flipped by the `impl` fixture: every test runs on Book and on FastBook


@pytest.fixture(autouse=True, params=["python", "numba"])
def impl(request: pytest.FixtureRequest):  # noqa: ANN201
    global FAST
    if request.param == "numba":
        pytest.importorskip("numba")
    FAST = request.param == "numba"
    yield request.param
    FAST = False


def _sync(snap: DepthSnapshot, kind: str = "usdm") -> BookSync:
    return BookSync("ETHUSDT" if kind != "spot" else "BTCUSDT", RULES[kind],
                    resolve=snapshot_resolver(recorded_instruments(kind)), fast=FAST)


def _live(eth: tuple[DepthSnapshot, list[DepthUpdate], str], n: int) -> tuple[BookSync, list[DepthUpdate]]:
    """A synced book after the snapshot and the first n diffs; returns it and the rest."""
    snap, diffs, _ = eth
    s = _sync(snap)
    s.on_snapshot(snap)
    for ev in diffs[:n]:
        s.on_diff(ev)
    assert s.state == SyncState.LIVE
    return s, diffs[n:]


def test_on_diff_when_no_snapshot_yet_then_buffered_and_needs_snapshot(eth) -> None:
    snap, diffs, _ = eth
    s = _sync(snap)
    assert s.on_diff(diffs[0]) == SyncStatus.BUFFERED
    assert s.needs_snapshot and s.counters.buffered == 1


def test_on_snapshot_when_diffs_buffered_then_stale_dropped_and_first_event_rule_applied(eth) -> None:
    snap, diffs, _ = eth
    s = _sync(snap)
    for ev in diffs[:20]:
        s.on_diff(ev)
    stale = sum(1 for ev in diffs[:20] if ev.last_id < snap.last_id)
    assert stale > 0
    assert s.on_snapshot(snap) == SyncStatus.APPLIED
    assert s.counters.stale == stale
    assert s.counters.applied == 20 - stale
    assert s.state == SyncState.LIVE and s.last_u == diffs[19].last_id


def test_on_diff_when_one_diff_dropped_then_gap_and_resync_needed(eth) -> None:
    s, rest = _live(eth, 100)
    assert s.on_diff(rest[1]) == SyncStatus.GAP  # rest[0] never arrived
    assert s.needs_snapshot and s.counters.gaps == 1 and s.counters.resyncs == 1
    assert "pu=" in s.last_error and str(rest[1].prev_id) in s.last_error
    assert s.on_diff(rest[2]) == SyncStatus.BUFFERED  # keeps buffering for the next snapshot


def test_on_diff_when_duplicate_then_stale_dropped_and_chain_continues(eth) -> None:
    s, rest = _live(eth, 100)
    assert s.on_diff(rest[0]) == SyncStatus.APPLIED
    stale = s.counters.stale  # the diffs older than the snapshot
    before = s.book.bid_levels(50), s.book.ask_levels(50)
    assert s.on_diff(rest[0]) == SyncStatus.STALE
    assert (s.book.bid_levels(50), s.book.ask_levels(50)) == before
    assert s.on_diff(rest[1]) == SyncStatus.APPLIED
    assert s.counters.stale == stale + 1 and s.counters.gaps == 0


def test_on_diff_when_two_reordered_then_gap(eth) -> None:
    s, rest = _live(eth, 100)
    assert s.on_diff(rest[1]) == SyncStatus.GAP
    assert s.on_diff(rest[0]) == SyncStatus.BUFFERED


def test_on_snapshot_when_after_gap_then_book_resynced_and_equal_to_uncorrupted_book(eth) -> None:
    snap, diffs, _ = eth
    # Reference: the clean chain.
    ref = _sync(snap)
    ref.on_snapshot(snap)
    for ev in diffs:
        ref.on_diff(ev)
    # Corrupted: a diff dropped at 200, then a "new snapshot" equal to the book at 400.
    s, rest = _live(eth, 200)
    for ev in rest[1:]:
        s.on_diff(ev)
    assert s.needs_snapshot
    mid = _sync(snap)
    mid.on_snapshot(snap)
    for ev in diffs[:400]:
        mid.on_diff(ev)
    ps, qs = mid.book.instrument.price_scale, mid.book.instrument.qty_scale
    txt = int_to_decimal
    new_snap = DepthSnapshot(last_id=mid.last_u,
                             bids=[(txt(t, ps), txt(q, qs)) for t, q in mid.book.bid_levels()],
                             asks=[(txt(t, ps), txt(q, qs)) for t, q in mid.book.ask_levels()])
    assert s.on_snapshot(new_snap) == SyncStatus.APPLIED
    assert s.state == SyncState.LIVE and s.last_u == ref.last_u
    assert s.book.bid_levels() == ref.book.bid_levels() and s.book.ask_levels() == ref.book.ask_levels()


def test_on_snapshot_when_older_than_every_buffered_diff_then_gap(eth) -> None:
    snap, diffs, _ = eth
    s = _sync(snap)
    for ev in diffs[200:210]:
        s.on_diff(ev)
    assert s.on_snapshot(snap) == SyncStatus.GAP
    assert s.needs_snapshot and len(s.buffer) == 10


@pytest.mark.parametrize("bad", ["NaN", "-1.000", "1e3", "abc", "", " 1.0", "1_0.0", "0.0001"])
def test_on_diff_when_bad_quantity_then_counted_not_raised(eth, bad: str) -> None:
    s, rest = _live(eth, 50)
    ev = msgspec.structs.replace(rest[0], bids=[(rest[0].bids[0][0] if rest[0].bids else "3400.00", bad)])
    assert s.on_diff(ev) == SyncStatus.BAD_INPUT
    assert s.counters.bad_input == 1 and s.needs_snapshot
    assert bad in s.last_error


@pytest.mark.parametrize("bad", ["NaN", "-3400.00", "0", "3400.001", "x"])
def test_on_diff_when_bad_price_then_counted_not_raised(eth, bad: str) -> None:
    s, rest = _live(eth, 50)
    ev = msgspec.structs.replace(rest[0], asks=[(bad, "1.000")])
    assert s.on_diff(ev) == SyncStatus.BAD_INPUT
    assert s.counters.bad_input == 1 and s.needs_snapshot


def test_on_diff_when_update_crosses_book_then_crossed_reported(eth) -> None:
    s, rest = _live(eth, 50)
    best_ask, _ = s.book.best_ask()
    i = s.book.instrument
    ev = msgspec.structs.replace(rest[0], bids=[(i.ticks_to_price(best_ask + i.tick_ticks), "1.000")], asks=[])
    assert s.on_diff(ev) == SyncStatus.CROSSED
    assert s.counters.crossed == 1 and s.needs_snapshot


def test_decode_when_malformed_frame_then_counted_and_none() -> None:
    dec = FrameDecoder()
    bad = [b'{"stream":"ethusdt@depth@0ms","data":{"e":"depthUpdate","U":1,', b"\x00\xff", b"[]",
           b'{"stream":"ethusdt@depth@0ms","data":{"e":"depthUpdate","s":"ETHUSDT","U":"x","u":2,"b":[],"a":[]}}',
           b'{"stream":"ethusdt@depth@0ms","data":{"s":"ETHUSDT","U":1,"u":2,"b":[["1"]],"a":[]}}']
    for raw in bad:
        assert dec.decode(raw)[1] is None
    assert dec.decode_errors == len(bad)


def test_decode_when_unknown_fields_or_raw_mode_then_decoded() -> None:
    dec = FrameDecoder()
    _, m = dec.decode(b'{"e":"depthUpdate","E":1,"T":1,"s":"X","U":5,"u":7,"pu":4,"new":{"x":1},'
                      b'"b":[["1.0","2"]],"a":[]}')
    assert isinstance(m, DepthUpdate) and m.last_id == 7 and m.bids == [("1.0", "2")]
    _, m = dec.decode(b'{"data":{"e":"depthUpdate","s":"X","U":5,"u":7,"b":[],"a":[]},"stream":"x@depth"}')
    assert isinstance(m, DepthUpdate) and m.prev_id == -1
    _, m = dec.decode(b'{"stream":"x@kline_1m","data":{"e":"kline"}}')
    assert m is None and dec.ignored == 1 and dec.decode_errors == 0


def test_spot_when_gap_or_duplicate_then_spot_rules(real_data: Path) -> None:
    snap, diffs, kind = _load(real_data / SPOT)
    assert kind == "spot"
    s = _sync(snap, "spot")
    for ev in diffs[:100]:
        s.on_diff(ev)
    assert s.on_snapshot(snap) == SyncStatus.APPLIED
    first = next(ev for ev in diffs if ev.last_id > snap.last_id)
    assert first.first_id <= snap.last_id + 1 <= first.last_id
    n = next(i for i, ev in enumerate(diffs) if ev.last_id == s.last_u) + 1
    assert s.on_diff(diffs[n - 1]) == SyncStatus.STALE  # duplicate
    assert s.on_diff(diffs[n + 1]) == SyncStatus.GAP  # diffs[n] dropped: U > last_u + 1
    assert s.needs_snapshot
