"""Manual order entry: validation of the form's text fields into an exact order (ticks/lots).

Every refusal names the field and says why (``FieldError.field``, ``.reason``). The checks are
the instrument's own filters (tick, step, min/max); the risk limits are execution's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from procs.core import messages as M
from procs.core.instruments import Instrument


class FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class OrderSpec:
    symbol: str
    symbol_id: int
    side: int
    order_type: int
    tif: int
    price: int  # ticks, 0 for MARKET
    qty: int  # lots
    price_text: str
    qty_text: str
    trigger_price: int = 0  # ticks: a stop or take-profit's trigger (the form's price field)

    @property
    def reduce_only(self) -> bool:
        """A manual stop or take-profit protects a position: it may only reduce it."""
        return self.order_type in M.CONDITIONAL_TYPES

    def describe(self) -> str:
        side = "BUY" if self.side == M.BUY else "SELL"
        if self.order_type == M.MARKET:
            return f"{side} {self.qty_text} {self.symbol} MARKET"
        if self.order_type in M.CONDITIONAL_TYPES:
            name = M.ORDER_TYPE_NAMES[self.order_type].upper()
            return f"{side} {self.qty_text} {self.symbol} {name} at {self.price_text} (reduce-only)"
        return f"{side} {self.qty_text} {self.symbol} @ {self.price_text} LIMIT"


_SIDES = {"buy": M.BUY, "b": M.BUY, "sell": M.SELL, "s": M.SELL}
_TYPES = {"limit": M.LIMIT, "l": M.LIMIT, "market": M.MARKET, "m": M.MARKET, "stop": M.STOP_MARKET,
          "stop_market": M.STOP_MARKET, "take_profit": M.TAKE_PROFIT_MARKET, "tp": M.TAKE_PROFIT_MARKET}


def _decimal(field: str, text: str) -> Decimal:
    t = text.strip()
    if not t:
        raise FieldError(field, "is required")
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise FieldError(field, f"not a number: {t!r}") from None
    if not d.is_finite() or "e" in t.lower():
        raise FieldError(field, f"not a plain decimal: {t!r}")
    if d <= 0:
        raise FieldError(field, f"must be > 0: {t}")
    return d


def _multiple(field: str, d: Decimal, step: str, what: str) -> None:
    if step not in ("", "0") and d % Decimal(step) != 0:
        raise FieldError(field, f"must be a multiple of the {what} {step}: {d}")


def parse_order(symbol: str, side: str, order_type: str, price: str, qty: str, symbols: list[str],
                instruments: dict[str, Instrument]) -> OrderSpec:
    """The form's fields as an OrderSpec; raises FieldError naming the first bad field."""
    sym = symbol.strip().upper()
    if sym not in symbols:
        raise FieldError("symbol", f"unknown symbol {sym or '(empty)'!r}; configured: {', '.join(symbols)}")
    inst = instruments.get(sym)
    if inst is None:
        raise FieldError("symbol", f"no instrument filters for {sym} (the venue's instrument list not loaded)")
    s = _SIDES.get(side.strip().lower())
    if s is None:
        raise FieldError("side", f"must be buy or sell: {side!r}")
    t = _TYPES.get(order_type.strip().lower())
    if t is None:
        raise FieldError("type", f"must be limit, market, stop or take_profit: {order_type!r}")
    ticks = 0
    ptext = ""
    if t != M.MARKET:  # a limit price, or a stop's / take-profit's trigger price
        p = _decimal("price", price)
        _multiple("price", p, inst.tick_size, "tick size")
        if inst.min_price not in ("", "0") and p < Decimal(inst.min_price):
            raise FieldError("price", f"below the minimum price {inst.min_price}: {p}")
        if inst.max_price not in ("", "0") and p > Decimal(inst.max_price):
            raise FieldError("price", f"above the maximum price {inst.max_price}: {p}")
        try:
            ticks = inst.price_to_ticks(format(p, "f"))
        except ValueError as exc:
            raise FieldError("price", str(exc)) from None
        ptext = format(p.normalize(), "f")
    elif price.strip() not in ("", "0"):
        raise FieldError("price", "must be empty for a market order")
    q = _decimal("qty", qty)
    _multiple("qty", q, inst.step_size, "step size")
    lo, hi = (inst.min_qty, inst.max_qty) if t == M.LIMIT else (inst.market_min_qty, inst.market_max_qty)  # a stop trades at market
    if lo not in ("", "0") and q < Decimal(lo):
        raise FieldError("qty", f"below the minimum quantity {lo}: {q}")
    if hi not in ("", "0") and q > Decimal(hi):
        raise FieldError("qty", f"above the maximum quantity {hi}: {q}")
    try:
        lots = inst.qty_to_lots(format(q, "f"))
    except ValueError as exc:
        raise FieldError("qty", str(exc)) from None
    if t in M.CONDITIONAL_TYPES:  # the price field is the trigger; the order itself has no price
        return OrderSpec(sym, symbols.index(sym), s, t, M.GTC, 0, lots, ptext, format(q.normalize(), "f"), ticks)
    return OrderSpec(sym, symbols.index(sym), s, t, M.GTC, ticks, lots, ptext, format(q.normalize(), "f"))
