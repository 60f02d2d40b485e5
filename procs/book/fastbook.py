"""FastBook: the same L2 book as ``procs.book.book.Book``, with its hot path compiled by numba.

Why: in CPython every level update costs a few hundred ns of interpreter work (two cache
lookups, a dict store, a comparison), which caps the pure-Python ``Book`` at ~2.5x the naive
json+SortedDict book. Here one compiled call per diff parses the raw JSON level arrays exactly
(decimal text -> int ticks/lots, refusing what does not fit the scale), applies them and
checks for a crossed book; Python only pays the call.

Layout (all numpy, so the Python side reads it without copying through objects)::

    keys[side, M], vals[side, M]  open-addressing hash table per side (side 0 bids, 1 asks),
                                  key = price ticks (> 0; 0 marks an empty slot), val = lots;
                                  a deleted level keeps its key with val 0 (a tombstone)
    top[side, TOPCAP]             the side's best keys, ascending, best LAST; bids as +ticks,
                                  asks as -ticks (same invariant as Book: every live key
                                  >= top[side, 0] is in the list)
    st[side, ST_*]                used slots, live levels, top count, last error position

The table is rehashed (outside the compiled call) when used slots pass 70% of M. Semantics are
Book's exactly; tests run both on every recording and compare.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import numpy as np

from procs.book.frames import FRAME_NOT_HANDLED, FRAME_RESIZE
from procs.book.kernels import (
    _EXTRA_TOP,
    _POW10,
    ST_ERR,
    ST_LIVE,
    ST_TOP,
    ST_USED,
    _fill_side,
    _find,
    _rebuild_top,
    _rehash,
    apply_depth,
    apply_levels,
    fill_record,
    fill_top,
    probe_levels,
)
from procs.core.instruments import Instrument, int_to_decimal

_encode = msgspec.json.Encoder().encode



class FastBook:
    """Book with a compiled hot path; same public methods as ``procs.book.book.Book``.

    ``apply`` takes each side as raw JSON bytes (``msgspec.Raw`` from a venue codec's
    ``raw_levels`` decode: no per-level Python objects at all) or as a list of
    (price, qty) strings, which is re-encoded once and takes the same compiled path.
    """

    def __init__(self, instrument: Instrument, keep: int = 64, capacity: int = 1 << 14) -> None:
        if capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of 2: capacity={capacity}")
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.keep = keep
        self._pscale = instrument.price_scale
        self._qscale = instrument.qty_scale
        self._keys = np.zeros((2, capacity), np.int64)
        self._vals = np.zeros((2, capacity), np.int64)
        self._top = np.zeros((2, 2 * keep + _EXTRA_TOP), np.int64)
        self._st = np.zeros((2, 4), np.int64)
        self._limit = int(capacity * 0.7)
        self.bad_text = ""
        self.crossed = False  # set by apply: the compiled call checks it for free

    # -- building --------------------------------------------------------------------------
    def clear(self) -> None:
        self._keys[:] = 0
        self._vals[:] = 0
        self._st[:] = 0
        self.crossed = False

    def load_snapshot(self, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> bool:
        self.clear()
        need = 1 << max(14, (4 * (len(bids) + len(asks))).bit_length())
        if need > self._keys.shape[1]:
            self._resize(need)
        if not self.apply(bids, asks):
            self.clear()
            return False
        return True

    def apply(self, bids: bytes | Sequence[tuple[str, str]], asks: bytes | Sequence[tuple[str, str]]) -> bool:
        """Apply one diff's levels; False on bad text (the book must then be rebuilt)."""
        b = bytes(bids) if type(bids) is msgspec.Raw else bids if type(bids) is bytes else _encode(bids)
        a = bytes(asks) if type(asks) is msgspec.Raw else asks if type(asks) is bytes else _encode(asks)
        if (len(b) + len(a)) >> 3 > self._keys.shape[1] - self._limit:  # a huge message: room first
            self._resize(self._keys.shape[1] << 1)
        rc = apply_depth(b, a, self._keys, self._vals, self._top, self._st, self._pscale, self._qscale,
                         self.keep, _POW10)
        st = self._st
        if st[0, ST_USED] > self._limit or st[1, ST_USED] > self._limit:
            self._resize(self._keys.shape[1])
        if rc < 0:
            side, buf = (0, b) if rc == -1 else (1, a)
            pos = int(st[side, ST_ERR])
            end = buf.find(b"]", pos)
            self.bad_text = repr(buf[pos : end + 1 if end >= 0 else pos + 40].decode("utf-8", "replace"))
            return False
        self.crossed = rc == 1
        return True

    def apply_frame(self, kernel: Callable, raw: bytes, i: int, sym: bytes, last_id: int, out: np.ndarray) -> int:
        """Parse and apply a whole depth frame in one compiled call with a venue's frame kernel
        (the live hot path: no message object, no level objects; ``procs.book.frames`` states the
        kernel's contract). ``raw[i]`` closes the frame's routing key; ``sym`` is the symbol as
        the frame spells it; the frame must continue the book (``last_id``). Returns 0 applied,
        1 applied and crossed, -1/-2 bad text (``bad_text`` says which; rebuild the book), or
        ``FRAME_NOT_HANDLED`` when nothing was changed (another shape or not the next diff).
        ``out`` gets the frame's ids and times (``frames.OUT_*``).
        """
        if len(raw) >> 3 > self._keys.shape[1] - self._limit:
            self._resize(self._keys.shape[1] << 1)
        rc = kernel(raw, i, sym, last_id, self._keys, self._vals, self._top, self._st, self._pscale,
                    self._qscale, self.keep, _POW10, out, self._limit)
        if rc == 0:  # the common case first
            self.crossed = False
            return rc
        if rc == FRAME_NOT_HANDLED:
            return rc
        if rc >= FRAME_RESIZE - 2:  # -2..1 with FRAME_RESIZE added
            self._resize(self._keys.shape[1])
            rc -= FRAME_RESIZE
        if rc < 0:
            pos = int(self._st[0 if rc == -1 else 1, ST_ERR])
            end = raw.find(b"]", pos)
            self.bad_text = repr(raw[pos : end + 1 if end >= 0 else pos + 40].decode("utf-8", "replace"))
            return rc
        self.crossed = rc == 1
        return rc

    def probe_frame(self, kernel: Callable, raw: bytes, i: int, sym: bytes, out: np.ndarray) -> bool:
        """``apply_frame``'s parse and table lookups on ``raw`` with a venue's probe kernel,
        changing nothing: keep-warm. False when the frame is not of the hot path's shape."""
        return kernel(raw, i, sym, self._keys, self._vals, self._top, self._st, self._pscale, self._qscale,
                      self.keep, _POW10, out) == 0

    def _resize(self, size: int) -> None:
        live = int(max(self._st[0, ST_LIVE], self._st[1, ST_LIVE]))
        while live * 2 > size * 0.35:  # keep the table at most ~35% live after a rehash
            size <<= 1
        self._keys, self._vals, counts = _rehash(self._keys, self._vals, size)
        self._st[:, ST_USED] = counts
        self._st[:, ST_LIVE] = counts
        self._limit = int(size * 0.7)

    def set_level(self, is_bid: bool, ticks: int, lots: int) -> None:
        """Set one level from integers (0 lots deletes); for the simulator and tests."""
        text = [(int_to_decimal(ticks, self._pscale), int_to_decimal(lots, self._qscale))]
        self.apply(text, []) if is_bid else self.apply([], text)

    # -- reading ---------------------------------------------------------------------------
    def _best(self, side: int) -> tuple[int, int] | None:
        cnt = int(self._st[side, ST_TOP])
        if cnt == 0:
            return None
        t = int(self._top[side, cnt - 1]) * (1 if side == 0 else -1)
        return t, int(self._vals[side, _find(self._keys[side], t, self._keys.shape[1] - 1)])

    def best_bid(self) -> tuple[int, int] | None:
        return self._best(0)

    def best_ask(self) -> tuple[int, int] | None:
        return self._best(1)

    def is_crossed(self) -> bool:
        return self.crossed

    def depth(self) -> tuple[int, int]:
        return int(self._st[0, ST_LIVE]), int(self._st[1, ST_LIVE])

    def __len__(self) -> int:
        return sum(self.depth())

    def _levels(self, side: int, n: int | None) -> list[tuple[int, int]]:
        cnt = int(self._st[side, ST_TOP])
        sign = 1 if side == 0 else -1
        if n is not None and (n <= cnt or cnt == self._st[side, ST_LIVE]):
            px = np.empty(min(n, cnt), np.int64)
            qty = np.empty_like(px)
            _fill_side(self._keys, self._vals, self._top, self._st, side, px, qty)
            return list(zip(px.tolist(), qty.tolist(), strict=True))
        live = self._vals[side] > 0
        ks, vs = self._keys[side][live], self._vals[side][live]
        order = np.argsort(-ks * sign, kind="stable")
        if n is not None:
            order = order[:n]
        return list(zip(ks[order].tolist(), vs[order].tolist(), strict=True))

    def bid_levels(self, n: int | None = None) -> list[tuple[int, int]]:
        return self._levels(0, n)

    def ask_levels(self, n: int | None = None) -> list[tuple[int, int]]:
        return self._levels(1, n)

    def fill_top(self, bid_px: np.ndarray, bid_qty: np.ndarray, ask_px: np.ndarray,
                 ask_qty: np.ndarray) -> tuple[int, int]:
        """Best ``len(bid_px)`` levels per side into caller int64 arrays, zero-padded."""
        if len(bid_px) > self._st[0, ST_TOP] < self._st[0, ST_LIVE] or \
                len(ask_px) > self._st[1, ST_TOP] < self._st[1, ST_LIVE]:
            self._widen(max(len(bid_px), len(ask_px)))
        return fill_top(self._keys, self._vals, self._top, self._st, bid_px, bid_qty, ask_px, ask_qty)

    def fill_record(self, rows: np.ndarray, slot: int, depth: int, sid: int, update_id: int, ts_event: int,
                    ts_recv: int, flags: int, seq: int) -> None:
        """The whole BookUpdate record with ``depth`` levels a side into ``rows[slot]`` (a ring's
        slots as int64 words) in one compiled call, every field but ``ts_pub`` (word 4), which
        the publisher stamps last."""
        if fill_record(self._keys, self._vals, self._top, self._st, rows, slot, depth, sid, update_id,
                       ts_event, ts_recv, flags, seq) < 0:
            self._widen(depth)
            fill_record(self._keys, self._vals, self._top, self._st, rows, slot, depth, sid, update_id,
                        ts_event, ts_recv, flags, seq)

    def _widen(self, n: int) -> None:
        self.keep = max(self.keep, n)
        if self._top.shape[1] < 2 * self.keep + _EXTRA_TOP:
            self._top = np.zeros((2, 2 * self.keep + _EXTRA_TOP), np.int64)
        for side in (0, 1):
            _rebuild_top(self._keys[side], self._vals[side], self._top[side], self._st[side],
                         1 if side == 0 else -1, self.keep)

    def top_text(self, n: int) -> tuple[list[list[str]], list[list[str]]]:
        ps, qs = self._pscale, self._qscale
        bids = [[int_to_decimal(t, ps), int_to_decimal(q, qs)] for t, q in self.bid_levels(n)]
        asks = [[int_to_decimal(t, ps), int_to_decimal(q, qs)] for t, q in self.ask_levels(n)]
        return bids, asks


def warm_up() -> float:
    """Compile (or load from numba's on-disk cache) every kernel now; returns the seconds taken.

    Call it at process start, before subscribing: the first compile takes seconds, which must
    not land on the first live diff. (A venue's frame kernels are compiled by its depth rule's
    ``warm_up``.)
    """
    import time

    from procs.core.instruments import instrument_for_scales

    t0 = time.perf_counter()
    fb = FastBook(instrument_for_scales("WARMUP", 2, 3), keep=4)
    fb.load_snapshot([("1.00", "1.000")], [("2.00", "1.000")])
    fb.apply(b'[["1.01","2.000"]]', b'[["2.00","0"]]')
    fb.apply(b'[["x"]]', b"[]")
    levels = b'[["1.02","1.000"]][]'
    apply_levels(levels, 0, 18, 18, 20, fb._keys, fb._vals, fb._top, fb._st, 2, 3, 4, _POW10, fb._limit)
    probe_levels(levels, 0, 18, 18, 20, fb._keys, fb._vals, fb._top, fb._st, 2, 3, 4, _POW10)
    z = np.zeros(2, np.int64)
    fb.fill_top(z, z.copy(), z.copy(), z.copy())
    fb.fill_record(np.zeros((2, 24), np.int64), 1, 4, 0, 3, 0, 0, 0, 1)
    fb.bid_levels(1)
    fb._resize(fb._keys.shape[1])
    return time.perf_counter() - t0
