"""FeedHandler in-process on real shm and real recordings: publishes exactly the book the shared
book/sync code builds, counts every kind of bad input and asks for a resync instead of failing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from procs.book.sync import SyncStatus
from procs.core import messages as M
from procs.core.registry import book_state_name, build_registry
from procs.market_data.handler import FeedHandler
from procs.market_data.publisher import Counter, Hist, Publisher, read_book_state
from procs.venue.binance.market import DepthSnapshot, MarketCodec
from procs.venue.messages import DepthDiff
from shm.counters import Counters
from tests.support.recordings import iter_frames, rebuilder, recorded_instruments

SYM = "BTCUSDT"


@pytest.fixture
def md(instance: str):
    reg = build_registry(20)
    inst = recorded_instruments("usdm")
    pub = Publisher(reg, instance, [SYM])
    counters = Counters.create(instance, "market_data", Counter, Hist)
    h = FeedHandler([SYM], inst, MarketCodec(raw_levels=True), pub, counters)
    state = reg.reader(instance, book_state_name(SYM))
    yield h, state, counters, reg, instance
    state.close()
    pub.close()
    counters.seg.unlink()
    counters.close()
    from shm.inspect import clean
    clean(instance, force=True)


def _feed(h: FeedHandler, frames) -> None:
    for f in frames:  # stamped on arrival, as the feed does (the recording's clock is another one)
        if f.snapshot_symbol:
            h.on_snapshot(f.snapshot_symbol, f.raw, time.monotonic_ns())
        else:
            h.on_frame(f.raw, time.monotonic_ns())


def _top(sync_book, n: int = 20):
    return sync_book.bid_levels(n), sync_book.ask_levels(n)


def test_on_frame_when_real_recording_then_state_block_equals_shared_rebuild(md, real_data: Path) -> None:
    h, state, counters, _reg, _ = md
    path = real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"
    _feed(h, iter_frames([path]))
    rb = rebuilder(symbols={SYM})
    for f in iter_frames([path]):
        rb.feed(f)
    rec, _ = state.read()
    got = read_book_state(rec, None)
    bids, asks = _top(rb.syncs[SYM].book)
    assert got["update_id"] == rb.syncs[SYM].last_u
    assert got["bids"] == bids and got["asks"] == asks
    assert counters.get(Counter.GAPS) == 0
    assert counters.get(Counter.DEPTH_APPLIED) == rb.syncs[SYM].counters.applied
    assert counters.get(Counter.TRADES) > 900  # 974 @trade frames in the file


def test_on_frame_when_live_then_depth_frames_taken_whole_by_the_venue_frame_kernel(md, real_data: Path) -> None:
    # the hot path: once a stream's first diff was decoded the general way, its next diffs go
    # whole to the venue's compiled frame kernel: they are applied without being decoded
    h, _state, counters, _reg, _ = md
    decoded: list[object] = []
    decode = h.decoder.decode

    def counted(raw: bytes):  # noqa: ANN202
        stream, msg = decode(raw)
        decoded.append(msg)
        return stream, msg

    h.decoder.decode = counted  # type: ignore[method-assign]
    frames = list(iter_frames([real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"]))
    _feed(h, frames)
    depth = sum(1 for f in frames if b'"depthUpdate"' in f.raw)
    general = sum(1 for m in decoded if isinstance(m, DepthDiff))
    assert depth > 1000 and general <= 30  # the first and the buffered ones only
    assert counters.get(Counter.GAPS) == 0 and counters.get(Counter.DEPTH_APPLIED) >= depth - general


def test_publish_when_book_applied_then_ring_records_carry_trace_fields(md, real_data: Path) -> None:
    h, _state, _c, reg, instance = md
    obs = reg.consumer(instance, "md.book")  # an observer
    frames = list(iter_frames([real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"]))[:200]
    _feed(h, frames)
    got = []
    while len(b := obs.poll()):
        got.append(b.copy())
        obs.commit()
    obs.close()
    import numpy as np
    recs = np.concatenate(got)
    assert len(recs) > 10
    assert (recs["ts_pub"] >= recs["ts_recv"]).all()
    assert list(recs["seq"]) == list(range(1, len(recs) + 1))
    assert recs["flags"][0] & M.BOOK_SNAPSHOT
    assert (recs["bid_px"][:, 0] < recs["ask_px"][:, 0]).all()


def _snapshot_and_first(real_data: Path):
    frames = list(iter_frames([real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"]))
    i = next(k for k, f in enumerate(frames) if f.snapshot_symbol)
    return frames, i


def test_on_frame_when_malformed_or_bad_values_then_counted_and_resync_requested(md, real_data: Path) -> None:
    h, _state, counters, _reg, _ = md
    frames, i = _snapshot_and_first(real_data)
    _feed(h, frames[: i + 60])
    h.want_snapshot.clear()
    h.on_frame(b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpd', 1)
    assert counters.get(Counter.DECODE_ERRORS) == 1
    live = h.syncs[SYM]
    u = live.last_u
    nan = (b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":%d,'
           b'"u":%d,"pu":%d,"b":[["60000.00","NaN"]],"a":[]}}' % (u + 1, u + 2, u))
    h.on_frame(nan, 2)
    assert counters.get(Counter.BAD_VALUES) == 1 and SYM in h.want_snapshot
    assert counters.get(Counter.RESYNCS) == 1


def test_on_frame_when_update_crosses_book_then_counted_as_crossed_and_resynced(md, real_data: Path) -> None:
    h, _state, counters, _reg, _ = md
    frames, i = _snapshot_and_first(real_data)
    _feed(h, frames[: i + 60])
    h.want_snapshot.clear()
    sync = h.syncs[SYM]
    best_ask = sync.book.best_ask()[0]
    u = sync.last_u
    px = sync.book.instrument.ticks_to_price(best_ask + 1000)
    crossed = (b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":%d,'
               b'"u":%d,"pu":%d,"b":[["%s","1.000"]],"a":[]}}' % (u + 1, u + 2, u, px.encode()))
    h.on_frame(crossed, 3)
    assert counters.get(Counter.CROSSED) == 1 and SYM in h.want_snapshot


def test_on_frame_when_negative_trade_qty_then_counted_not_published(md) -> None:
    h, _state, counters, _reg, _ = md
    bad = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":5,"p":"60000.10","q":"-1"}}'
    h.on_frame(bad, 4)
    assert counters.get(Counter.BAD_VALUES) == 1 and counters.get(Counter.TRADES) == 0


def test_on_frame_when_a_value_does_not_fit_64_bits_then_counted_not_published(md) -> None:
    """b25 fuzz found it: a 30-digit mark price raised out of the ring's int64 field and killed
    market_data. A trade or mark with any value past int64 is bad input: counted, dropped."""
    h, _state, counters, _reg, _ = md
    big = b"1" * 30
    mark = (b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1700000000000,"s":"BTCUSDT",'
            b'"p":"%s","i":"60001.00","P":"60002.00","r":"0.00010000","T":1700006400000}}' % big)
    trade = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":5,"p":"%s","q":"1"}}' % big
    h.on_frame(mark, 1)
    h.on_frame(trade, 2)
    h.on_frame(trade.replace(b'"T":1,', b'"T":99999999999999999,').replace(big, b"60000.10"), 3)  # its time in ns
    assert counters.get(Counter.BAD_VALUES) == 3
    assert counters.get(Counter.MARKS) == 0 and counters.get(Counter.TRADES) == 0


def test_depth_when_an_id_or_time_does_not_fit_64_bits_then_counted_and_the_book_kept(md) -> None:
    """b25 fuzz found it: a diff whose u had 21 digits bridged the snapshot and raised out of the
    book record's int64 field, which would have killed market_data. Such a diff or snapshot is bad
    input: counted, dropped before it reaches the book; a snapshot is asked for again."""
    h, state, counters, _reg, _ = md
    snapshot = b'{"lastUpdateId":1000,"E":1700000000000,"T":1700000000000,"bids":[["60000.00","1.500"]],' \
               b'"asks":[["60000.10","0.250"]]}'
    assert h.on_snapshot(SYM, snapshot, 1) == SyncStatus.WAITING  # for a diff that bridges it
    diff = (b'{"e":"depthUpdate","E":1700000000100,"T":1700000000099,"s":"BTCUSDT","U":999,"u":%s,"pu":998,'
            b'"b":[["60000.00","9.000"]],"a":[]}')
    h.on_frame(diff % (b"4" * 21), 2)  # bridges the snapshot, were it applied
    h.on_frame(diff.replace(b'"E":1700000000100', b'"E":99999999999999999') % b"1001", 3)  # its time in ns
    assert counters.get(Counter.BAD_VALUES) == 2 and counters.get(Counter.DEPTH_APPLIED) == 0
    h.on_frame(diff % b"1001", 4)  # the good diff still bridges
    assert counters.get(Counter.DEPTH_APPLIED) == 1
    assert read_book_state(state.read()[0], None)["bids"][0][1] == 9000
    assert h.on_snapshot(SYM, snapshot.replace(b"1000", b"9" * 20, 1), 5) == SyncStatus.BAD_INPUT
    assert counters.get(Counter.BAD_VALUES) == 3 and counters.get(Counter.SNAPSHOT_ERRORS) == 1
    assert SYM in h.want_snapshot


def test_hot_path_when_the_event_time_does_not_fit_then_not_published_and_resynced(md) -> None:
    """The frame kernel reads ids and times of up to 18 digits; an event time past what int64
    nanoseconds hold is applied by then, so the book is rebuilt from a snapshot."""
    h, state, counters, _reg, _ = md
    h.on_snapshot(SYM, b'{"lastUpdateId":1000,"E":1,"T":1,"bids":[["60000.00","1.500"]],"asks":[["60000.10","0.250"]]}', 1)
    diff = (b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":%s,"T":1,"s":"BTCUSDT","U":%d,"u":%d,'
            b'"pu":%d,"b":[["60000.00","%s"]],"a":[]}}')
    h.on_frame(diff % (b"1700000000100", 999, 1001, 998, b"2.000"), 2)  # decoded; the stream becomes hot
    h.on_frame(diff % (b"1700000000200", 1002, 1002, 1001, b"3.000"), 3)  # the kernel
    assert counters.get(Counter.DEPTH_APPLIED) == 2 and read_book_state(state.read()[0], None)["bids"][0][1] == 3000
    h.on_frame(diff % (b"9" * 18, 1003, 1003, 1002, b"4.000"), 4)
    assert counters.get(Counter.DEPTH_APPLIED) == 2 and counters.get(Counter.BAD_VALUES) == 1
    assert read_book_state(state.read()[0], None)["bids"][0][1] == 3000 and SYM in h.want_snapshot


def test_on_frame_when_mark_price_then_published_to_md_mark_in_ticks(md, real_data: Path) -> None:
    h, _state, counters, reg, instance = md
    marks = reg.consumer(instance, "md.mark", "risk")
    ins = h.instruments[SYM]
    # a frame as the exchange sends it: the mark is finer than the price scale (rounded half-even)
    frame = (b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1721260800000,"s":"BTCUSDT",'
             b'"p":"64123.45678901","P":"64100.1","i":"64120.25","r":"0.00010000","T":1721289600000}}')
    h.on_frame(frame, 77)
    h.on_frame(frame.replace(b'"p":"64123.45678901"', b'"p":"-1"'), 78)  # counted, not published
    h.on_frame(frame.replace(b'"s":"BTCUSDT"', b'"s":"XRPUSDT"'), 79)
    b = marks.poll()
    assert len(b) == 1
    r = b[0]
    assert int(r["mark_px"]) == ins.price_to_ticks("64123.46") and int(r["index_px"]) == ins.price_to_ticks("64120.25")
    assert int(r["funding_rate_e8"]) == 10_000 and int(r["next_funding_ms"]) == 1721289600000
    assert int(r["ts_event"]) == 1721260800000 * 1_000_000 and int(r["ts_recv"]) == 77 and int(r["ts_pub"]) > 0
    marks.commit()
    marks.close()
    assert counters.get(Counter.MARKS) == 1 and counters.get(Counter.BAD_VALUES) == 1
    assert counters.get(Counter.UNKNOWN_STREAM) == 1
    # the recorded session's own mark frames decode the same way
    n = 0
    for f in iter_frames([real_data / "hftbacktest-binance/usdm/btcusdt_20230404.dat.gz"]):
        if b"@markPrice" in f.raw[:60]:
            h.on_frame(f.raw, time.monotonic_ns())
            n += 1
    assert n > 0 and counters.get(Counter.MARKS) == 1 + n


def test_on_snapshot_when_malformed_then_counted_and_asked_again(md) -> None:
    h, _state, counters, _reg, _ = md
    h.want_snapshot.clear()
    h.on_snapshot(SYM, b'{"lastUpdateId": "x"}', 5)
    assert counters.get(Counter.SNAPSHOT_ERRORS) == 1 and SYM in h.want_snapshot
    assert isinstance(DepthSnapshot, type)


def test_keep_warm_when_quiet_then_runs_without_publishing_or_changing_the_book(md, real_data: Path) -> None:
    h, state, counters, reg, instance = md
    frames = list(iter_frames([real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"]))[:400]
    _feed(h, frames)
    before, version = state.read()
    ring = reg.consumer(instance, "md.book")  # an observer from here on
    try:
        now = time.monotonic_ns()
        sync = h.syncs[SYM]
        book_before, last_u = _top(sync.book, 100), sync.last_u
        assert h.keep_warm(now, 10**9) is False  # a frame came within the quiet time: nothing to do
        assert h.keep_warm(now + 2 * 10**9, 10**9) is True
        assert h.keep_warm(now + 3 * 10**9, 10**9) is True  # the hot path's scratch book, again
        after, version2 = state.read()
        assert version2 == version and after.tobytes() == before.tobytes()
        assert _top(sync.book, 100) == book_before and sync.last_u == last_u
        assert len(ring.poll()) == 0  # nothing published
        assert counters.get(Counter.DECODE_ERRORS) == 0
    finally:
        ring.close()
