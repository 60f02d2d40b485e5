"""Publishing market data: ``BookUpdate``, ``Trade`` and ``MarkPrice`` records to the broadcast
rings and the latest book per symbol to its SeqLock state block ``book.<symbol>``.

The record header is written with one ``struct.pack_into`` at the slot's byte offset and the
levels by ``Book.fill_top`` straight into the ring's field rows: no per-event numpy scalars.
"""

from __future__ import annotations

import struct
import time
from enum import IntEnum

import numpy as np

from procs.book.book import Book
from procs.core import messages as M
from procs.core.registry import MD_BOOK, MD_MARK, MD_TRADE, book_state_name
from shm.registry import Registry
from shm.seqlock import StateWriter

_HEADER = struct.Struct("<qqqqqiiqq")  # symbol_id .. seq, the first 72 bytes of BookUpdate


class Counter(IntEnum):
    """market_data counters (labels are the lower-case names)."""

    MESSAGES = 0
    BYTES = 1
    DEPTH_APPLIED = 2
    TRADES = 3
    RESYNCS = 4
    GAPS = 5
    RECONNECTS = 6
    DECODE_ERRORS = 7
    DROPPED_STALE = 8
    BAD_VALUES = 9
    CROSSED = 10
    SNAPSHOTS = 11
    SNAPSHOT_ERRORS = 12
    WATCHDOG_RESYNCS = 13
    RECORDER_DROPPED = 14
    UNKNOWN_STREAM = 15
    # kept only with [market_data] lockstep_gauges, for the replay harness's barrier
    # (procs/tools/replay/lockstep.py): HANDLED counts frames whose books/trades are published
    # (incremented last); SNAPSHOTS_PENDING is a gauge of symbols waiting for or fetching a snapshot
    HANDLED = 16
    SNAPSHOTS_PENDING = 17
    MARKS = 18  # mark prices published (md.mark)


class Hist(IntEnum):
    RECV_TO_PUBLISH = 0


class Publisher:
    """Owner of md.book, md.trade, md.mark and every book.<symbol> block of one instance."""

    def __init__(self, registry: Registry, instance: str, symbols: list[str]) -> None:
        self.book_ring = registry.producer(instance, MD_BOOK)
        self.trade_ring = registry.producer(instance, MD_TRADE)
        self.mark_ring = registry.producer(instance, MD_MARK)
        self.states = [registry.writer(instance, book_state_name(s)) for s in symbols]
        recs = self.book_ring.records
        self._bid_px = recs["bid_px"]
        self._bid_qty = recs["bid_qty"]
        self._ask_px = recs["ask_px"]
        self._ask_qty = recs["ask_qty"]
        self._buf = self.book_ring.seg.mm
        self._view = self.book_ring.seg.buf  # memoryview: slicing it copies nothing
        self._base = self.book_ring.data_offset
        self._size = self.book_ring.record_size
        self._pack_header = _HEADER.pack_into
        self._trade_publish = self.trade_ring.try_publish
        # FastBook writes whole records here (its kernel: procs.book.kernels.fill_record): the
        # ring's slots as int64 words, and the word index of ts_pub for the final stamp
        ring = self.book_ring
        self._depth = recs["bid_px"].shape[1]
        self._words_per = self._size // 8
        self._rows = np.frombuffer(self._buf, np.int64, ring.capacity * self._words_per,
                                   self._base).reshape(ring.capacity, self._words_per)
        self._words = self._view[self._base:self._base + ring.capacity * self._size].cast("q")

    def publish_book(self, sid: int, book: Book, update_id: int, ts_event_ns: int, ts_recv: int,
                     flags: int, seq: int) -> int:
        """Write the book's top N as a BookUpdate, publish it and refresh the state block.

        Returns the publish time (monotonic ns) for the latency histogram.
        """
        ring = self.book_ring
        slot = ring.try_claim()  # broadcast: always a slot
        if type(book) is not Book:  # FastBook: the record in one compiled call
            book.fill_record(self._rows, slot, self._depth, sid, update_id, ts_event_ns, ts_recv, flags, seq)
            ts_pub = time.monotonic_ns()
            self._words[slot * self._words_per + 4] = ts_pub
        else:
            nb, na = book.fill_top(self._bid_px[slot], self._bid_qty[slot], self._ask_px[slot],
                                   self._ask_qty[slot])
            ts_pub = time.monotonic_ns()
            self._pack_header(self._buf, self._base + slot * self._size, sid, update_id, ts_event_ns, ts_recv,
                              ts_pub, nb, na, flags, seq)
        ring.publish()
        a = self._base + slot * self._size
        self.states[sid].write_bytes(0, self._view[a:a + self._size])
        return ts_pub

    def publish_trade(self, sid: int, trade_id: int, price: int, qty: int, ts_event_ns: int, ts_recv: int,
                      buyer_maker: bool) -> None:
        self._trade_publish(sid, trade_id, price, qty, ts_event_ns, ts_recv, time.monotonic_ns(),
                            M.TRADE_BUYER_MAKER if buyer_maker else 0)

    def publish_mark(self, sid: int, mark_px: int, index_px: int, funding_rate_e8: int, next_funding_ms: int,
                     ts_event_ns: int, ts_recv: int) -> None:
        self.mark_ring.try_publish(sid, mark_px, index_px, funding_rate_e8, next_funding_ms, ts_event_ns, ts_recv,
                                   time.monotonic_ns())

    def heartbeat(self) -> None:
        self.book_ring.heartbeat()
        self.trade_ring.heartbeat()
        self.mark_ring.heartbeat()
        for s in self.states:
            s.heartbeat()

    def close(self) -> None:
        self._bid_px = self._bid_qty = self._ask_px = self._ask_qty = None  # type: ignore[assignment]
        self._rows = None  # type: ignore[assignment]
        self._words.release()
        self.book_ring.close()
        self.trade_ring.close()
        self.mark_ring.close()
        for s in self.states:
            s.close()


def read_book_state(state: np.ndarray, book_dtype: np.dtype) -> dict:
    """A BookUpdate record as plain ints (for tests and tools)."""
    r = state[0]
    nb, na = int(r["n_bids"]), int(r["n_asks"])
    return {
        "update_id": int(r["update_id"]),
        "bids": list(zip(r["bid_px"][:nb].tolist(), r["bid_qty"][:nb].tolist(), strict=True)),
        "asks": list(zip(r["ask_px"][:na].tolist(), r["ask_qty"][:na].tolist(), strict=True)),
        "flags": int(r["flags"]),
    }


__all__ = ["Publisher", "Counter", "Hist", "StateWriter", "read_book_state"]
