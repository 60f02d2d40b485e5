"""The real recordings (Binance's formats) as the tests read them: a Rebuilder over the Binance
adapter's codec and recording readers."""

from __future__ import annotations

from typing import Any

from procs.book.rebuild import Rebuilder
from procs.venue.binance.market import MarketCodec
from procs.venue.binance.recordings import iter_frames, recorded_instruments

__all__ = ["iter_frames", "rebuilder", "recorded_instruments"]


def rebuilder(**kw: Any) -> Rebuilder:
    """A ``Rebuilder`` of Binance recordings (its keywords as the class takes them)."""
    return Rebuilder(MarketCodec(raw_levels=kw.get("fast", False)), recorded_instruments, **kw)
