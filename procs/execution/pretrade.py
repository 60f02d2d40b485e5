"""The pre-trade check: pure functions from an intent, the risk limits and execution's own
order counts to a deny reason (``DENY_*``) or 0. No I/O, no exceptions on the hot path.

The limits come from the ``risk.state`` SeqLock block (written by risk); ``RiskLimits`` is a
plain-Python copy of one version of it, rebuilt only when the version changes. A missing block
means ``RiskLimits.unavailable()`` (every new order denied: ``procs.execution.risksource``), or
``RiskLimits.permissive()`` (ACTIVE, no limits) where execution runs without risk on purpose.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from procs.core import messages as M


def _word_index(name: str) -> int:
    """First int64 word of a RiskState field (every field is int64 or an array of them)."""
    dt, off = M.RiskState.fields[name][:2]
    assert dt.base == np.dtype("<i8") and off % 8 == 0, name
    return off // 8


# One RiskState record as a flat tuple of its int64 words: one unpack_from, no numpy on the
# per-intent path (risk writes the block on every book update, so nearly every intent reads it)
# the pre-trade words only (up to sym_max_open_orders): the account figures risk appends after
# them are not read on the order path
_PRETRADE_BYTES = M.RiskState.fields["sym_max_open_orders"][1] + 8 * M.MAX_SYMBOLS
RISK_STATE_STRUCT = struct.Struct(f"<{_PRETRADE_BYTES // 8}q")
_TS, _MOO, _MOPS = (_word_index(n) for n in ("trading_state", "max_open_orders", "max_orders_per_s"))
_ARRAYS = tuple((_word_index(n), _word_index(n) + M.MAX_SYMBOLS) for n in (
    "max_order_qty", "max_order_notional_e8", "max_position", "position", "mark", "price_band_bps",
    "sym_max_open_orders"))


@dataclass(slots=True)
class RiskLimits:
    """One version of the risk state as Python ints (0 = no limit, as in RiskState)."""

    trading_state: int = M.ACTIVE
    max_open_orders: int = 0
    max_orders_per_s: int = 0
    max_order_qty: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    max_order_notional_e8: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    max_position: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    position: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    mark: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    price_band_bps: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    sym_max_open_orders: Sequence[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    available: bool = True  # False: no risk process to check against (DENY_RISK_UNAVAILABLE)

    @classmethod
    def from_words(cls, w: tuple[int, ...]) -> RiskLimits:
        """From one RiskState record unpacked with ``RISK_STATE_STRUCT`` (per-symbol limits
        are tuple slices of it)."""
        (a0, a1), (b0, b1), (c0, c1), (d0, d1), (e0, e1), (f0, f1), (g0, g1) = _ARRAYS
        return cls(w[_TS] or M.ACTIVE, w[_MOO], w[_MOPS], w[a0:a1], w[b0:b1], w[c0:c1], w[d0:d1], w[e0:e1],
                   w[f0:f1], w[g0:g1])

    @classmethod
    def permissive(cls) -> RiskLimits:
        return cls()

    @classmethod
    def unavailable(cls) -> RiskLimits:
        return cls(available=False)

    @classmethod
    def from_record(cls, rec: np.void) -> RiskLimits:
        """From one RiskState record (a trading_state of 0 = never written: ACTIVE)."""
        return cls(
            trading_state=int(rec["trading_state"]) or M.ACTIVE,
            max_open_orders=int(rec["max_open_orders"]),
            max_orders_per_s=int(rec["max_orders_per_s"]),
            max_order_qty=rec["max_order_qty"].tolist(),
            max_order_notional_e8=rec["max_order_notional_e8"].tolist(),
            max_position=rec["max_position"].tolist(),
            position=rec["position"].tolist(),
            mark=rec["mark"].tolist(),
            price_band_bps=rec["price_band_bps"].tolist(),
            sym_max_open_orders=rec["sym_max_open_orders"].tolist(),
        )


@dataclass(slots=True)
class OpenCounts:
    """Execution's own view of what is working (orders not yet in a final state)."""

    total: int = 0
    per_symbol: list[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)
    buy_qty: list[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)  # lots still open
    sell_qty: list[int] = field(default_factory=lambda: [0] * M.MAX_SYMBOLS)


def notional_e8(price_ticks: int, qty_lots: int, price_scale: int, qty_scale: int) -> int:
    """price * qty in 1e-8 quote units (exact integer arithmetic, rounded down)."""
    s = price_scale + qty_scale
    if s <= 8:
        return price_ticks * qty_lots * 10 ** (8 - s)
    return price_ticks * qty_lots // 10 ** (s - 8)


def check_submit(symbol_id: int, side: int, order_type: int, price: int, qty: int, reduce_only: int,
                 lim: RiskLimits, open_: OpenCounts, orders_last_s: int, scales: tuple[int, int] | None,
                 trigger_price: int = 0, callback_bps: int = 0) -> int:
    """0 when the new order may go to the exchange, else the DENY_* reason.

    ``orders_last_s``: orders admitted in the last second; ``scales``: the symbol's
    (price_scale, qty_scale), None for a symbol execution does not trade. A conditional order
    counts at its worst case: as if it triggered and filled whole (its quantity in the position
    check, as every open order's is), its notional at the trigger price (the mark for a trailing
    stop without an activation price); no price band (a stop is far from the market on purpose).
    """
    if scales is None or not 0 <= symbol_id < M.MAX_SYMBOLS or side not in (M.BUY, M.SELL) or qty <= 0:
        return M.DENY_BAD_INTENT
    conditional = order_type in M.CONDITIONAL_TYPES
    if order_type == M.LIMIT:
        if price <= 0:
            return M.DENY_BAD_INTENT
    elif conditional:
        if M.conditional_terms_fault(order_type, price, trigger_price, callback_bps):
            return M.DENY_BAD_INTENT
    elif order_type != M.MARKET:
        return M.DENY_BAD_INTENT
    if not lim.available:
        return M.DENY_RISK_UNAVAILABLE
    st = lim.trading_state
    pos = lim.position[symbol_id]
    if st == M.HALTED:
        return M.DENY_HALTED
    if st == M.REDUCING and not (side * pos < 0 and qty <= abs(pos)):
        return M.DENY_REDUCING
    cap = lim.max_order_qty[symbol_id]
    if cap and qty > cap:
        return M.DENY_MAX_ORDER_QTY
    mark = lim.mark[symbol_id]
    ref = price if order_type == M.LIMIT else (trigger_price or mark) if conditional else mark
    cap = lim.max_order_notional_e8[symbol_id]
    if cap and ref and notional_e8(ref, qty, scales[0], scales[1]) > cap:
        return M.DENY_MAX_ORDER_NOTIONAL
    cap = lim.max_position[symbol_id]
    if cap and not reduce_only:
        # worst case: every open order on this side fills, then this one
        same = open_.buy_qty[symbol_id] if side == M.BUY else open_.sell_qty[symbol_id]
        if abs(pos + side * (same + qty)) > cap:
            return M.DENY_MAX_POSITION
    cap = lim.max_open_orders
    if cap and open_.total >= cap:
        return M.DENY_MAX_OPEN_ORDERS
    cap = lim.sym_max_open_orders[symbol_id]
    if cap and open_.per_symbol[symbol_id] >= cap:
        return M.DENY_MAX_OPEN_ORDERS
    cap = lim.max_orders_per_s
    if cap and orders_last_s >= cap:
        return M.DENY_ORDER_RATE
    band = lim.price_band_bps[symbol_id]
    if band and mark and order_type == M.LIMIT and abs(price - mark) * 10_000 > band * mark:
        return M.DENY_PRICE_BAND
    return 0


def check_modify(symbol_id: int, side: int, order_type: int, old_price: int, old_qty: int, cum_qty: int,
                 price: int, qty: int, reduce_only: int, lim: RiskLimits, open_: OpenCounts,
                 scales: tuple[int, int] | None) -> int:
    """0 when an open order may be amended to ``price`` / ``qty``, else the DENY_* reason.

    Only a LIMIT order is amended, to a new price or quantity, the quantity above what has
    filled (the venue would cancel the order instead). The checks of a new order apply to its new
    terms except the order count and rate (an amend adds no order); under REDUCING an amend may
    not add quantity; the position check counts the order at its new remaining quantity."""
    if (scales is None or not 0 <= symbol_id < M.MAX_SYMBOLS or order_type != M.LIMIT or price <= 0
            or qty <= cum_qty or (price == old_price and qty == old_qty)):
        return M.DENY_BAD_INTENT
    if not lim.available:
        return M.DENY_RISK_UNAVAILABLE
    st = lim.trading_state
    if st == M.HALTED:
        return M.DENY_HALTED
    if st == M.REDUCING and qty > old_qty:
        return M.DENY_REDUCING
    cap = lim.max_order_qty[symbol_id]
    if cap and qty > cap:
        return M.DENY_MAX_ORDER_QTY
    cap = lim.max_order_notional_e8[symbol_id]
    if cap and notional_e8(price, qty, scales[0], scales[1]) > cap:
        return M.DENY_MAX_ORDER_NOTIONAL
    cap = lim.max_position[symbol_id]
    if cap and not reduce_only and qty > old_qty:
        same = open_.buy_qty[symbol_id] if side == M.BUY else open_.sell_qty[symbol_id]
        if abs(lim.position[symbol_id] + side * (same + qty - old_qty)) > cap:
            return M.DENY_MAX_POSITION
    band = lim.price_band_bps[symbol_id]
    mark = lim.mark[symbol_id]
    if band and mark and abs(price - mark) * 10_000 > band * mark:
        return M.DENY_PRICE_BAND
    return 0
