"""Numba kernels of FastBook: exact decimal parsing of raw JSON level arrays, the per-side hash
table and top list, crossed-book check, top-N fill. ``procs.book.fastbook`` calls them, and a
venue's frame kernel calls ``apply_levels`` / ``probe_levels`` (``procs.book.frames``).

Layout and invariants are described in ``procs.book.fastbook``. Every kernel returns status
codes, never raises, and is cached on disk by numba (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

from procs.book.frames import FRAME_RESIZE

ST_USED, ST_LIVE, ST_TOP, ST_ERR = 0, 1, 2, 3  # columns of st[side]
_HASH_MUL = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64 (Fibonacci hashing)
_MIN_KEY = -(1 << 62)
_EXTRA_TOP = 4096  # room above 2*keep for one message's inserts before a rebuild is forced
_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _find(krow: np.ndarray, key: int, mask: int) -> int:
    h = key * _HASH_MUL
    i = (h ^ (h >> 29)) & mask
    while True:
        k = krow[i]
        if k == key:
            return i
        if k == 0:
            return -i - 1
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def _skip_ws(buf: bytes, i: int, n: int) -> int:
    while i < n and (buf[i] == 32 or buf[i] == 10 or buf[i] == 13 or buf[i] == 9):
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _number(buf: bytes, i: int, n: int, scale: int, pow10: np.ndarray) -> tuple[int, int]:
    """Parse ``"123.45"`` at buf[i] (the opening quote) exactly; (value, next i) or (-1, i)."""
    if i >= n or buf[i] != 34:
        return -1, i
    i += 1
    val = 0
    whole = 0
    frac = -1  # decimals kept so far; -1 = no dot yet
    seen_frac = 0
    while i < n:
        c = buf[i]
        if c == 34:
            break
        if c == 46:
            if frac >= 0 or whole == 0:
                return -1, i
            frac = 0
        elif 48 <= c <= 57:
            if frac < 0:
                whole += 1
                if whole + scale > 18:  # would not fit int64 exactly
                    return -1, i
                val = val * 10 + (c - 48)
            else:
                seen_frac += 1
                if frac < scale:
                    val = val * 10 + (c - 48)
                    frac += 1
                elif c != 48:  # a non-zero digit beyond the scale: refuse, never round
                    return -1, i
        else:
            return -1, i  # sign, exponent, NaN, escape, anything else
        i += 1
    if i >= n or whole == 0 or (frac >= 0 and seen_frac == 0):
        return -1, i
    if frac < 0:
        frac = 0
    return val * pow10[scale - frac], i + 1


@numba.njit(cache=True, nogil=True)
def _top_remove(trow: np.ndarray, cnt: int, k: int) -> int:
    lo, hi = 0, cnt
    while lo < hi:
        mid = (lo + hi) >> 1
        if trow[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    if lo < cnt and trow[lo] == k:
        for j in range(lo, cnt - 1):
            trow[j] = trow[j + 1]
        return cnt - 1
    return cnt


@numba.njit(cache=True, nogil=True)
def _top_insert(trow: np.ndarray, cnt: int, k: int) -> int:
    j = cnt
    while j > 0 and trow[j - 1] > k:
        trow[j] = trow[j - 1]
        j -= 1
    trow[j] = k
    return cnt + 1


@numba.njit(cache=True, nogil=True)
def _rebuild_top(krow: np.ndarray, vrow: np.ndarray, trow: np.ndarray, srow: np.ndarray,
                 sign: int, keep: int) -> None:
    """The side's best ``keep`` live keys (key * sign, ascending, best last) into ``trow``.

    One pass over the table keeping a sorted buffer of the best so far: a key enters only when
    it beats the buffer's worst (~keep * ln(live / keep) times), instead of allocating and
    sorting every live level on the frame that drained the top list
    (docs/decisions/014-market-data-two-compiled-calls.md)."""
    m = 0
    for i in range(krow.shape[0]):
        if vrow[i] > 0:
            k = krow[i] * sign
            if m < keep:
                j = m
                while j > 0 and trow[j - 1] > k:
                    trow[j] = trow[j - 1]
                    j -= 1
                trow[j] = k
                m += 1
            elif k > trow[0]:
                j = 0
                while j + 1 < m and trow[j + 1] < k:
                    trow[j] = trow[j + 1]
                    j += 1
                trow[j] = k
    srow[ST_TOP] = m


# the level step below is repeated in procs/exchange_sim/market/fast_kernels.py: one shared numba
# step cost a quarter of this kernel's throughput (docs/decisions/049-book-level-loop-kept-twice.md)
@numba.njit(cache=True, nogil=True)
def _apply_side(buf: bytes, i0: int, n: int, side: int, keys: np.ndarray, vals: np.ndarray,
                top: np.ndarray, st: np.ndarray, pscale: int, qscale: int, keep: int, pow10: np.ndarray,
                dry: bool = False) -> int:
    """Apply the JSON level array in buf[i0:n]; 0 ok, -1 bad text (position in st[side, ST_ERR]).

    ``dry``: parse and look every level up, change nothing (``probe_frame``: keep-warm)."""
    krow, vrow, trow, srow = keys[side], vals[side], top[side], st[side]
    sign = 1 if side == 0 else -1
    mask = krow.shape[0] - 1
    cap = trow.shape[0]
    cnt = srow[ST_TOP]
    lo = trow[0] if cnt > 0 else _MIN_KEY
    overflow = False
    i = _skip_ws(buf, i0, n)
    if i >= n or buf[i] != 91:
        srow[ST_ERR] = i
        return -1
    i = _skip_ws(buf, i + 1, n)
    if i < n and buf[i] == 93:
        return 0
    while True:
        if i >= n or buf[i] != 91:
            srow[ST_ERR] = i
            return -1
        start = i
        t, i = _number(buf, _skip_ws(buf, i + 1, n), n, pscale, pow10)
        if t <= 0:
            srow[ST_ERR] = start
            return -1
        i = _skip_ws(buf, i, n)
        if i >= n or buf[i] != 44:
            srow[ST_ERR] = start
            return -1
        q, i = _number(buf, _skip_ws(buf, i + 1, n), n, qscale, pow10)
        if q < 0:
            srow[ST_ERR] = start
            return -1
        i = _skip_ws(buf, i, n)
        if i >= n or buf[i] != 93:
            srow[ST_ERR] = start
            return -1
        # -- the level: table, then the top list (fixed lo for the message, as in Book) --
        slot = _find(krow, t, mask)
        if dry:
            if slot >= 0 and vrow[slot] == q:
                srow[ST_ERR] = i  # a store the compiler cannot drop: the lookup really runs
            i = _skip_ws(buf, i + 1, n)
            if i < n and buf[i] == 44:
                i = _skip_ws(buf, i + 1, n)
                continue
            return 0
        existed = False
        if slot >= 0:
            existed = vrow[slot] > 0
            vrow[slot] = q
            if q > 0 and not existed:
                srow[ST_LIVE] += 1
            elif q == 0 and existed:
                srow[ST_LIVE] -= 1
        elif q > 0:
            slot = -slot - 1
            krow[slot] = t
            vrow[slot] = q
            srow[ST_USED] += 1
            srow[ST_LIVE] += 1
        k = t * sign
        if q > 0:
            if not existed and k >= lo:  # >= : see Book._apply
                if cnt < cap:
                    cnt = _top_insert(trow, cnt, k)
                else:
                    overflow = True
        elif existed and k >= lo:
            cnt = _top_remove(trow, cnt, k)
        i = _skip_ws(buf, i + 1, n)
        if i < n and buf[i] == 44:
            i = _skip_ws(buf, i + 1, n)
            continue
        if i < n and buf[i] == 93:
            break
        srow[ST_ERR] = i
        srow[ST_TOP] = cnt
        return -1
    srow[ST_TOP] = cnt
    if overflow or (cnt < (keep >> 1) and srow[ST_LIVE] > cnt):
        _rebuild_top(krow, vrow, trow, srow, sign, keep)
    elif cnt > 2 * keep:
        drop = cnt - keep
        for j in range(keep):
            trow[j] = trow[j + drop]
        srow[ST_TOP] = keep
    return 0


@numba.njit(cache=True, nogil=True)
def apply_depth(bbuf: bytes, abuf: bytes, keys: np.ndarray, vals: np.ndarray, top: np.ndarray,
                st: np.ndarray, pscale: int, qscale: int, keep: int, pow10: np.ndarray) -> int:
    """Apply a diff's bid and ask arrays: 0 ok, 1 crossed, -1 bad bid text, -2 bad ask text."""
    if _apply_side(bbuf, 0, len(bbuf), 0, keys, vals, top, st, pscale, qscale, keep, pow10) < 0:
        return -1
    if _apply_side(abuf, 0, len(abuf), 1, keys, vals, top, st, pscale, qscale, keep, pow10) < 0:
        return -2
    return _crossed(top, st)


@numba.njit(cache=True, nogil=True)
def _crossed(top: np.ndarray, st: np.ndarray) -> int:
    nb, na = st[0, ST_TOP], st[1, ST_TOP]
    if nb > 0 and na > 0 and top[0, nb - 1] >= -top[1, na - 1]:
        return 1
    return 0


# -- a venue frame's two level arrays in one call (procs.book.frames: the frame kernel's contract) ---


@numba.njit(cache=True, nogil=True)
def apply_levels(buf: bytes, b0: int, b1: int, a0: int, a1: int, keys: np.ndarray, vals: np.ndarray,
                 top: np.ndarray, st: np.ndarray, pscale: int, qscale: int, keep: int, pow10: np.ndarray,
                 limit: int) -> int:
    """Apply the bid array ``buf[b0:b1]`` and the ask array ``buf[a0:a1]`` (JSON level arrays, as
    ``apply_depth`` takes them) in place in a venue's frame: 0 applied, 1 applied and crossed,
    -1/-2 bad bid/ask text (the book is half-changed: rebuild it). When a side's table now uses
    more than ``limit`` slots, FRAME_RESIZE is added to the code: the caller rehashes (one check
    here instead of numpy reads in Python on every frame)."""
    if _apply_side(buf, b0, b1, 0, keys, vals, top, st, pscale, qscale, keep, pow10) < 0:
        rc = -1
    elif _apply_side(buf, a0, a1, 1, keys, vals, top, st, pscale, qscale, keep, pow10) < 0:
        rc = -2
    else:
        rc = _crossed(top, st)
    if st[0, ST_USED] > limit or st[1, ST_USED] > limit:
        rc += FRAME_RESIZE
    return rc


@numba.njit(cache=True, nogil=True)
def probe_levels(buf: bytes, b0: int, b1: int, a0: int, a1: int, keys: np.ndarray, vals: np.ndarray,
                 top: np.ndarray, st: np.ndarray, pscale: int, qscale: int, keep: int, pow10: np.ndarray) -> int:
    """``apply_levels``'s parse and every level's table lookup, changing nothing (except
    st[side, ST_ERR], a scratch field): market_data's keep-warm keeps the code and the book's
    table lines the next frame will touch in cache. Returns 0."""
    _apply_side(buf, b0, b1, 0, keys, vals, top, st, pscale, qscale, keep, pow10, True)
    _apply_side(buf, a0, a1, 1, keys, vals, top, st, pscale, qscale, keep, pow10, True)
    return 0


@numba.njit(cache=True, nogil=True)
def _fill_side(keys: np.ndarray, vals: np.ndarray, top: np.ndarray, st: np.ndarray, side: int,
               px: np.ndarray, qty: np.ndarray) -> int:
    mask = keys.shape[1] - 1
    cnt = st[side, ST_TOP]
    n = min(px.shape[0], cnt)
    for j in range(n):
        k = top[side, cnt - 1 - j]
        t = k if side == 0 else -k
        px[j] = t
        qty[j] = vals[side, _find(keys[side], t, mask)]
    for j in range(n, px.shape[0]):
        px[j] = 0
        qty[j] = 0
    return n


@numba.njit(cache=True, nogil=True)
def fill_top(keys: np.ndarray, vals: np.ndarray, top: np.ndarray, st: np.ndarray, bp: np.ndarray,
             bq: np.ndarray, ap: np.ndarray, aq: np.ndarray) -> tuple[int, int]:
    """Best levels per side into the caller's arrays (best first, zero-padded)."""
    return _fill_side(keys, vals, top, st, 0, bp, bq), _fill_side(keys, vals, top, st, 1, ap, aq)


@numba.njit(cache=True, nogil=True)
def fill_record(keys: np.ndarray, vals: np.ndarray, top: np.ndarray, st: np.ndarray, rows: np.ndarray,
                slot: int, depth: int, sid: int, update_id: int, ts_event: int, ts_recv: int, flags: int,
                seq: int) -> int:
    """A whole BookUpdate record (``procs.core.messages.book_update_dtype``) into ``rows[slot]``
    (the ring's slots as int64 words), all but ``ts_pub`` (word 4: the caller stamps it last).
    Returns n_bids | n_asks << 32, or -1 (nothing written) when a side's top list holds fewer
    than ``depth`` levels while the book has more: the caller widens it and calls again."""
    for side in range(2):
        if depth > st[side, ST_TOP] and st[side, ST_TOP] < st[side, ST_LIVE]:
            return -1
    r = rows[slot]
    r[0] = sid
    r[1] = update_id
    r[2] = ts_event
    r[3] = ts_recv
    r[6] = flags
    r[7] = seq
    nb = _fill_side(keys, vals, top, st, 0, r[8:8 + depth], r[8 + depth:8 + 2 * depth])
    na = _fill_side(keys, vals, top, st, 1, r[8 + 2 * depth:8 + 3 * depth], r[8 + 3 * depth:8 + 4 * depth])
    r[5] = nb | (na << 32)
    return r[5]


@numba.njit(cache=True, nogil=True)
def _rehash(keys: np.ndarray, vals: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nk = np.zeros((2, size), dtype=np.int64)
    nv = np.zeros((2, size), dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    mask = size - 1
    for side in range(2):
        for i in range(keys.shape[1]):
            if vals[side, i] > 0:
                s = -_find(nk[side], keys[side, i], mask) - 1
                nk[side, s] = keys[side, i]
                nv[side, s] = vals[side, i]
                counts[side] += 1
    return nk, nv, counts
