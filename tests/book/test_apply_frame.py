"""BookSync.apply_frame, market_data's hot path (a raw depth frame applied in one compiled call,
Binance's frame kernel over FastBook's level kernel), against on_diff on real recordings: same books, and every frame it does not take leaves the book
untouched so the general path can."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from procs.book.frames import OUT_FIRST_ID, OUT_LAST_ID, OUT_PREV_ID, OUT_TS_EVENT
from procs.book.rebuild import snapshot_resolver
from procs.book.sync import BookSync, SyncStatus
from procs.venue.binance.depth import CHAINED
from procs.venue.binance.market import DepthSnapshot, DepthUpdate
from procs.venue.binance.market import MarketCodec as FrameDecoder
from procs.venue.binance.recordings import iter_frames, recorded_instruments
from tests.support import REAL

pytest.importorskip("numba")

ETH = "hftbacktest-binance/usdm/ethusdt_20240718.gz"


def _frames(path: Path) -> tuple[bytes, list[bytes]]:
    """The snapshot body and every raw depth frame of a one-symbol recording, in order."""
    snap = b""
    depth: list[bytes] = []
    for fr in iter_frames(path):
        if fr.snapshot_symbol:
            snap = fr.raw
        elif b'"depthUpdate"' in fr.raw:
            depth.append(fr.raw)
    assert snap and depth
    return snap, depth


@pytest.fixture(scope="module")
def eth() -> tuple[bytes, list[bytes]]:
    if not REAL.is_dir():
        pytest.skip("real recordings not found")
    return _frames(REAL / ETH)


def _sync() -> BookSync:
    return BookSync("ETHUSDT", CHAINED, resolve=snapshot_resolver(recorded_instruments("usdm")), fast=True)


def _feed(sync: BookSync, dec: FrameDecoder, raw: bytes) -> tuple[SyncStatus, bool]:
    """The handler's order: apply_frame first, on_diff when it declines. (status, taken whole)."""
    st = sync.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT")
    if st is not None:
        return st, True
    _, msg = dec.decode(raw)
    assert isinstance(msg, DepthUpdate)
    return sync.on_diff(msg), False


def _snapshot(sync: BookSync, dec: FrameDecoder, body: bytes) -> None:
    snap = dec.decode_snapshot(body)
    assert isinstance(snap, DepthSnapshot)
    sync.on_snapshot(snap)


def _top(sync: BookSync, n: int = 50) -> tuple[list, list]:
    assert sync.book is not None
    return sync.book.bid_levels(n), sync.book.ask_levels(n)


def test_apply_frame_when_real_recording_then_same_books_as_on_diff_at_every_step(eth) -> None:
    snap, depth = eth
    dec = FrameDecoder(raw_levels=True)
    ref, hot = _sync(), _sync()
    taken = 0
    for i, raw in enumerate(depth):
        _, msg = dec.decode(raw)
        assert isinstance(msg, DepthUpdate)
        st_ref = ref.on_diff(msg)
        st_hot, whole = _feed(hot, dec, raw)
        assert st_hot == st_ref, i
        taken += whole
        if whole:
            f = hot.frame_fields
            assert (f[OUT_FIRST_ID], f[OUT_LAST_ID], f[OUT_PREV_ID], f[OUT_TS_EVENT]) == \
                (msg.first_id, msg.last_id, msg.prev_id, msg.ts_event_ms)
        if i == 20:  # diffs buffered first, as live; then the snapshot bridges them
            _snapshot(ref, dec, snap)
            _snapshot(hot, dec, snap)
        if i >= 20 and (i % 50 == 0 or i == len(depth) - 1):
            assert _top(hot) == _top(ref), i
            assert hot.last_u == ref.last_u
    assert ref.counters.gaps == hot.counters.gaps == 0
    assert hot.counters.applied == ref.counters.applied
    assert taken >= len(depth) - 25  # all but the buffered ones and the one bridging the snapshot


def _live(eth) -> tuple[BookSync, FrameDecoder, list[bytes]]:
    snap, depth = eth
    dec = FrameDecoder(raw_levels=True)
    sync = _sync()
    _snapshot(sync, dec, snap)
    rest = []
    for raw in depth:
        if sync.last_u > 0 and sync.counters.applied > 0 and len(rest) == 0 and _feed(sync, dec, raw)[1]:
            rest.append(raw)  # the first frame taken whole: the following ones are the test's
        elif not rest:
            _, msg = dec.decode(raw)
            sync.on_diff(msg)  # type: ignore[arg-type]
        else:
            rest.append(raw)
    assert len(rest) > 10
    return sync, dec, rest[1:]


@pytest.mark.parametrize("change", [
    ("reordered keys", lambda r: r.replace(b'"E":', b'"E0":', 1)),
    ("raw stream", lambda r: r[r.find(b'"data":') + 7:-1]),
    ("escape in a price", lambda r: r.replace(b'"b":[["', b'"b":[["\\u0031', 1)),
    ("trailing bytes", lambda r: r + b" "),
    ("other symbol", lambda r: r.replace(b'"s":"ETHUSDT"', b'"s":"BTCUSDT"', 1)),
])
def test_apply_frame_when_not_the_exact_shape_then_declined_and_book_untouched(eth, change) -> None:
    sync, _dec, rest = _live(eth)
    before, last_u = _top(sync), sync.last_u
    raw = change[1](rest[0])
    assert sync.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") is None, change[0]
    assert _top(sync) == before and sync.last_u == last_u
    raw = rest[0]  # the frame as sent is taken whole
    assert sync.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") == SyncStatus.APPLIED
    assert sync.last_u == sync.frame_fields[OUT_LAST_ID] > last_u


def test_apply_frame_when_not_the_next_diff_then_declined_so_on_diff_reports_the_gap(eth) -> None:
    sync, dec, rest = _live(eth)
    before = _top(sync)
    raw = rest[1]  # rest[0] skipped: pu != last_u
    assert sync.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") is None
    assert _top(sync) == before
    _, msg = dec.decode(raw)
    assert sync.on_diff(msg) == SyncStatus.GAP  # type: ignore[arg-type]


def test_apply_frame_when_bad_level_text_then_bad_input_resync_named(eth) -> None:
    sync, _dec, rest = _live(eth)
    raw = rest[0]
    i = raw.find(b'"b":[["') + 7
    raw = raw[:i] + b"-" + raw[i:]  # a negative price
    assert sync.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") == SyncStatus.BAD_INPUT
    assert sync.needs_snapshot and sync.counters.bad_input == 1
    assert "bad level text" in sync.last_error and "-" in sync.last_error


def test_apply_frame_when_update_crosses_book_then_crossed_resync(eth) -> None:
    sync, _dec, rest = _live(eth)
    assert sync.book is not None
    ask = sync.book.best_ask()
    assert ask is not None
    raw = rest[0]
    i = raw.find(b'"b":[') + 5
    px = f"{ask[0] / 100:.2f}".encode()  # ETHUSDT: 2 price decimals; a bid at the best ask
    raw = raw[:i] + b'["' + px + b'","1.000"],' + raw[i:]
    assert sync.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") == SyncStatus.CROSSED
    assert sync.needs_snapshot and sync.counters.crossed == 1


def test_apply_frame_when_not_live_or_python_book_then_declined(eth) -> None:
    snap, depth = eth
    raw = depth[0]
    fresh = _sync()  # no snapshot yet
    assert fresh.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") is None
    slow = BookSync("ETHUSDT", CHAINED, resolve=snapshot_resolver(recorded_instruments("usdm")), fast=False)
    assert slow.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT") is None


def test_apply_frame_when_deleted_levels_fill_the_table_then_rehashed_and_books_still_equal() -> None:
    """Deleted levels keep their slot (a tombstone) until the table is rehashed: 20000 distinct
    prices added and deleted pass the 70% mark of the 16384-slot table several times."""
    from procs.core.instruments import instrument_for_scales

    inst = instrument_for_scales("ETHUSDT", 2, 3)
    hot = BookSync("ETHUSDT", CHAINED, inst, fast=True)
    ref = BookSync("ETHUSDT", CHAINED, inst, fast=False)
    snap = DepthSnapshot(last_id=100, bids=[("1000.00", "1.000")], asks=[("1001.00", "1.000")])
    hot.on_snapshot(snap)
    ref.on_snapshot(snap)
    dec = FrameDecoder(raw_levels=False)
    prev, u = 99, 100
    taken = 0
    for k in range(200):
        adds = [f'["{(50000 - k * 100 - j) / 100:.2f}","1.000"]' for j in range(100)]
        dels = [f'["{(50000 - (k - 1) * 100 - j) / 100:.2f}","0"]' for j in range(100)] if k else []
        u += 10
        raw = (f'{{"stream":"ethusdt@depth","data":{{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":{prev + 1},'
               f'"u":{u},"pu":{prev},"b":[{",".join(dels + adds)}],"a":[]}}}}').encode()
        prev = u
        st = hot.apply_frame(raw, raw.find(b'"', 11), b"ETHUSDT")
        if st is None:
            _, msg = dec.decode(raw)
            st = hot.on_diff(msg)  # type: ignore[arg-type]
        else:
            taken += 1
        _, msg = dec.decode(raw)
        assert st == ref.on_diff(msg) == SyncStatus.APPLIED, k  # type: ignore[arg-type]
    assert taken >= 199
    assert _top(hot, 200) == _top(ref, 200)
    assert hot.book is not None
    used, live = hot.book._st[0, 0], hot.book._st[0, 1]  # ST_USED, ST_LIVE
    assert live == 101 and used < 0.7 * hot.book._keys.shape[1]  # rehashed: tombstones dropped


def test_probe_frame_when_run_on_live_book_then_nothing_changes_and_shape_checked(eth) -> None:
    sync, _dec, rest = _live(eth)
    book = sync.book
    assert book is not None
    before = [a.copy() for a in (book._keys, book._vals, book._top, book._st[:, :3])]
    out = np.zeros(5, np.int64)
    for raw in rest[:20]:  # frames the book has not seen: probing must not apply them
        assert book.probe_frame(CHAINED.probe_kernel, raw, raw.find(b'"', 11), b"ETHUSDT", out) is True
    after = [book._keys, book._vals, book._top, book._st[:, :3]]
    assert all(np.array_equal(x, y) for x, y in zip(before, after, strict=True))
    raw = rest[0][rest[0].find(b'"data":') + 7:-1]  # a raw-stream payload: not the hot shape
    assert book.probe_frame(CHAINED.probe_kernel, raw, 0, b"ETHUSDT", out) is False
    assert sync.apply_frame(rest[0], rest[0].find(b'"', 11), b"ETHUSDT") == SyncStatus.APPLIED
