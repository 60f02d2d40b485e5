"""The contract between ``FastBook`` and a venue's compiled frame kernel (the live hot path).

A venue whose depth frames have one exact shape may give its ``DepthRule`` a ``frame_kernel``: a
numba function ``(buf, i, sym, last_id, keys, vals, top, st, pscale, qscale, keep, pow10, out,
limit) -> code`` that parses a whole frame (``buf[i]`` closes its routing key; ``sym`` is the
symbol as the frame spells it), checks that it continues the book (``last_id``), writes the ids
and times below into ``out`` and applies its two level arrays with
``procs.book.kernels.apply_levels`` (which returns the code). Anything it does not take, it
leaves untouched and returns ``FRAME_NOT_HANDLED``: the caller then decodes the frame the
general way. ``probe_kernel`` is the same parse with ``probe_levels`` (keep-warm: no change).
"""

from __future__ import annotations

FRAME_NOT_HANDLED = 3  # nothing changed: decode the frame the general way
FRAME_RESIZE = 8  # added to the code when a side's table passed ``limit``: the caller rehashes
OUT_FIELDS = ("first_id", "last_id", "prev_id", "ts_event_ms", "ts_trade_ms")
OUT_FIRST_ID, OUT_LAST_ID, OUT_PREV_ID, OUT_TS_EVENT, OUT_TS_TRADE = range(len(OUT_FIELDS))
