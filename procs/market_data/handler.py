"""FeedHandler: frames in, books and trades out — market_data's logic without any I/O.

The network side (``feed``) hands every frame here with its receive time and fetches a REST
snapshot for each symbol this handler asks for (``want_snapshot``). Frames are decoded by the
venue's ``MarketCodec`` into b25's market messages; books follow its ``DepthRule``. Everything the handler
sees is counted; bad input is handled (skipped or resynced) and logged once with the reason,
never raised.
"""

from __future__ import annotations

import time

import numpy as np

from procs.book.book import Book
from procs.book.frames import OUT_FIELDS, OUT_LAST_ID, OUT_TS_EVENT
from procs.book.sync import BookSync, SyncState, SyncStatus
from procs.core import log
from procs.core import messages as M
from procs.core.instruments import Instrument, decimal_to_int, round_to_int
from procs.venue.messages import DepthDiff, MarkPriceTick, TradeTick
from procs.venue.protocols import MarketCodec
from shm.counters import Counters

from .publisher import Counter, Hist, Publisher

_I64 = 1 << 63  # the md rings' fields are int64: a value outside is bad input, counted and dropped
_MAX_EVENT_MS = (_I64 - 1) // 1_000_000  # an event time the rings' int64 nanoseconds can hold


def _depth_fits(first_id: int, last_id: int, prev_id: int, ts_event_ms: int) -> bool:
    """The update ids and event time of a diff or snapshot fit md.book's int64 fields (b25 fuzz
    found a 21-digit id that crashed the publish)."""
    return (-_I64 < first_id < _I64 and -_I64 < last_id < _I64 and -_I64 < prev_id < _I64
            and -_MAX_EVENT_MS <= ts_event_ms <= _MAX_EVENT_MS)


class FeedHandler:
    """Routes decoded frames to each symbol's BookSync and publishes what changed."""

    def __init__(self, symbols: list[str], instruments: dict[str, Instrument], codec: MarketCodec,
                 publisher: Publisher, counters: Counters, recorder: object | None = None,
                 fast: bool = True) -> None:
        """``codec``: the venue's decoder (with raw level arrays when ``fast``)."""
        missing = [s for s in symbols if s not in instruments]
        if missing:
            raise ValueError(f"symbols the venue does not list: symbols={','.join(missing)}")
        self.symbols = symbols
        self.sid = {s: i for i, s in enumerate(symbols)}
        self.instruments = instruments
        # fast: the numba FastBook parses and applies raw level arrays (procs/book/fastbook.py)
        self.syncs = {s: BookSync(s, codec.depth_rule, instruments[s], fast=fast) for s in symbols}
        self.seq = dict.fromkeys(symbols, 0)
        self.last_depth_ns = dict.fromkeys(symbols, time.monotonic_ns())
        self.want_snapshot: set[str] = set(symbols)
        self.fetching: set[str] = set()  # the feed's snapshot requests in flight (shared with it)
        self.decoder = codec
        self._prefix = codec.frame_prefix  # the hot path's frames: the routing key follows, up to a quote
        self._key_at = len(codec.frame_prefix)
        self.pub = publisher
        self.c = counters
        self.recorder = recorder
        self._decode_errors_seen = 0
        self._last_frame_ns = 0
        self._last_depth_raw: bytes | None = None  # for keep_warm
        # the hot path (fast books only): a frame's routing key (its stream) -> (symbol, symbol
        # bytes, its BookSync), learnt from the first frame the general path decoded on it; the
        # venue's frame kernel (FastBook.apply_frame) then takes that stream's next diffs whole
        self._hot: dict[bytes, tuple[str, bytes, BookSync]] | None = {} if fast else None
        self._out = np.zeros(len(OUT_FIELDS), np.int64)  # keep_warm's
        n = publisher.book_ring.records["bid_px"].shape[1]  # the records' depth
        self._depth = n
        self._scratch = [np.zeros(n, np.int64) for _ in range(4)]  # keep_warm's top levels (python Book)
        self._scratch_row = np.zeros((1, publisher.book_ring.record_size // 8), np.int64)  # and record (FastBook)
        self.update_pending()

    # -- frames ----------------------------------------------------------------------------
    def enable_lockstep_gauges(self) -> None:
        """Replay harness only: keep HANDLED and SNAPSHOTS_PENDING for the lockstep barrier
        (procs/tools/replay/lockstep.py); live, ``on_frame`` stays the plain method."""
        self.on_frame = self._on_frame_gauged  # type: ignore[method-assign]

    def _on_frame_gauged(self, raw: bytes, ts_recv: int) -> None:
        try:
            FeedHandler.on_frame(self, raw, ts_recv)
        finally:
            # last, after everything the frame caused is published: the barrier waits for it
            self.update_pending()
            self.c.inc(Counter.HANDLED)

    def update_pending(self) -> None:
        """The SNAPSHOTS_PENDING gauge: symbols that want or are fetching a snapshot."""
        self.c.set(Counter.SNAPSHOTS_PENDING, len(self.want_snapshot | self.fetching))

    def on_frame(self, raw: bytes, ts_recv: int) -> None:
        """One WebSocket text frame as received, stamped with ``time.monotonic_ns()``."""
        hot = self._hot
        if hot and raw.startswith(self._prefix):
            k = self._key_at
            end = raw.find(b'"', k)
            h = hot.get(raw[k:end])
            if h is not None:
                symbol, sym, sync = h
                st = sync.apply_frame(raw, end, sym)
                if st is not None:
                    self._last_frame_ns = ts_recv
                    self._last_depth_raw = raw
                    self.last_depth_ns[symbol] = ts_recv
                    if st == SyncStatus.APPLIED:
                        out = sync.frame_fields
                        if out[OUT_TS_EVENT] <= _MAX_EVENT_MS:  # the kernel's ids have at most 18 digits
                            self._publish(symbol, sync.book, out[OUT_LAST_ID], out[OUT_TS_EVENT], ts_recv, 0)
                        else:  # applied already: the book is rebuilt from a snapshot
                            self._resync(symbol, SyncStatus.BAD_INPUT, f"event time {out[OUT_TS_EVENT]} ms")
                    else:
                        self._resync(symbol, st, sync.last_error)
                    self._count(raw, ts_recv)  # after the publish: not on the measured path
                    return
        self._count(raw, ts_recv)
        c = self.c
        dec = self.decoder
        stream, msg = dec.decode(raw)
        if msg is None:
            if dec.decode_errors != self._decode_errors_seen:
                self._decode_errors_seen = dec.decode_errors
                c.inc(Counter.DECODE_ERRORS)
                log.once("decode_error", "warn", "frame_decode_error", reason="not a valid frame",
                         frame=raw[:200].decode("utf-8", "replace"))
            return
        self._last_frame_ns = ts_recv
        if isinstance(msg, DepthDiff):
            self._last_depth_raw = raw
            self._on_depth(msg, ts_recv)
            sym = msg.symbol
            if hot is not None and sym in self.syncs and raw.startswith(self._prefix) and len(hot) < 4096:
                hot[stream.encode()] = (sym, sym.encode(), self.syncs[sym])
        elif isinstance(msg, TradeTick):
            self._on_trade(msg.symbol, msg.trade_id, msg.price, msg.qty, msg.ts_event_ms, msg.buyer_maker, ts_recv)
        elif isinstance(msg, MarkPriceTick):
            self._on_mark(msg, ts_recv)

    def _on_depth(self, ev: DepthDiff, ts_recv: int) -> None:
        symbol = ev.symbol
        sync = self.syncs.get(symbol)
        if sync is None:
            self.c.inc(Counter.UNKNOWN_STREAM)
            log.once(f"unknown_symbol:{symbol}", "warn", "unknown_symbol", symbol=symbol)
            return
        self.last_depth_ns[symbol] = ts_recv
        if not _depth_fits(ev.first_id, ev.last_id, ev.prev_id, ev.ts_event_ms):
            self.c.inc(Counter.BAD_VALUES)  # dropped before it reaches the book, as an undecodable diff is
            log.once(f"bad_depth_range:{symbol}", "warn", "bad_depth", symbol=symbol,
                     reason=f"an update id or the event time does not fit md.book's 64-bit fields: "
                            f"U={ev.first_id} u={ev.last_id} pu={ev.prev_id} E={ev.ts_event_ms}"[:300])
            return
        st = sync.on_diff(ev)
        if st == SyncStatus.APPLIED:
            self._publish(symbol, sync.book, ev.last_id, ev.ts_event_ms, ts_recv, 0)
        elif st == SyncStatus.STALE:
            self.c.inc(Counter.DROPPED_STALE)
        elif st == SyncStatus.BUFFERED:
            if sync.needs_snapshot:
                self.want_snapshot.add(symbol)
        else:
            self._resync(symbol, st, sync.last_error)

    def _count(self, raw: bytes, ts_recv: int) -> None:
        """Every frame: the message and byte counters, and the recorder."""
        c = self.c
        c.inc(Counter.MESSAGES)
        c.inc(Counter.BYTES, len(raw))
        if self.recorder is not None:
            self.recorder.add(ts_recv, raw)

    def _publish(self, symbol: str, book: Book | None, update_id: int, e_ms: int, ts_recv: int,
                 flags: int) -> None:
        assert book is not None
        seq = self.seq[symbol] + 1
        self.seq[symbol] = seq
        ts_pub = self.pub.publish_book(self.sid[symbol], book, update_id, e_ms * 1_000_000, ts_recv, flags, seq)
        c = self.c
        c.inc(Counter.DEPTH_APPLIED)  # the bookkeeping after the publish
        c.record(Hist.RECV_TO_PUBLISH, ts_pub - ts_recv)

    def _resync(self, symbol: str, st: SyncStatus, why: str) -> None:
        c = self.c
        c.inc(Counter.RESYNCS)
        if st == SyncStatus.GAP:
            c.inc(Counter.GAPS)
        elif st == SyncStatus.BAD_INPUT:
            c.inc(Counter.BAD_VALUES)
        elif st == SyncStatus.CROSSED:
            c.inc(Counter.CROSSED)
        log.once(f"resync:{symbol}:{st.name}", "warn", "book_resync", symbol=symbol, reason=st.name.lower(),
                 detail=why)
        self.want_snapshot.add(symbol)

    def _on_trade(self, symbol: str, tid: int, p: str, q: str, t_ms: int, buyer_maker: bool, ts_recv: int) -> None:
        inst = self.instruments.get(symbol)
        sid = self.sid.get(symbol)
        if inst is None or sid is None:
            self.c.inc(Counter.UNKNOWN_STREAM)
            return
        try:
            px = decimal_to_int(p, inst.price_scale)
            qty = decimal_to_int(q, inst.qty_scale)
        except ValueError as exc:
            self.c.inc(Counter.BAD_VALUES)
            log.once(f"bad_trade:{symbol}", "warn", "bad_trade", symbol=symbol, reason=str(exc))
            return
        if px <= 0 or qty <= 0:
            self.c.inc(Counter.BAD_VALUES)
            log.once(f"bad_trade_sign:{symbol}", "warn", "bad_trade", symbol=symbol,
                     reason=f"non-positive price or quantity: p={p} q={q}")
            return
        if not (px < _I64 and qty < _I64 and -_I64 < tid < _I64 and -_I64 < t_ms * 1_000_000 < _I64):  # no allocation per trade
            self.c.inc(Counter.BAD_VALUES)
            log.once(f"bad_trade_range:{symbol}", "warn", "bad_trade", symbol=symbol,
                     reason=f"a value does not fit md.trade's 64-bit fields: p={p[:40]} q={q[:40]}")
            return
        self.c.inc(Counter.TRADES)
        self.pub.publish_trade(sid, tid, px, qty, t_ms * 1_000_000, ts_recv, buyer_maker)

    def _on_mark(self, m: MarkPriceTick, ts_recv: int) -> None:
        """The venue's mark price -> md.mark (risk values positions at it); a mark finer than the
        price scale is rounded half-even (the venue computes it, it is not a tradable price)."""
        inst = self.instruments.get(m.symbol)
        sid = self.sid.get(m.symbol)
        if inst is None or sid is None:
            self.c.inc(Counter.UNKNOWN_STREAM)
            return
        try:
            mark = round_to_int(m.price, inst.price_scale)
            index = round_to_int(m.index_price, inst.price_scale)
            funding = round_to_int(m.funding_rate, 8)
        except (ValueError, ArithmeticError) as exc:
            self.c.inc(Counter.BAD_VALUES)
            log.once(f"bad_mark:{m.symbol}", "warn", "bad_mark_price", symbol=m.symbol, reason=str(exc))
            return
        if mark <= 0:
            self.c.inc(Counter.BAD_VALUES)
            log.once(f"bad_mark_sign:{m.symbol}", "warn", "bad_mark_price", symbol=m.symbol,
                     reason=f"non-positive mark price: p={m.price}")
            return
        ts_event_ns = m.ts_event_ms * 1_000_000
        if not (mark < _I64 and -_I64 < index < _I64 and -_I64 < funding < _I64
                and -_I64 < m.next_funding_ms < _I64 and -_I64 < ts_event_ns < _I64):
            self.c.inc(Counter.BAD_VALUES)  # md.mark holds int64 fields (b25 fuzz found a 30-digit price)
            log.once(f"bad_mark_range:{m.symbol}", "warn", "bad_mark_price", symbol=m.symbol,
                     reason=f"a value does not fit md.mark's 64-bit fields: p={m.price[:40]}")
            return
        self.c.inc(Counter.MARKS)
        self.pub.publish_mark(sid, mark, max(index, 0), funding, m.next_funding_ms, ts_event_ns, ts_recv)

    # -- snapshots and resets ----------------------------------------------------------------
    def on_snapshot(self, symbol: str, raw: bytes, ts_recv: int) -> SyncStatus:
        """A REST depth snapshot body for ``symbol``; returns what the sync made of it."""
        if self.recorder is not None:  # as a frame the venue's recordings sync on: a recording rebuilds
            self.recorder.add(ts_recv, self.decoder.snapshot_frame(symbol, raw))
        sync = self.syncs[symbol]
        snap = self.decoder.decode_snapshot(raw)
        self.c.inc(Counter.SNAPSHOTS)
        if snap is not None and not _depth_fits(snap.last_id, snap.last_id, -1, snap.ts_event_ms):
            self.c.inc(Counter.BAD_VALUES)
            snap = None  # refused as a malformed body is: counted, logged once, asked for again
        if snap is None:
            self.c.inc(Counter.SNAPSHOT_ERRORS)
            log.once(f"bad_snapshot:{symbol}", "warn", "bad_snapshot", symbol=symbol,
                     body=raw[:200].decode("utf-8", "replace"))
            self.want_snapshot.add(symbol)
            return SyncStatus.BAD_INPUT
        st = sync.on_snapshot(snap)
        if st == SyncStatus.APPLIED:
            self._publish(symbol, sync.book, sync.last_u, snap.ts_event_ms, ts_recv, M.BOOK_SNAPSHOT)
            log.info("book_synced", symbol=symbol, last_update_id=sync.last_u, snapshot_id=snap.last_id)
        elif st >= SyncStatus.GAP:
            self._resync(symbol, st, sync.last_error)
        self.update_pending()
        return st

    def reset_all(self) -> None:
        """After a reconnect every book must be rebuilt from a new snapshot."""
        for s, sync in self.syncs.items():
            sync.reset()
            self.want_snapshot.add(s)

    def reset_symbol(self, symbol: str) -> None:
        self.syncs[symbol].reset()
        self.want_snapshot.add(symbol)

    def stale_symbols(self, now_ns: int, stale_after_ns: int) -> list[str]:
        """Symbols with no depth event for ``stale_after_ns`` (the watchdog resyncs them)."""
        return [s for s, t in self.last_depth_ns.items() if now_ns - t > stale_after_ns]

    def keep_warm(self, now_ns: int, quiet_ns: int) -> bool:
        """Run the hot path's code over data without changing anything, when no frame came in
        the last ``quiet_ns``: decode the last depth frame again, and read every live book's
        top levels into scratch arrays. True when it ran.

        Why: between frames the hot path's code and data go cold (other processes and the host
        run meanwhile), and a cold frame costs several times a warm one; touching the same code
        and data every ~1 ms keeps them warm for a few us of work per tick
        (docs/decisions/006-keep-warm-ticks.md). ``[market_data.runtime] keep_warm_ms`` sets the tick.
        """
        raw = self._last_depth_raw
        if now_ns - self._last_frame_ns < quiet_ns or raw is None:
            return False
        self.decoder.decode(raw)  # trades and the general path
        s = self._scratch
        hot = self._hot
        k = self._key_at
        end = raw.find(b'"', k)
        h = hot.get(raw[k:end]) if hot and raw.startswith(self._prefix) else None
        for sync in self.syncs.values():
            book = sync.book
            if book is not None and sync.state is SyncState.LIVE:
                if h is not None and type(book) is not Book:
                    # the hot path's parse and this book's table lines the next frame will
                    # touch (a read-only probe with the last frame's levels), then its record
                    sync.probe_frame(raw, end, h[1], self._out)
                    book.fill_record(self._scratch_row, 0, self._depth, 0, 0, 0, 0, 0, 0)
                else:
                    book.fill_top(s[0], s[1], s[2], s[3])
        return True

    def touch_all(self, now_ns: int) -> None:
        for s in self.last_depth_ns:
            self.last_depth_ns[s] = now_ns
