"""exchangeInfo filters of a new order (LOT_SIZE, MARKET_LOT_SIZE, PRICE_FILTER, PERCENT_PRICE,
MIN_NOTIONAL) checked in exact integers, with Binance's error codes."""

from __future__ import annotations

from decimal import Decimal

from procs.core.instruments import Instrument, decimal_to_int
from procs.exchange_sim.trading.signing import ApiError


class Filters:
    """An instrument's exchangeInfo filters as integers (ticks, lots, ticks*lots), computed once."""

    def __init__(self, inst: Instrument) -> None:
        def lots(text: str) -> int:
            return inst.qty_to_lots(text) if text != "0" else 0

        def ticks(text: str) -> int:
            return inst.price_to_ticks(text) if text != "0" else 0

        self.min_qty, self.max_qty = lots(inst.min_qty), lots(inst.max_qty)
        self.mkt_min_qty, self.mkt_max_qty = lots(inst.market_min_qty), lots(inst.market_max_qty)
        self.step = inst.step_lots
        self.min_price, self.max_price = ticks(inst.min_price), ticks(inst.max_price)
        self.tick = inst.tick_ticks
        self.mult_den = 10**8  # multipliers have at most 8 decimals
        self.up = decimal_to_int(inst.multiplier_up, 8)
        self.down = decimal_to_int(inst.multiplier_down, 8)
        self.min_notional = decimal_to_int(inst.min_notional, inst.price_scale + inst.qty_scale)


def check_filters(f: Filters, inst: Instrument, otype: str, is_buy: bool, ticks: int, lots: int,
                  reduce_only: bool, mark: int | None) -> None:
    """Raise the exchange's ApiError for the first filter a new order breaks."""
    if lots <= 0:
        raise ApiError(-4003, "Quantity less than or equal to zero.")
    lo, hi = (f.min_qty, f.max_qty) if otype == "LIMIT" else (f.mkt_min_qty, f.mkt_max_qty)
    if lo and lots < lo:
        raise ApiError(-4004, "Quantity less than min qty.")
    if hi and lots > hi:
        raise ApiError(-4005, "Quantity greater than max qty.")
    if (lots - lo) % f.step:
        raise ApiError(-4023, "Quantity not increased by step size.")
    if otype == "LIMIT":
        if ticks <= 0:
            raise ApiError(-4001, "Price less than 0.")
        if f.min_price and ticks < f.min_price:
            raise ApiError(-4013, "Price less than min price.")
        if f.max_price and ticks > f.max_price:
            raise ApiError(-4002, "Price greater than max price.")
        if (ticks - f.min_price) % f.tick:
            raise ApiError(-4014, "Price not increased by tick size.")
        if mark is not None:
            # Compared in exact ticks: price <= mark * multiplierUp  <=>  price * 10^k <= mark * up_int
            if is_buy and f.up and ticks * f.mult_den > mark * f.up:
                cap = Decimal(mark * f.up).scaleb(-inst.price_scale) / f.mult_den
                raise ApiError(-4016, f"Limit price can't be higher than {cap:.{inst.price_scale}f}.")
            if not is_buy and f.down and ticks * f.mult_den < mark * f.down:
                floor = Decimal(mark * f.down).scaleb(-inst.price_scale) / f.mult_den
                raise ApiError(-4024, f"Limit price can't be lower than {floor:.{inst.price_scale}f}.")
    if f.min_notional and not reduce_only:
        ref = ticks if otype == "LIMIT" else mark
        if ref is not None and ref * lots < f.min_notional:
            raise ApiError(-4164, f"Order's notional must be no smaller than {inst.min_notional} "
                                  "(unless you choose reduce only).")


def check_stop_price(f: Filters, ticks: int) -> None:
    """PRICE_FILTER applied to a stop, trigger or activation price [D:common-definition]."""
    if ticks <= 0:
        raise ApiError(-4006, "Stop price less than zero.")
    if f.max_price and ticks > f.max_price:
        raise ApiError(-4007, "Stop price greater than max price.")
    if f.min_price and ticks < f.min_price:
        raise ApiError(-4013, "Price less than min price.")
    if (ticks - f.min_price) % f.tick:
        raise ApiError(-4014, "Price not increased by tick size.")
