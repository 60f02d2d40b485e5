"""Rebuilder: books for every symbol of a recording, from frames, with the same BookSync as live.

``b25 book``, the tests and the replay checks feed it ``procs.venue.messages.Frame``s (a
venue's ``Recordings``); it decodes each frame once with the venue's ``MarketCodec``, routes
snapshots and diffs to one ``BookSync`` per symbol (with the rule of the frame's market), and
calls back after every applied diff (and for every top-of-book message, for the tests'
cross-check).

Instruments for recordings: the venue's list when the symbol is in it (what its recordings hold,
or a file given by the caller), *widened* to the number of decimals the first snapshot's strings
carry. Why widen: an instrument list taken years before a recording can be coarser than the
recording (tick sizes change), and an exchange prints prices with a fixed number of decimals
per symbol, so the snapshot shows the precision the exchange used at the time. Not a generous
fixed scale such as 8: ticks then stop meaning exchange ticks, and int64 headroom shrinks for
large quantities. A later diff with more decimals than that scale is refused as bad input
(counted, reported, resync) — it means the instrument changed, which only a new instrument
can answer; it never happens in the recordings here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import msgspec

from procs.book.sync import BookSync, SyncState, SyncStatus
from procs.core.instruments import Instrument, instrument_for_scales
from procs.venue.messages import DepthDiff, DepthSnapshot, Frame, TopOfBook
from procs.venue.protocols import MarketCodec


class Problem(NamedTuple):
    """A resync the rebuild had to make: which symbol, what status, and why (with update ids)."""

    symbol: str
    status: SyncStatus
    why: str
    ts_recv_ns: int


def text_decimals(levels: list[tuple[str, str]], column: int) -> int:
    """Most decimals (as printed, trailing zeros included) in one column of a level list."""
    best = 0
    for lv in levels:
        s = lv[column]
        dot = s.find(".")
        if dot >= 0 and len(s) - dot - 1 > best:
            best = len(s) - dot - 1
    return best


def snapshot_resolver(instruments: dict[str, Instrument]) -> Callable[[str, DepthSnapshot], Instrument]:
    """A BookSync resolver: the venue's instruments widened to the snapshot's printed decimals (see above)."""

    def resolve(symbol: str, snap: DepthSnapshot) -> Instrument:
        ps = max(text_decimals(snap.bids, 0), text_decimals(snap.asks, 0))
        qs = max(text_decimals(snap.bids, 1), text_decimals(snap.asks, 1))
        known = instruments.get(symbol)
        if known is None:
            return instrument_for_scales(symbol, ps, qs)
        return msgspec.structs.replace(known, price_scale=max(ps, known.price_scale),
                                       qty_scale=max(qs, known.qty_scale))

    return resolve


class Rebuilder:
    """Feeds frames to one BookSync per symbol; reports applied diffs, tickers and problems."""

    def __init__(self, codec: MarketCodec, instruments_of: Callable[[str], dict[str, Instrument]], *,
                 symbols: set[str] | None = None, instruments: dict[str, dict[str, Instrument]] | None = None,
                 on_applied: Callable[[BookSync, DepthDiff], None] | None = None,
                 on_ticker: Callable[[BookSync, TopOfBook], None] | None = None,
                 on_problem: Callable[[Problem], None] | None = None, keep: int = 64,
                 fast: bool = False) -> None:
        """``codec`` decodes the frames (its ``raw_levels`` should match ``fast``);
        ``instruments_of(market)`` gives a market's instrument list unless ``instruments`` has it."""
        self.symbols = {s.upper() for s in symbols} if symbols else None
        self.decoder = codec
        self._instruments_of = instruments_of
        self._instruments = instruments if instruments is not None else {}
        self.on_applied = on_applied
        self.on_ticker = on_ticker
        self.on_problem = on_problem
        self.keep = keep
        self.fast = fast
        self.syncs: dict[str, BookSync] = {}
        self.problems: list[Problem] = []

    def _sync(self, symbol: str, market: str) -> BookSync:
        sync = self.syncs.get(symbol)
        if sync is None:
            if market not in self._instruments:
                self._instruments[market] = self._instruments_of(market)
            sync = BookSync(symbol, self.decoder.rule(market), resolve=snapshot_resolver(self._instruments[market]),
                            keep=self.keep, fast=self.fast)
            self.syncs[symbol] = sync
        return sync

    def feed(self, frame: Frame) -> None:
        """Decode one frame and route it; never raises for bad frames (they are counted)."""
        _, msg = self.decoder.decode(frame.raw)
        if msg is None:
            return
        if isinstance(msg, DepthDiff):
            if self.symbols is not None and msg.symbol not in self.symbols:
                return
            sync = self._sync(msg.symbol, frame.market)
            st = sync.on_diff(msg)
            if st == SyncStatus.APPLIED:
                if self.on_applied is not None:
                    self.on_applied(sync, msg)
            elif st >= SyncStatus.GAP:
                self._problem(sync, st, frame)
        elif isinstance(msg, DepthSnapshot):
            symbol = (frame.snapshot_symbol or msg.symbol).upper()
            if not symbol or (self.symbols is not None and symbol not in self.symbols):
                return
            sync = self._sync(symbol, frame.market)
            cb = self.on_applied
            st = sync.on_snapshot(msg, (lambda ev: cb(sync, ev)) if cb is not None else None)
            if st >= SyncStatus.GAP:
                self._problem(sync, st, frame)
        elif isinstance(msg, TopOfBook) and self.on_ticker is not None:
            sync = self.syncs.get(msg.symbol)
            if sync is not None and sync.book is not None:
                self.on_ticker(sync, msg)

    def _problem(self, sync: BookSync, st: SyncStatus, frame: Frame) -> None:
        p = Problem(sync.symbol, st, sync.last_error, frame.ts_recv_ns)
        self.problems.append(p)
        if self.on_problem is not None:
            self.on_problem(p)

    def unbridged(self) -> list[str]:
        """Symbols that had a problem and never became live again afterwards."""
        bad = {p.symbol for p in self.problems}
        return sorted(s for s in bad if self.syncs[s].state != SyncState.LIVE)
