"""Instruments: a symbol's trading filters and exact decimal <-> integer tick/lot conversion.

Prices travel through b25 as int64 *ticks* and quantities as int64 *lots*. A tick is the
smallest price unit b25 represents for a symbol (``10**-price_scale``), a lot the smallest
quantity unit (``10**-qty_scale``). The scale is at least as fine as the venue's tick size and
lot step, so every price the exchange can send converts exactly; a string that does not fit
the scale is refused (never rounded).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import msgspec


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """One tradable symbol: its filters as the venue lists them and the tick/lot scales b25 uses."""

    symbol: str
    price_scale: int  # a tick is 10**-price_scale
    qty_scale: int  # a lot is 10**-qty_scale
    tick_size: str = "0"  # the price increment as the venue sends it ("0" = none)
    step_size: str = "0"  # the quantity increment
    min_price: str = "0"
    max_price: str = "0"
    min_qty: str = "0"
    max_qty: str = "0"
    market_min_qty: str = "0"
    market_max_qty: str = "0"
    min_notional: str = "0"
    multiplier_up: str = "0"
    multiplier_down: str = "0"
    max_num_orders: int = 0
    contract_type: str = ""
    margin_asset: str = "USDT"
    contract_size: int = 1  # COIN-M contracts; 1 for USD-M

    # -- conversion -------------------------------------------------------------------------
    def price_to_ticks(self, text: str | bytes) -> int:
        """Exact decimal price text -> ticks; ValueError when it does not fit the tick scale."""
        return decimal_to_int(text, self.price_scale)

    def qty_to_lots(self, text: str | bytes) -> int:
        """Exact decimal quantity text -> lots; ValueError when it does not fit the lot scale."""
        return decimal_to_int(text, self.qty_scale)

    def ticks_to_price(self, ticks: int) -> str:
        """Ticks -> normalized decimal text (no trailing zeros, '0' for zero)."""
        return int_to_decimal(ticks, self.price_scale)

    def lots_to_qty(self, lots: int) -> str:
        return int_to_decimal(lots, self.qty_scale)

    @property
    def tick_ticks(self) -> int:
        """The venue's tick size in b25 ticks (1 when the scale equals the tick size)."""
        return max(1, decimal_to_int(self.tick_size, self.price_scale)) if self.tick_size != "0" else 1

    @property
    def step_lots(self) -> int:
        return max(1, decimal_to_int(self.step_size, self.qty_scale)) if self.step_size != "0" else 1


def scale_of(text: str) -> int:
    """Number of significant decimal places of a decimal string ("0.010" -> 2, "1" -> 0);
    ValueError for NaN and the infinities (b25 fuzz found "NaN" as a tick size)."""
    d = Decimal(text)
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    exp = d.normalize().as_tuple().exponent
    assert isinstance(exp, int)  # a finite decimal's exponent (for the type checker)
    return max(0, -exp)


_POW10 = [10**i for i in range(19)]


def decimal_to_int(text: str | bytes, scale: int) -> int:
    """Exact conversion of non-exponent decimal text to an integer count of 10**-scale units.

    Raises ValueError (with the text and scale) for anything that would need rounding, for
    exponents, NaN, infinity or garbage. Negative values are allowed here; callers decide.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    dot = text.find(".")
    try:
        if dot < 0:
            return int(text) * _POW10[scale]
        whole = text[:dot]
        frac = text[dot + 1 :]
        n = len(frac)
        if n > scale:
            extra = frac[scale:]
            if extra.strip("0"):
                raise ValueError(f"value has more decimals than the scale allows: value={text!r} scale={scale}")
            frac = frac[:scale]
            n = scale
        if not frac.isdigit() and frac:
            raise ValueError(f"not a decimal: value={text!r}")
        neg = whole.startswith("-")
        w = int(whole) if whole not in ("", "-", "+") else 0
        f = int(frac) * _POW10[scale - n] if frac else 0
        if neg:
            return w * _POW10[scale] - f
        return w * _POW10[scale] + f
    except (ValueError, IndexError) as exc:
        if "scale" in str(exc) or "decimal" in str(exc):
            raise
        raise ValueError(f"not a decimal: value={text!r}") from None


def round_to_int(text: str, scale: int) -> int:
    """Decimal text -> integer 10**-scale units, rounded half-even (for values a venue computes
    finer than its grid, such as a mark price); ValueError for anything not a finite decimal."""
    try:
        d = Decimal(text)
    except ArithmeticError:
        raise ValueError(f"not a decimal: value={text!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: value={text!r}")
    return int(d.scaleb(scale).to_integral_value(ROUND_HALF_EVEN))


def int_to_decimal(value: int, scale: int) -> str:
    """Integer units of 10**-scale -> normalized decimal text ("63943.9", "0", "-0.5")."""
    if scale == 0:
        return str(value)
    neg = value < 0
    v = -value if neg else value
    whole, frac = divmod(v, _POW10[scale])
    if frac:
        s = f"{whole}.{frac:0{scale}d}".rstrip("0")
    else:
        s = str(whole)
    return "-" + s if neg else s


def instrument_for_scales(symbol: str, price_scale: int, qty_scale: int) -> Instrument:
    """An Instrument for a symbol the venue's list does not have (e.g. inferred from a recording)."""
    return Instrument(symbol=symbol, price_scale=price_scale, qty_scale=qty_scale)
