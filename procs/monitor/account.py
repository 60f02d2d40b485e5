"""``GET /api/account``: the account as risk margins it (procs/risk/margin.py), read from ``risk.state``.

Money is decimal text in the margin asset (exact, from risk's 1e-8 units), prices decimal text
of each symbol's instrument, ratios and leverage numbers. ``null`` means unknown: no margin
brackets from the venue for a symbol with a position (maintenance margin, margin ratio,
liquidation price), or no liquidation price (flat, or the account covers any price).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from procs.core import messages as M
from procs.core.instruments import Instrument, int_to_decimal
from procs.risk import crisis as X


def _money(e8: int) -> str:
    return int_to_decimal(int(e8), 8)


def _price(ins: Instrument | None, ticks: int) -> str:
    return int_to_decimal(int(ticks), ins.price_scale) if ins is not None else str(int(ticks))


def account_view(r: np.void, symbols: list[str], instruments: dict[str, Instrument]) -> dict[str, Any]:
    """One RiskState record -> the /api/account body."""
    flags = int(r["account_flags"])
    maint, ratio, mmr = int(r["maint_margin_e8"]), int(r["margin_ratio_e6"]), int(r["max_margin_ratio_e6"])
    positions: dict[str, Any] = {}
    for i, sym in enumerate(symbols[: M.MAX_SYMBOLS]):
        ins = instruments.get(sym)
        pos, mark, liq = int(r["position"][i]), int(r["mark"][i]), int(r["liquidation_px"][i])
        max_lev = int(r["max_leverage_e6"][i])
        positions[sym] = {
            "position": int_to_decimal(pos, ins.qty_scale) if ins is not None else str(pos),
            "mark_price": _price(ins, mark) if mark else None,
            "mark_source": M.MARK_SOURCE_NAMES.get(int(r["mark_source"][i]), "unknown"),
            "notional": (int_to_decimal(abs(pos) * mark, ins.price_scale + ins.qty_scale)
                         if ins is not None and mark else "0"),
            "leverage": int(r["leverage_sym_e6"][i]) / 1e6,
            "max_leverage": max_lev / 1e6 if max_lev else None,
            "liquidation_price": _price(ins, liq) if liq else None,
            "distance_pct": round(abs(mark - liq) / mark * 100, 4) if liq and mark else None,
            "volatility_bps": int(r["volatility_bps_e2"][i]) / 100,
            "spread_bps": int(r["spread_bps_e2"][i]) / 100,
        }
    updated = int(r["account_updated_ns"])
    return {
        "wallet_balance": _money(r["wallet_e8"]),
        "unrealized_pnl": _money(r["unrealized_e8"]),
        "margin_balance": _money(r["margin_balance_e8"]),
        "maint_margin": _money(maint) if maint >= 0 else None,
        "margin_ratio": ratio / 1e6 if ratio >= 0 else None,
        "max_margin_ratio": mmr / 1e6 if mmr else None,
        "available_balance": _money(r["available_e8"]),
        "open_order_margin": _money(r["open_order_margin_e8"]),
        "gross_notional": _money(r["gross_notional_e8"]),
        "leverage": int(r["leverage_e6"]) / 1e6,
        "wallet_source": "venue" if flags & M.ACCOUNT_WALLET_FROM_VENUE else "config capital + realized - fees",
        "margin_brackets": "venue" if flags & M.ACCOUNT_BRACKETS_FROM_VENUE else "none",
        "updated_age_s": round((time.monotonic_ns() - updated) / 1e9, 3) if updated else None,
        "crisis": {"triggers": X.names(int(r["crisis_triggers"])), "entered": X.names(int(r["crisis_entered"])),
                   "drawdown_velocity": _money(r["drawdown_velocity_e8"])},
        "positions": positions,
    }
