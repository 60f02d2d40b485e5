"""Simulated accounts: wallet, positions (one-way mode) and a simple cross margin per API key.

Money is ``Decimal`` (exact fees and PnL; the order book itself stays in integer ticks/lots).
Margin model, deliberately simple: every position and open order of an account shares the
wallet (cross margin, one leverage per account); initial margin = notional / leverage at the
mark (positions) or at the order price (open orders); an order only needs margin for the part
that increases the position; it is refused with -2019 when that exceeds the available balance.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

from procs.core.instruments import Instrument
from procs.exchange_sim.trading.config import AccountConfig
from procs.exchange_sim.trading.matching import SimOrder

getcontext().prec = 40
Q8 = Decimal("0.00000001")
ZERO = Decimal(0)


def fmt8(d: Decimal) -> str:
    """Money as Binance prints it: 8 decimals."""
    return str(d.quantize(Q8))


def px(inst: Instrument, ticks: int) -> Decimal:
    return Decimal(ticks).scaleb(-inst.price_scale)


def qty(inst: Instrument, lots: int) -> Decimal:
    return Decimal(lots).scaleb(-inst.qty_scale)


class Position:
    """Net position of one symbol (positionSide BOTH)."""

    __slots__ = ("amt", "entry", "realized", "update_ms")

    def __init__(self) -> None:
        self.amt = 0  # signed lots
        self.entry = ZERO  # average entry price
        self.realized = ZERO
        self.update_ms = 0


class Account:
    """One API key's wallet, positions and leverage."""

    def __init__(self, cfg: AccountConfig) -> None:
        self.name = cfg.name
        self.api_key = cfg.api_key
        self.secret = cfg.api_secret
        self.leverage = cfg.leverage
        self.wallet: dict[str, Decimal] = {a: Decimal(v) for a, v in cfg.balances.items()}
        self.positions: dict[str, Position] = {}
        self.update_ms = 0

    def __repr__(self) -> str:  # never show the secret
        return f"Account(name={self.name!r})"

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position()
        return pos

    def apply_fill(self, inst: Instrument, is_buy: bool, price_ticks: int, lots: int, fee: Decimal,
                   ts_ms: int) -> Decimal:
        """Book one fill into position and wallet; returns the realized PnL of the fill."""
        pos = self.position(inst.symbol)
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
    def unrealized(self, inst: Instrument, mark_ticks: int | None) -> Decimal:
        pos = self.positions.get(inst.symbol)
        if pos is None or pos.amt == 0 or mark_ticks is None:
            return ZERO
        return (px(inst, mark_ticks) - pos.entry) * qty(inst, pos.amt)

    def position_margin(self, inst: Instrument, mark_ticks: int | None) -> Decimal:
        pos = self.positions.get(inst.symbol)
        if pos is None or pos.amt == 0:
            return ZERO
        mark = px(inst, mark_ticks) if mark_ticks is not None else pos.entry
        return abs(qty(inst, pos.amt)) * mark / self.leverage

    def order_margin(self, inst: Instrument, orders: list[SimOrder], mark_ticks: int | None) -> Decimal:
        # Summed as exact integers (ticks * lots), converted once.
        total = sum((o.price_ticks or mark_ticks or 0) * o.remaining for o in orders if not o.reduce_only)
        return Decimal(total).scaleb(-inst.price_scale - inst.qty_scale) / self.leverage

    def increase_lots(self, symbol: str, is_buy: bool, lots: int) -> int:
        """The part of an order that would grow the position (the rest closes it)."""
        pos = self.positions.get(symbol)
        if pos is None or pos.amt == 0 or (pos.amt > 0) == is_buy:
            return lots
        return max(0, lots - abs(pos.amt))
