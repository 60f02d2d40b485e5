"""BookSync: the exchange's snapshot + diff procedure for one symbol, as a pure state machine.

No I/O and no clock: the caller feeds decoded diffs (``on_diff``) and REST snapshots
(``on_snapshot``) and acts on the returned ``SyncStatus`` (fetch a snapshot when
``needs_snapshot``). The same code runs in market_data, ``b25 book`` and the tests.

States::

    AWAITING_SNAPSHOT --snapshot--> AWAITING_FIRST --bridging diff--> LIVE
          ^   (diffs buffered)         (book = snapshot)                 |
          +----------- gap / bad input / crossed book / reset -----------+

``fast=True`` keeps the book in a ``FastBook`` (numba-compiled hot path); feed it diffs from
``FrameDecoder(raw_levels=True)`` so the level arrays reach it as raw JSON.

Rules (docs/binance-usdm-protocol.md A4), ``L`` = snapshot ``lastUpdateId``:

* USD-M and COIN-M: drop ``u < L``; the first diff applied must have ``U <= L <= u`` (``u == L``
  occurs in real data and is applied); afterwards ``pu`` must equal the previous ``u``. A diff
  with ``u <=`` the previous ``u`` is a duplicate (stale, dropped); anything else is a gap.
  Update ids are global across symbols, so ``U == prev u + 1`` is *not* expected.
* Spot: drop ``u <= L``; first diff ``U <= L + 1 <= u`` (abutting ``U == L + 1`` is accepted);
  afterwards stale if ``u <= prev u``, gap if ``U > prev u + 1``.

On a gap the diff that revealed it is kept in the buffer (it is valid against a newer
snapshot) and the state goes back to AWAITING_SNAPSHOT. Bad input (unconvertible text) and a
crossed book after an update also force a resync: the book no longer says what the exchange's
book is. Nothing here raises for bad input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from procs.book.book import Book
from procs.book.messages import FRAME_NOT_HANDLED, OUT_FIELDS, OUT_LAST_U, DepthSnapshot, DepthUpdate
from procs.core.instruments import Instrument

if TYPE_CHECKING:
    from procs.book.fastbook import FastBook


class SyncState(IntEnum):
    AWAITING_SNAPSHOT = 0
    AWAITING_FIRST = 1
    LIVE = 2


class SyncStatus(IntEnum):
    """What one ``on_diff`` / ``on_snapshot`` did. The last three mean "resync needed"."""

    APPLIED = 0  # the book changed and is live
    BUFFERED = 1  # kept until a snapshot arrives
    STALE = 2  # older than the book (or a duplicate): dropped
    WAITING = 3  # snapshot loaded, no diff bridging it yet
    GAP = 4  # continuity broken, or the snapshot is older than every buffered diff
    BAD_INPUT = 5  # a price/quantity that is not an exact, non-negative decimal of the scale
    CROSSED = 6  # best bid >= best ask after an update


class SyncCounters:
    """Plain int counters, one per outcome; market_data copies them into shm counters."""

    __slots__ = ("applied", "buffered", "stale", "gaps", "bad_input", "crossed", "snapshots",
                 "resyncs", "buffer_overflow")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


_LIVE = SyncState.LIVE
InstrumentResolver = Callable[[str, DepthSnapshot], Instrument]


class BookSync:
    """Keeps one symbol's ``Book`` equal to the exchange's, by the rules in the module docstring."""

    __slots__ = ("symbol", "spot", "book", "state", "last_u", "buffer", "max_buffer", "counters",
                 "resolve", "keep", "last_error", "fast", "_frame_out", "frame_fields")

    def __init__(self, symbol: str, kind: str = "usdm", instrument: Instrument | None = None,
                 resolve: InstrumentResolver | None = None, keep: int = 64,
                 max_buffer: int = 100_000, fast: bool = False) -> None:
        if kind not in ("usdm", "coinm", "spot"):
            raise ValueError(f"unknown market kind: kind={kind!r}")
        if instrument is None and resolve is None:
            raise ValueError(f"need an instrument or a resolver: symbol={symbol}")
        self.symbol = symbol
        self.spot = kind == "spot"
        self.keep = keep
        self.fast = fast
        self.book: Book | FastBook | None = self._new_book(instrument) if instrument is not None else None
        self.resolve = resolve
        self.state = SyncState.AWAITING_SNAPSHOT
        self.last_u = -1
        self.buffer: deque[DepthUpdate] = deque()
        self.max_buffer = max_buffer
        self.counters = SyncCounters()
        self.last_error = ""  # why the last resync was needed, for the caller's one log line
        self._frame_out = np.zeros(len(OUT_FIELDS), np.int64)
        # the last apply_frame's U, u, pu, E, T as Python ints (a memoryview over the kernel's out)
        self.frame_fields = memoryview(self._frame_out)

    def _new_book(self, instrument: Instrument) -> Book | FastBook:
        if self.fast:
            from procs.book.fastbook import FastBook  # numba: imported only when asked for

            return FastBook(instrument, self.keep)
        return Book(instrument, self.keep)

    @property
    def needs_snapshot(self) -> bool:
        return self.state == SyncState.AWAITING_SNAPSHOT

    def reset(self) -> None:
        """Forget the book and the buffer (e.g. after a reconnect); wait for a new snapshot."""
        self.state = SyncState.AWAITING_SNAPSHOT
        self.buffer.clear()
        self.last_u = -1

    # -- diffs -----------------------------------------------------------------------------
    def on_diff(self, ev: DepthUpdate) -> SyncStatus:
        """Feed one diff in arrival order."""
        if self.state is _LIVE:
            if ev.pu == self.last_u and not self.spot:  # the common case, checked first
                return self._apply(ev)
            return self._live(ev)
        if self.state == SyncState.AWAITING_FIRST:
            return self._first(ev)
        self._buffer(ev)
        return SyncStatus.BUFFERED

    def apply_frame(self, raw: bytes, i: int, sym: bytes) -> SyncStatus | None:
        """The live hot path: a raw combined-stream depth frame applied without decoding it into
        objects (``FastBook.apply_frame``), when the book is LIVE and the frame is the next diff
        in the exchange's exact shape. None when it did not apply (another state or market
        kind, not ``fast``, another shape, or not ``pu == last_u``): nothing changed, so the
        caller decodes the frame and calls ``on_diff``, which applies the same rules.
        ``frame_fields`` then holds the frame's U, u, pu, E, T (``procs.book.messages.OUT_*``).
        """
        if self.state is not _LIVE or self.spot or not self.fast:
            return None
        book = self.book
        rc = book.apply_frame(raw, i, sym, self.last_u, self._frame_out)  # type: ignore[union-attr]
        if rc == FRAME_NOT_HANDLED:
            return None
        u = self.frame_fields[OUT_LAST_U]
        if rc < 0:
            return self._resync(None, SyncStatus.BAD_INPUT, f"bad level text {book.bad_text} at u={u}")  # type: ignore[union-attr]
        if rc == 1:
            return self._resync(None, SyncStatus.CROSSED, f"crossed book after u={u}")
        self.last_u = u
        self.counters.applied += 1
        return SyncStatus.APPLIED

    def _live(self, ev: DepthUpdate) -> SyncStatus:
        last = self.last_u
        if self.spot:
            if ev.u <= last:
                self.counters.stale += 1
                return SyncStatus.STALE
            if ev.U > last + 1:
                return self._gap(ev, f"spot gap: U={ev.U} > last_u+1={last + 1} u={ev.u}")
        elif ev.pu != last:
            if ev.u <= last:  # a duplicate or an old diff: the book already has it
                self.counters.stale += 1
                return SyncStatus.STALE
            return self._gap(ev, f"pu={ev.pu} != last_u={last} (U={ev.U} u={ev.u})")
        return self._apply(ev)

    def _first(self, ev: DepthUpdate) -> SyncStatus:
        snap_id = self.last_u  # holds L while AWAITING_FIRST
        if self.spot:
            if ev.u <= snap_id:
                self.counters.stale += 1
                return SyncStatus.STALE
            if ev.U > snap_id + 1:
                return self._gap(ev, f"first diff U={ev.U} > L+1={snap_id + 1} u={ev.u}")
        else:
            if ev.u < snap_id:
                self.counters.stale += 1
                return SyncStatus.STALE
            if ev.U > snap_id:
                return self._gap(ev, f"first diff U={ev.U} > L={snap_id} u={ev.u}")
        return self._apply(ev)

    def _apply(self, ev: DepthUpdate) -> SyncStatus:
        book = self.book
        assert book is not None  # a snapshot made it before any diff can be applied
        if not book.apply(ev.b, ev.a):
            return self._resync(ev, SyncStatus.BAD_INPUT, f"bad level text {book.bad_text} at u={ev.u}")
        if book.is_crossed():
            return self._resync(ev, SyncStatus.CROSSED, f"crossed book after u={ev.u}")
        self.last_u = ev.u
        self.state = SyncState.LIVE
        self.counters.applied += 1
        return SyncStatus.APPLIED

    def _gap(self, ev: DepthUpdate, why: str) -> SyncStatus:
        self.counters.gaps += 1
        self.last_error = why
        self.state = SyncState.AWAITING_SNAPSHOT
        self.counters.resyncs += 1
        self.buffer.clear()
        self._buffer(ev)  # valid against the next snapshot
        return SyncStatus.GAP

    def _resync(self, ev: DepthUpdate | None, status: SyncStatus, why: str) -> SyncStatus:
        if status == SyncStatus.BAD_INPUT:
            self.counters.bad_input += 1
        else:
            self.counters.crossed += 1
        self.last_error = why
        self.state = SyncState.AWAITING_SNAPSHOT
        self.counters.resyncs += 1
        self.buffer.clear()  # the bad diff is not kept: a new snapshot covers it
        return status

    def _buffer(self, ev: DepthUpdate) -> None:
        if len(self.buffer) >= self.max_buffer:
            self.buffer.popleft()  # the oldest is the first a new snapshot makes stale
            self.counters.buffer_overflow += 1
        self.buffer.append(ev)
        self.counters.buffered += 1

    # -- snapshots -------------------------------------------------------------------------
    def on_snapshot(self, snap: DepthSnapshot,
                    on_applied: Callable[[DepthUpdate], None] | None = None) -> SyncStatus:
        """Load a REST snapshot and replay the buffered diffs against it.

        ``on_applied`` is called after each buffered diff that is applied (``b25 book`` prints
        the book there). Returns APPLIED when the book is live, WAITING when no buffered diff
        bridges the snapshot yet, GAP when the snapshot is older than the buffered diffs (fetch
        a newer one), BAD_INPUT / CROSSED when the snapshot or a diff is unusable.
        """
        self.counters.snapshots += 1
        if self.book is None:
            assert self.resolve is not None
            self.book = self._new_book(self.resolve(self.symbol, snap))
        if not self.book.load_snapshot(snap.bids, snap.asks):
            self.counters.bad_input += 1
            self.last_error = f"bad level text {self.book.bad_text} in snapshot L={snap.lastUpdateId}"
            self.state = SyncState.AWAITING_SNAPSHOT
            return SyncStatus.BAD_INPUT
        if self.book.is_crossed():
            self.counters.crossed += 1
            self.last_error = f"crossed snapshot L={snap.lastUpdateId}"
            self.state = SyncState.AWAITING_SNAPSHOT
            return SyncStatus.CROSSED
        self.state = SyncState.AWAITING_FIRST
        self.last_u = snap.lastUpdateId
        result = SyncStatus.WAITING
        buffered = self.buffer
        self.buffer = deque()
        while buffered:
            ev = buffered.popleft()
            st = self.on_diff(ev)
            if st == SyncStatus.APPLIED:
                result = st
                if on_applied is not None:
                    on_applied(ev)
            elif st >= SyncStatus.GAP:
                # The rest stays buffered behind the diff that showed the gap (already re-buffered).
                self.buffer.extend(buffered)
                return st
        return result
