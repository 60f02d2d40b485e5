"""BookSync: a venue's snapshot + diff procedure for one symbol, as a pure state machine.

No I/O and no clock: the caller feeds decoded diffs (``on_diff``) and REST snapshots
(``on_snapshot``) and acts on the returned ``SyncStatus`` (fetch a snapshot when
``needs_snapshot``). The same code runs in market_data, ``b25 book`` and the tests.

States::

    AWAITING_SNAPSHOT --snapshot--> AWAITING_FIRST --bridging diff--> LIVE
          ^   (diffs buffered)         (book = snapshot)                 |
          +----------- gap / bad input / crossed book / reset -----------+

``fast=True`` keeps the book in a ``FastBook`` (numba-compiled hot path); feed it diffs whose
level arrays stay raw JSON (a codec's ``raw_levels``) so they reach it as such.

Which diff bridges a snapshot and which continues the book is the venue's ``DepthRule``
(``procs/venue/<venue>/``): each diff is APPLY, STALE (older than the book or a duplicate:
dropped) or GAP. On a gap the diff that revealed it is kept in the buffer (it is valid against a
newer snapshot) and the state goes back to AWAITING_SNAPSHOT. Bad input (unconvertible text) and a
crossed book after an update also force a resync: the book no longer says what the exchange's
book is. Nothing here raises for bad input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from procs.book.book import Book
from procs.book.frames import FRAME_NOT_HANDLED, OUT_FIELDS, OUT_LAST_ID
from procs.core.instruments import Instrument
from procs.venue.messages import DepthDiff, DepthSnapshot

if TYPE_CHECKING:
    from procs.book.fastbook import FastBook

# what a diff is to the book, by the venue's rule
APPLY, STALE, GAP = 0, 1, 2


class DepthRule(Protocol):
    """A venue's sequencing of depth diffs (``procs/venue/<venue>/``)."""

    name: str
    frame_kernel: Any  # a compiled frame kernel (procs.book.frames) or None: no hot path
    probe_kernel: Any

    def bridges(self, diff: DepthDiff, snapshot_id: int) -> int:
        """What the first diff after a snapshot (``snapshot_id``: its last update id) is: APPLY,
        STALE or GAP (the snapshot is older than the diff)."""

    def follows(self, diff: DepthDiff, last_id: int) -> int:
        """What a diff is to a live book whose last applied diff ended at ``last_id``."""

    def why(self, diff: DepthDiff, ref_id: int, first: bool) -> str:
        """The gap in words with the ids (``first``: against the snapshot), for the log."""

    def warm_up(self) -> None:
        """Compile the frame kernels now (process start), not on the first live diff."""


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
    """Keeps one symbol's ``Book`` equal to the venue's, by its ``DepthRule`` (module docstring)."""

    __slots__ = ("symbol", "rule", "book", "state", "last_u", "buffer", "max_buffer", "counters",
                 "resolve", "keep", "last_error", "fast", "_frame_out", "frame_fields", "_follows", "_kernel")

    def __init__(self, symbol: str, rule: DepthRule, instrument: Instrument | None = None,
                 resolve: InstrumentResolver | None = None, keep: int = 64,
                 max_buffer: int = 100_000, fast: bool = False) -> None:
        if instrument is None and resolve is None:
            raise ValueError(f"need an instrument or a resolver: symbol={symbol}")
        self.symbol = symbol
        self.rule = rule
        self._follows = rule.follows
        self._kernel = rule.frame_kernel if fast else None
        self.keep = keep
        self.fast = fast
        self.book: Book | FastBook | None = self._new_book(instrument) if instrument is not None else None
        self.resolve = resolve
        self.state = SyncState.AWAITING_SNAPSHOT
        self.last_u = -1
        self.buffer: deque[DepthDiff] = deque()
        self.max_buffer = max_buffer
        self.counters = SyncCounters()
        self.last_error = ""  # why the last resync was needed, for the caller's one log line
        self._frame_out = np.zeros(len(OUT_FIELDS), np.int64)
        # the last apply_frame's ids and times as Python ints (a memoryview over the kernel's out)
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
    def on_diff(self, ev: DepthDiff) -> SyncStatus:
        """Feed one diff in arrival order."""
        if self.state is _LIVE:
            st = self._follows(ev, self.last_u)
            if st == APPLY:  # the common case, first
                return self._apply(ev)
            if st == STALE:
                self.counters.stale += 1
                return SyncStatus.STALE
            return self._gap(ev, self.rule.why(ev, self.last_u, False))
        if self.state == SyncState.AWAITING_FIRST:
            return self._first(ev)
        self._buffer(ev)
        return SyncStatus.BUFFERED

    def apply_frame(self, raw: bytes, i: int, sym: bytes) -> SyncStatus | None:
        """The live hot path: a raw depth frame applied without decoding it into objects
        (``FastBook.apply_frame`` with the rule's frame kernel), when the book is LIVE and the
        frame is the next diff in the venue's exact shape. None when it did not apply (another
        state, no kernel, not ``fast``, another shape, or not the next diff): nothing changed, so
        the caller decodes the frame and calls ``on_diff``, which applies the same rules.
        ``frame_fields`` then holds the frame's ids and times (``procs.book.frames.OUT_*``).
        """
        kernel = self._kernel
        if self.state is not _LIVE or kernel is None:
            return None
        book = self.book
        rc = book.apply_frame(kernel, raw, i, sym, self.last_u, self._frame_out)  # type: ignore[union-attr]
        if rc == FRAME_NOT_HANDLED:
            return None
        u = self.frame_fields[OUT_LAST_ID]
        if rc < 0:
            return self._resync(None, SyncStatus.BAD_INPUT, f"bad level text {book.bad_text} at u={u}")  # type: ignore[union-attr]
        if rc == 1:
            return self._resync(None, SyncStatus.CROSSED, f"crossed book after u={u}")
        self.last_u = u
        self.counters.applied += 1
        return SyncStatus.APPLIED

    def probe_frame(self, raw: bytes, i: int, sym: bytes, out: np.ndarray) -> bool:
        """``apply_frame``'s parse and lookups on ``raw``, changing nothing (keep-warm); False
        when there is no live fast book or the frame is not of the hot path's shape."""
        kernel = self.rule.probe_kernel
        book = self.book
        if self.state is not _LIVE or kernel is None or not self.fast or book is None:
            return False
        return book.probe_frame(kernel, raw, i, sym, out)  # type: ignore[union-attr]

    def _first(self, ev: DepthDiff) -> SyncStatus:
        snap_id = self.last_u  # holds the snapshot's id while AWAITING_FIRST
        st = self.rule.bridges(ev, snap_id)
        if st == STALE:
            self.counters.stale += 1
            return SyncStatus.STALE
        if st == GAP:
            return self._gap(ev, self.rule.why(ev, snap_id, True))
        return self._apply(ev)

    def _apply(self, ev: DepthDiff) -> SyncStatus:
        book = self.book
        assert book is not None  # a snapshot made it before any diff can be applied
        if not book.apply(ev.bids, ev.asks):
            return self._resync(ev, SyncStatus.BAD_INPUT, f"bad level text {book.bad_text} at u={ev.last_id}")
        if book.is_crossed():
            return self._resync(ev, SyncStatus.CROSSED, f"crossed book after u={ev.last_id}")
        self.last_u = ev.last_id
        self.state = SyncState.LIVE
        self.counters.applied += 1
        return SyncStatus.APPLIED

    def _gap(self, ev: DepthDiff, why: str) -> SyncStatus:
        self.counters.gaps += 1
        self.last_error = why
        self.state = SyncState.AWAITING_SNAPSHOT
        self.counters.resyncs += 1
        self.buffer.clear()
        self._buffer(ev)  # valid against the next snapshot
        return SyncStatus.GAP

    def _resync(self, ev: DepthDiff | None, status: SyncStatus, why: str) -> SyncStatus:
        if status == SyncStatus.BAD_INPUT:
            self.counters.bad_input += 1
        else:
            self.counters.crossed += 1
        self.last_error = why
        self.state = SyncState.AWAITING_SNAPSHOT
        self.counters.resyncs += 1
        self.buffer.clear()  # the bad diff is not kept: a new snapshot covers it
        return status

    def _buffer(self, ev: DepthDiff) -> None:
        if len(self.buffer) >= self.max_buffer:
            self.buffer.popleft()  # the oldest is the first a new snapshot makes stale
            self.counters.buffer_overflow += 1
        self.buffer.append(ev)
        self.counters.buffered += 1

    # -- snapshots -------------------------------------------------------------------------
    def on_snapshot(self, snap: DepthSnapshot,
                    on_applied: Callable[[DepthDiff], None] | None = None) -> SyncStatus:
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
            self.last_error = f"bad level text {self.book.bad_text} in snapshot L={snap.last_id}"
            self.state = SyncState.AWAITING_SNAPSHOT
            return SyncStatus.BAD_INPUT
        if self.book.is_crossed():
            self.counters.crossed += 1
            self.last_error = f"crossed snapshot L={snap.last_id}"
            self.state = SyncState.AWAITING_SNAPSHOT
            return SyncStatus.CROSSED
        self.state = SyncState.AWAITING_FIRST
        self.last_u = snap.last_id
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
