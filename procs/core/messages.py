"""Ring records: one aligned numpy dtype per event, named after it (STYLE.md examples 2-3).

Market data are nouns (``BookUpdate``, ``Trade``). Timestamps are int64 ns: ``ts_event`` from
the exchange (ms * 1e6), ``ts_recv`` when the frame arrived and ``ts_pub`` when the record was
published (both ``time.monotonic_ns()``: one clock for every process). Prices and quantities
are int64 ticks/lots of the symbol's Instrument; ``symbol_id`` indexes the configured symbols.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DEPTH = 20

# BookUpdate.flags
BOOK_SNAPSHOT = 1  # first record after a (re)sync
BOOK_RESYNCING = 2  # the symbol is resyncing: levels are the last good book


def book_update_dtype(depth: int = DEFAULT_DEPTH) -> np.dtype:
    """BookUpdate with ``depth`` levels per side, padded to a multiple of 64 bytes."""
    if not 1 <= depth <= 1000:
        raise ValueError(f"book depth must be 1..1000: depth={depth}")
    fields = [
        ("symbol_id", "<i8"), ("update_id", "<i8"), ("ts_event", "<i8"), ("ts_recv", "<i8"),
        ("ts_pub", "<i8"), ("n_bids", "<i4"), ("n_asks", "<i4"), ("flags", "<i8"),
        ("seq", "<i8"),  # per-symbol count of applied depth events (trace id with ts_recv)
        ("bid_px", "<i8", (depth,)), ("bid_qty", "<i8", (depth,)),
        ("ask_px", "<i8", (depth,)), ("ask_qty", "<i8", (depth,)),
    ]
    size = 64 + 4 * 8 * depth
    pad = (-size) % 64
    if pad:
        fields.append(("_pad", f"V{pad}"))
    dt = np.dtype(fields)
    assert dt.itemsize % 64 == 0
    return dt


BookUpdate = book_update_dtype()

Trade = np.dtype([
    ("symbol_id", "<i8"), ("trade_id", "<i8"), ("price", "<i8"), ("qty", "<i8"),
    ("ts_event", "<i8"), ("ts_recv", "<i8"), ("ts_pub", "<i8"),
    ("flags", "<i8"),  # bit 0: buyer is maker (the aggressor sold)
])
TRADE_BUYER_MAKER = 1

assert Trade.itemsize == 64
