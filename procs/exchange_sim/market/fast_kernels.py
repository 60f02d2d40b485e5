"""Numba kernels of b25 backtest's exchange book: a depth event's levels, already integers, into
a ``FastBook``'s arrays (the same table, top list and rules as ``procs.book.kernels._apply_side``,
without the text parsing), one event at a time or a run of them at once."""

from __future__ import annotations

import numba
import numpy as np

from procs.book.kernels import (
    _MIN_KEY,
    ST_LIVE,
    ST_TOP,
    ST_USED,
    _crossed,
    _find,
    _rebuild_top,
    _top_insert,
    _top_remove,
)


# the level step and the settle repeat procs.book.kernels._apply_side's: one shared numba step cost
# a quarter of the book's throughput (docs/decisions/049-book-level-loop-kept-twice.md)
@numba.njit(cache=True, nogil=True)
def _apply_int_side(keys: np.ndarray, vals: np.ndarray, top: np.ndarray, st: np.ndarray, side: int,
                    px: np.ndarray, qty: np.ndarray, off: int, n: int, keep: int) -> None:
    krow, vrow, trow, srow = keys[side], vals[side], top[side], st[side]
    sign = 1 if side == 0 else -1
    mask = krow.shape[0] - 1
    cap = trow.shape[0]
    cnt = srow[ST_TOP]
    lo = trow[0] if cnt > 0 else _MIN_KEY
    overflow = False
    for j in range(off, off + n):
        t = px[j]
        q = qty[j]
        slot = _find(krow, t, mask)
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
            if not existed and k >= lo:  # >= : as Book._apply
                if cnt < cap:
                    cnt = _top_insert(trow, cnt, k)
                else:
                    overflow = True
        elif existed and k >= lo:
            cnt = _top_remove(trow, cnt, k)
    srow[ST_TOP] = cnt
    if overflow or (cnt < (keep >> 1) and srow[ST_LIVE] > cnt):
        _rebuild_top(krow, vrow, trow, srow, sign, keep)
    elif cnt > 2 * keep:
        drop = cnt - keep
        for j in range(keep):
            trow[j] = trow[j + drop]
        srow[ST_TOP] = keep


@numba.njit(cache=True, nogil=True)
def apply_levels(keys: np.ndarray, vals: np.ndarray, top: np.ndarray, st: np.ndarray, px: np.ndarray,
                 qty: np.ndarray, off: int, nb: int, na: int, keep: int) -> int:
    """One depth event's bids (``px/qty[off:off+nb]``) then asks: 0, or 1 when the book is crossed."""
    _apply_int_side(keys, vals, top, st, 0, px, qty, off, nb, keep)
    _apply_int_side(keys, vals, top, st, 1, px, qty, off + nb, na, keep)
    return _crossed(top, st)


@numba.njit(cache=True, nogil=True)
def quiet_run(keys: np.ndarray, vals: np.ndarray, top: np.ndarray, st: np.ndarray, px: np.ndarray,
              qty: np.ndarray, kind: np.ndarray, sid: np.ndarray, u: np.ndarray, pu: np.ndarray, off: np.ndarray,
              nb: np.ndarray,
              na: np.ndarray, e_ms: np.ndarray, x: np.ndarray, start: int, stop: int, symbol: int, last_u: int,
              keep: int, limit: int, t_limit: int, agg_is_trade: bool, out: np.ndarray) -> int:
    """Apply frames ``start..stop`` of one symbol at the exchange while nobody reacts to them
    (``procs.exchange_sim.inprocess.InProcessExchange.quiet_run`` says when): depth diffs into
    the book (older than the book: skipped, as the simulator skips them), trades and marks only
    noted. Stops before a frame at or after ``t_limit`` (exchange time ``x``), of another symbol,
    a snapshot, a diff that does not continue the book (``pu``: its previous u) or one the
    table has no room for. Returns the next frame not taken; ``out``
    gets (last u, last diff applied, last trade, last mark, diffs read, diffs applied, trades,
    last exchange event time ms, last frame taken that is not inert), -1 for none.

    Kinds (``procs.exchange_sim.market.recorded``): 0 inert, 1 depth, 2 trade, 3 aggTrade, 4 mark."""
    last_book = -1
    last_trade = -1
    last_mark = -1
    diffs = 0
    applied = 0
    trades = 0
    last_e = -1
    taken = -1
    i = start
    while i < stop:
        k = kind[i]
        if x[i] >= t_limit:
            break
        if k == 0:
            i += 1
            continue
        if sid[i] != symbol or k > 4:
            break
        taken = i
        if k == 1:
            n = nb[i] + na[i]
            if st[0, ST_USED] + n > limit or st[1, ST_USED] + n > limit:
                break
            if u[i] >= last_u and last_u != 0 and pu[i] >= 0 and pu[i] != last_u:
                break  # a gap in the recording: the caller decides
            diffs += 1
            if e_ms[i] != 0:
                last_e = e_ms[i]
            if u[i] >= last_u:
                _apply_int_side(keys, vals, top, st, 0, px, qty, off[i], nb[i], keep)
                _apply_int_side(keys, vals, top, st, 1, px, qty, off[i] + nb[i], na[i], keep)
                last_u = u[i]
                last_book = i
                applied += 1
        elif k == 2 or k == 3:
            if e_ms[i] != 0:
                last_e = e_ms[i]
            if k == 2 or agg_is_trade:
                trades += 1
                last_trade = i
        else:
            last_mark = i
        i += 1
    out[0] = last_u
    out[1] = last_book
    out[2] = last_trade
    out[3] = last_mark
    out[4] = diffs
    out[5] = applied
    out[6] = trades
    out[7] = last_e
    out[8] = taken
    return i


@numba.njit(cache=True, nogil=True)
def crossed(top: np.ndarray, st: np.ndarray) -> bool:
    return _crossed(top, st) == 1


@numba.njit(cache=True, nogil=True)
def watched_levels(px: np.ndarray, qty: np.ndarray, off: int, nb: int, na: int, known_bid: np.ndarray,
                   known_ask: np.ndarray, our_best_bid: int, our_best_ask: int, out: np.ndarray) -> int:
    """The levels of one depth event (bids ``px/qty[off:off+nb]`` then asks) the matching engine
    watches (``SymbolEngine.watches``: a level it knows, or one crossing our best resting order on
    the other side; -1: none there): their indices into ``out``, returns how many."""
    m = 0
    for j in range(nb + na):
        p = px[off + j]
        hit = False
        if j < nb:
            if qty[off + j] > 0 and our_best_ask >= 0 and p >= our_best_ask:
                hit = True
            else:
                for k in known_bid:
                    if k == p:
                        hit = True
                        break
        else:
            if qty[off + j] > 0 and our_best_bid >= 0 and p <= our_best_bid:
                hit = True
            else:
                for k in known_ask:
                    if k == p:
                        hit = True
                        break
        if hit:
            out[m] = j
            m += 1
    return m


@numba.njit(cache=True, nogil=True)
def trade_run(kind: np.ndarray, sid: np.ndarray, price: np.ndarray, signed_ms: np.ndarray, e_ms: np.ndarray,
              x: np.ndarray, start: int, stop: int, symbol: int, after: int, before: int, agg_is_trade: bool,
              our_bid: int, our_ask: int, out: np.ndarray) -> int:
    """Frames ``start..stop`` of one symbol's trades (and mark prices) that touch no resting
    order of ours: a seller's trade above our best bid, a buyer's below our best ask (-1: no
    order on that side). Stops before any other frame, a trade that reaches an order, a frame
    with exchange time ``x`` over ``after`` or at ``before`` or later. Returns the next frame not
    taken; ``out`` gets (last trade, trades, last mark, last exchange event time ms, last frame
    taken that is not inert), -1 for none.
    ``signed_ms``: the trade time, negative when the buyer was the maker (a seller's trade)."""
    last_trade = -1
    trades = 0
    last_mark = -1
    last_e = -1
    taken = -1
    i = start
    while i < stop:
        k = kind[i]
        if x[i] > after or x[i] >= before:
            break
        if k == 0:
            i += 1
            continue
        if sid[i] != symbol:
            break
        if k == 2 or k == 3:
            if k == 2 or agg_is_trade:
                p = price[i]
                if signed_ms[i] < 0:
                    if our_bid >= 0 and our_bid >= p:
                        break
                elif our_ask >= 0 and our_ask <= p:
                    break
                trades += 1
                last_trade = i
            if e_ms[i] != 0:
                last_e = e_ms[i]
        elif k == 4:
            last_mark = i
        else:
            break
        taken = i
        i += 1
    out[0] = last_trade
    out[1] = trades
    out[2] = last_mark
    out[3] = last_e
    out[4] = taken
    return i
