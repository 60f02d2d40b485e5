"""Simulated accounts: wallet, per-symbol settings, positions (one-way or hedge mode), income.

Money is ``Decimal`` (exact fees and PnL; the order book itself stays in integer ticks/lots).
Margin model, deliberately simple: every position and open order of an account shares the
wallet (cross margin); initial margin = notional / the symbol's leverage at the mark
(positions) or at the order price (open orders); an order only needs margin for the part that
increases a position; it is refused with -2019 when that exceeds the available balance. A symbol
set to ISOLATED is reported as isolated (``marginType``, ``isolated``) but margined like cross:
the simulator keeps no per-position wallet and does not liquidate.

Positions are keyed by (symbol, positionSide): ``BOTH`` in one-way mode, ``LONG`` / ``SHORT`` in
hedge mode (``dualSidePosition``). A SHORT position's amount is negative, as the exchange prints it.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

from procs.core.instruments import Instrument
from procs.exchange_sim.trading.config import AccountConfig
from procs.exchange_sim.trading.matching import SimOrder

getcontext().prec = 40
Q8 = Decimal("0.00000001")
ZERO = Decimal(0)
POSITION_SIDES = ("BOTH", "LONG", "SHORT")


def fmt8(d: Decimal) -> str:
    """Money as Binance prints it: 8 decimals, always in plain notation (``str`` of a Decimal zero
    with 8 places is "0E-8", which no venue client reads as a number), never a negative zero."""
    return format(d.quantize(Q8) + 0, "f")


def px(inst: Instrument, ticks: int) -> Decimal:
    return Decimal(ticks).scaleb(-inst.price_scale)


def qty(inst: Instrument, lots: int) -> Decimal:
    return Decimal(lots).scaleb(-inst.qty_scale)


class Position:
    """One position of a symbol on one side (BOTH, LONG or SHORT)."""

    __slots__ = ("symbol", "side", "amt", "entry", "realized", "update_ms")

    def __init__(self, symbol: str, side: str) -> None:
        self.symbol = symbol
        self.side = side
        self.amt = 0  # signed lots (LONG >= 0, SHORT <= 0)
        self.entry = ZERO  # average entry price
        self.realized = ZERO
        self.update_ms = 0


class SymbolSettings:
    """What ``POST /fapi/v1/leverage`` and ``/marginType`` change for one symbol."""

    __slots__ = ("leverage", "isolated")

    def __init__(self, leverage: int) -> None:
        self.leverage = leverage
        self.isolated = False

    @property
    def margin_type(self) -> str:
        return "ISOLATED" if self.isolated else "CROSSED"


class Account:
    """One API key's wallet, positions, settings and income history."""

    def __init__(self, cfg: AccountConfig) -> None:
        self.name = cfg.name
        self.api_key = cfg.api_key
        self.secret = cfg.api_secret
        self.default_leverage = cfg.leverage
        self.wallet: dict[str, Decimal] = {a: Decimal(v) for a, v in cfg.balances.items()}
        self.positions: dict[tuple[str, str], Position] = {}
        self.settings: dict[str, SymbolSettings] = {}
        self.dual_side = False  # hedge mode (positionSide LONG / SHORT)
        self.multi_assets = False
        self.income: list[dict] = []  # GET /fapi/v1/income, oldest first
        self.update_ms = 0

    def __repr__(self) -> str:  # never show the secret
        return f"Account(name={self.name!r})"

    # -- settings --------------------------------------------------------------------------
    def symbol_settings(self, symbol: str) -> SymbolSettings:
        s = self.settings.get(symbol)
        if s is None:
            s = self.settings[symbol] = SymbolSettings(self.default_leverage)
        return s

    def leverage(self, symbol: str) -> int:
        s = self.settings.get(symbol)
        return s.leverage if s is not None else self.default_leverage

    # -- positions -------------------------------------------------------------------------
    def position(self, symbol: str, side: str = "BOTH") -> Position:
        pos = self.positions.get((symbol, side))
        if pos is None:
            pos = self.positions[(symbol, side)] = Position(symbol, side)
        return pos

    def amount(self, symbol: str, side: str = "BOTH") -> int:
        pos = self.positions.get((symbol, side))
        return pos.amt if pos is not None else 0

    def sides(self, symbol: str) -> list[Position]:
        """The symbol's positions that exist (possibly flat), BOTH first."""
        return [p for s in POSITION_SIDES if (p := self.positions.get((symbol, s))) is not None]

    def has_position(self, symbol: str | None = None) -> bool:
        return any(p.amt for (s, _), p in self.positions.items() if symbol is None or s == symbol)

    def apply_fill(self, inst: Instrument, is_buy: bool, side: str, price_ticks: int, lots: int, fee: Decimal,
                   ts_ms: int) -> Decimal:
        """Book one fill into the position of ``side`` and the wallet; returns its realized PnL."""
        pos = self.position(inst.symbol, side)
        signed = lots if is_buy else -lots
        price = px(inst, price_ticks)
        realized = ZERO
        if pos.amt == 0 or (pos.amt > 0) == is_buy:
            total = abs(pos.amt) + lots
            pos.entry = (pos.entry * abs(pos.amt) + price * lots) / total
        else:
            closing = min(abs(pos.amt), lots)
            direction = 1 if pos.amt > 0 else -1
            # Money settles in 8 decimals like the exchange's wallet; the entry price keeps full
            # precision (an average of fills need not terminate).
            realized = ((price - pos.entry) * qty(inst, closing) * direction).quantize(Q8)
            if lots > abs(pos.amt):
                pos.entry = price
            elif lots == abs(pos.amt):
                pos.entry = ZERO
        pos.amt += signed
        pos.realized += realized
        pos.update_ms = ts_ms
        asset = inst.margin_asset
        self.wallet[asset] = self.wallet.get(asset, ZERO) + realized - fee
        self.update_ms = ts_ms
        return realized

    # -- valuation -------------------------------------------------------------------------
    def unrealized(self, inst: Instrument, mark_ticks: int | None, side: str | None = None) -> Decimal:
        """Unrealized PnL of one side, or of every side of the symbol when ``side`` is None."""
        if mark_ticks is None:
            return ZERO
        mark = px(inst, mark_ticks)
        return sum(((mark - p.entry) * qty(inst, p.amt) for p in self.sides(inst.symbol)
                    if p.amt and (side is None or p.side == side)), ZERO)

    def notional(self, inst: Instrument, mark_ticks: int | None) -> Decimal:
        """Sum of |position| at the mark (entry price when there is no mark) over every side."""
        total = ZERO
        for p in self.sides(inst.symbol):
            if p.amt:
                mark = px(inst, mark_ticks) if mark_ticks is not None else p.entry
                total += abs(qty(inst, p.amt)) * mark
        return total

    def position_margin(self, inst: Instrument, mark_ticks: int | None) -> Decimal:
        return self.notional(inst, mark_ticks) / self.leverage(inst.symbol)

    def order_margin(self, inst: Instrument, orders: list[SimOrder], mark_ticks: int | None) -> Decimal:
        # Summed as exact integers (ticks * lots), converted once; closing orders need none.
        total = sum((o.price_ticks or mark_ticks or 0) * o.remaining for o in orders if not o.closing)
        return Decimal(total).scaleb(-inst.price_scale - inst.qty_scale) / self.leverage(inst.symbol)

    def increase_lots(self, symbol: str, is_buy: bool, lots: int, side: str = "BOTH") -> int:
        """The part of an order that would grow a position (the rest closes it)."""
        if side == "LONG":
            return lots if is_buy else 0
        if side == "SHORT":
            return 0 if is_buy else lots
        amt = self.amount(symbol)
        if amt == 0 or (amt > 0) == is_buy:
            return lots
        return max(0, lots - abs(amt))

    def close_cap(self, symbol: str, is_buy: bool, side: str) -> int:
        """Most lots a closing (reduce-only or hedge-mode close) order may fill now."""
        amt = self.amount(symbol, side)
        if is_buy:
            return -amt if amt < 0 else 0
        return amt if amt > 0 else 0
