"""Binance's USD-M combined-stream depth frame parsed in one compiled call, for FastBook's live
hot path: the frame kernel and the probe kernel of ``depth.CHAINED`` (``procs.book.frames``
states their contract). They parse the frame's ids and find its two level arrays, check that it
continues the book (``pu == last_u``), and hand the arrays to ``procs.book.kernels.apply_levels``
(numba inlines it here).
"""

from __future__ import annotations

import numba
import numpy as np

from procs.book.frames import (
    FRAME_NOT_HANDLED,
    OUT_FIELDS,
    OUT_FIRST_ID,
    OUT_LAST_ID,
    OUT_PREV_ID,
    OUT_TS_EVENT,
    OUT_TS_TRADE,
)
from procs.book.kernels import apply_levels, probe_levels

# (numba caches each function with its own file's timestamp: after changing procs/book/kernels.py,
# clear this file's cache too, or numba may keep a stale copy of the kernel it inlined)


def _pat(text: bytes) -> np.ndarray:
    return np.frombuffer(text, np.uint8).copy()


_P_HEAD = _pat(b'","data":{"e":"depthUpdate","E":')
_P_T = _pat(b',"T":')
_P_S = _pat(b',"s":"')
_P_UU = _pat(b',"U":')
_P_U = _pat(b',"u":')
_P_PU = _pat(b',"pu":')
_P_B = _pat(b',"b":')
_P_A = _pat(b',"a":')


@numba.njit(cache=True, nogil=True)
def _lit(buf: bytes, i: int, n: int, pat: np.ndarray) -> int:
    """i past ``pat`` when buf[i:] starts with it, else -1 (also when i is -1)."""
    m = pat.shape[0]
    if i < 0 or i + m > n:
        return -1
    for j in range(m):
        if buf[i + j] != pat[j]:
            return -1
    return i + m


@numba.njit(cache=True, nogil=True)
def _uint(buf: bytes, i: int, n: int, out: np.ndarray, k: int) -> int:
    """A plain unsigned integer of 1..18 digits at buf[i] into out[k]; i past it, or -1."""
    v = 0
    j = i
    while j < n and 48 <= buf[j] <= 57 and j - i < 18:
        v = v * 10 + (buf[j] - 48)
        j += 1
    if j == i or (j < n and 48 <= buf[j] <= 57):
        return -1
    out[k] = v
    return j


@numba.njit(cache=True, nogil=True)
def _field(buf: bytes, i: int, n: int, pat: np.ndarray, out: np.ndarray, k: int) -> int:
    """``pat`` then an unsigned integer into out[k]: i past both, or -1 (also when i is -1)."""
    if i < 0:
        return -1
    i = _lit(buf, i, n, pat)
    return -1 if i < 0 else _uint(buf, i, n, out, k)


@numba.njit(cache=True, nogil=True)
def _array_end(buf: bytes, i: int, n: int) -> int:
    """buf[i] opens a JSON array of arrays of plain strings: the index past its closing ``]``,
    or -1 (not that shape, an escape, or the frame ends first)."""
    if i >= n or buf[i] != 91:
        return -1
    depth = 0
    in_str = False
    while i < n:
        c = buf[i]
        if in_str:
            if c == 34:
                in_str = False
            elif c == 92:
                return -1
        elif c == 34:
            in_str = True
        elif c == 91:
            depth += 1
        elif c == 93:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


@numba.njit(cache=True, nogil=True)
def _frame_parts(buf: bytes, i: int, sym: bytes, out: np.ndarray) -> tuple[int, int, int, int]:
    """The exact shape ``apply_frame`` takes, from ``buf[i]`` (the quote closing the stream name):
    U, u, pu, E, T into ``out`` and the bounds (b0, b1, a0, a1) of the two level arrays, or
    b0 = -1 when the frame is of any other shape."""
    n = len(buf)
    i = _field(buf, i, n, _P_HEAD, out, OUT_TS_EVENT)
    i = _field(buf, i, n, _P_T, out, OUT_TS_TRADE)
    i = _lit(buf, i, n, _P_S)
    if i < 0 or i + len(sym) + 1 > n:
        return -1, -1, -1, -1
    for j in range(len(sym)):
        if buf[i + j] != sym[j]:
            return -1, -1, -1, -1
    i += len(sym)
    if buf[i] != 34:
        return -1, -1, -1, -1
    i = _field(buf, i + 1, n, _P_UU, out, OUT_FIRST_ID)
    i = _field(buf, i, n, _P_U, out, OUT_LAST_ID)
    i = _field(buf, i, n, _P_PU, out, OUT_PREV_ID)
    b0 = _lit(buf, i, n, _P_B)
    b1 = _array_end(buf, b0, n) if b0 >= 0 else -1
    a0 = _lit(buf, b1, n, _P_A)
    a1 = _array_end(buf, a0, n) if a0 >= 0 else -1
    if a1 < 0 or a1 + 2 != n or buf[a1] != 125 or buf[a1 + 1] != 125:
        return -1, -1, -1, -1
    return b0, b1, a0, a1


@numba.njit(cache=True, nogil=True)
def apply_frame(buf: bytes, i: int, sym: bytes, last_u: int, keys: np.ndarray, vals: np.ndarray,
                top: np.ndarray, st: np.ndarray, pscale: int, qscale: int, keep: int, pow10: np.ndarray,
                out: np.ndarray, limit: int) -> int:
    """A USD-M/COIN-M combined depth frame, ``buf[i]`` being the quote that closes its stream name
    (the frame kernel ``procs.book.frames`` describes).

    Only the exchange's exact shape (``{"stream":..,"data":{"e":"depthUpdate","E":..,"T":..,
    "s":sym,"U":..,"u":..,"pu":last_u,"b":[..],"a":[..]}}``) that continues the book (``pu ==
    last_u``) is applied; anything else returns FRAME_NOT_HANDLED having changed nothing, and the
    caller decodes the frame the general way."""
    b0, b1, a0, a1 = _frame_parts(buf, i, sym, out)
    if b0 < 0 or out[OUT_PREV_ID] != last_u:
        return FRAME_NOT_HANDLED
    return apply_levels(buf, b0, b1, a0, a1, keys, vals, top, st, pscale, qscale, keep, pow10, limit)


@numba.njit(cache=True, nogil=True)
def probe_frame(buf: bytes, i: int, sym: bytes, keys: np.ndarray, vals: np.ndarray, top: np.ndarray,
                st: np.ndarray, pscale: int, qscale: int, keep: int, pow10: np.ndarray, out: np.ndarray) -> int:
    """``apply_frame``'s parse and every level's table lookup, changing nothing: market_data's
    keep-warm. 0, or FRAME_NOT_HANDLED when the frame is not of the hot path's shape."""
    b0, b1, a0, a1 = _frame_parts(buf, i, sym, out)
    if b0 < 0:
        return FRAME_NOT_HANDLED
    return probe_levels(buf, b0, b1, a0, a1, keys, vals, top, st, pscale, qscale, keep, pow10)


def compile_kernels() -> None:
    """Compile (or load from numba's on-disk cache) both kernels now."""
    from procs.book.fastbook import FastBook
    from procs.core.instruments import instrument_for_scales

    fb = FastBook(instrument_for_scales("WARMUP", 2, 3), keep=4)
    fb.load_snapshot([("1.00", "1.000")], [("2.00", "1.000")])
    frame = (b'{"stream":"warmup@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"WARMUP","U":2,"u":3,'
             b'"pu":1,"b":[["1.02","1.000"]],"a":[]}}')
    out = np.zeros(len(OUT_FIELDS), np.int64)
    fb.apply_frame(apply_frame, frame, frame.find(b'"', 11), b"WARMUP", 1, out)
    fb.probe_frame(probe_frame, frame, frame.find(b'"', 11), b"WARMUP", out)
