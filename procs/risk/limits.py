"""Limits: the ``[risk]`` config converted once into the integers ``RiskState`` carries.

Quantities become lots and notionals 1e-8 quote units through each symbol's Instrument; a
limit the instrument cannot represent exactly (more decimals than its lot) is refused at start
(ValueError naming the symbol and field), never rounded.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from procs.core import messages as M
from procs.core.instruments import Instrument

from .config import RiskConfig, decimal_text
from .crisis import Thresholds

LEVELS = {"ACTIVE": M.ACTIVE, "REDUCING": M.REDUCING, "HALTED": M.HALTED}


def _e8(text: str, field: str) -> int:
    d = decimal_text(text, field) * 100_000_000
    if d != d.to_integral_value():
        raise ValueError(f"amount finer than 1e-8: {field}={text}")
    return int(d)


class Limits:
    """Per-symbol arrays (indexed by symbol_id) and global limits, all integers; 0 = no limit."""

    def __init__(self, cfg: RiskConfig, instruments: list[Instrument]) -> None:
        n = len(instruments)
        if n > M.MAX_SYMBOLS:
            raise ValueError(f"too many symbols for RiskState: symbols={n} max={M.MAX_SYMBOLS}")
        known = {i.symbol for i in instruments}
        unknown = sorted(set(cfg.symbols) - known)
        if unknown:
            raise ValueError(f"[risk.symbols] names symbols not in [deploy] symbols: symbols={','.join(unknown)}")
        self.max_order_qty = np.zeros(M.MAX_SYMBOLS, np.int64)
        self.max_order_notional_e8 = np.zeros(M.MAX_SYMBOLS, np.int64)
        self.max_position = np.zeros(M.MAX_SYMBOLS, np.int64)
        self.price_band_bps = np.zeros(M.MAX_SYMBOLS, np.int64)
        self.sym_max_open_orders = np.zeros(M.MAX_SYMBOLS, np.int64)
        self.max_leverage = [Decimal(0)] * n
        self.max_leverage_e6 = np.zeros(M.MAX_SYMBOLS, np.int64)
        for sid, ins in enumerate(instruments):
            lim = cfg.limits_for(ins.symbol)
            where = f"[risk.symbols.{ins.symbol}]" if ins.symbol in cfg.symbols else "[risk.default]"
            try:
                self.max_order_qty[sid] = ins.qty_to_lots(lim.max_order_qty)
                self.max_position[sid] = ins.qty_to_lots(lim.max_position)
            except ValueError as exc:
                raise ValueError(f"{where} quantity does not fit the lot of {ins.symbol}: {exc}") from None
            self.max_order_notional_e8[sid] = _e8(lim.max_order_notional, f"{where} max_order_notional")
            self.price_band_bps[sid] = lim.price_band_bps
            self.sym_max_open_orders[sid] = lim.max_open_orders
            self.max_leverage[sid] = Decimal(lim.max_leverage)
            self.max_leverage_e6[sid] = int(self.max_leverage[sid] * 1_000_000)
        self.max_open_orders = cfg.max_open_orders
        self.max_orders_per_s = cfg.max_orders_per_s
        self.max_daily_loss_e8 = _e8(cfg.max_daily_loss, "max_daily_loss")
        self.max_drawdown_e8 = _e8(cfg.max_drawdown, "max_drawdown")
        self.capital = Decimal(cfg.capital)
        self.on_loss_breach = LEVELS[cfg.on_loss_breach]
        self.on_drawdown_breach = LEVELS[cfg.on_drawdown_breach]
        self.max_margin_ratio = Decimal(cfg.max_margin_ratio)
        self.limit_halt_after_ns = int(cfg.limit_halt_after_s * 1e9)
        self.mark_max_age_ns = int(cfg.mark_max_age_s * 1e9)
        self.crisis = Thresholds(cfg.crisis_max_volatility_bps, cfg.crisis_volatility_window_s, cfg.crisis_max_spread_bps,
                                 cfg.crisis_spread_for_s, cfg.crisis_max_feed_age_s,
                                 float(Decimal(cfg.crisis_max_drawdown_velocity)), cfg.crisis_drawdown_window_s)

    def write(self, rec: np.ndarray) -> None:
        """Copy the limits into a RiskState record (a 0-d or 1-element structured array)."""
        rec["max_open_orders"] = self.max_open_orders
        rec["max_orders_per_s"] = self.max_orders_per_s
        rec["max_order_qty"] = self.max_order_qty
        rec["max_order_notional_e8"] = self.max_order_notional_e8
        rec["max_position"] = self.max_position
        rec["price_band_bps"] = self.price_band_bps
        rec["sym_max_open_orders"] = self.sym_max_open_orders
