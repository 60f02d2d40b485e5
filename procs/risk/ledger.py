"""Positions and P&L from fills and marks, per strategy and in total, in exact integers.

Money is an integer count of ``10**-money_scale`` quote units, where ``money_scale`` is 8
(the 1e-8 units of ``OrderEvent.fee_e8`` and ``RiskState``) unless an instrument's
``price_scale + qty_scale`` is finer, in which case the ledger uses that finer unit so a fill's
notional ``ticks * lots`` is still exact; ``to_e8`` converts at the edge (floor).

Average cost accounting (as the exchange reports its entry price): ``cost`` is the signed money
paid for the open position (long > 0, short < 0). A partial close removes
``cost * closed / |pos|`` rounded to the unit and leaves the remainder in ``cost``, so no unit
is ever created or lost: for every position, realized + unrealized == sum of signed fill cash
flows + pos * mark, exactly, and a position that returns to zero has ``cost == 0``. The
rounding only moves less than one unit between realized and unrealized. The average entry
price is ``cost / pos`` (a rational; reported as Decimal text for people).
"""

from __future__ import annotations

from decimal import Decimal

from procs.core import messages as M
from procs.core.instruments import Instrument, int_to_decimal

MANUAL = M.STRATEGY_ID_MANUAL  # OrderEvent.strategy_id of manual orders (TUI, ops API)
SEED = -2  # positions risk found on the exchange at start (made before it was watching)


def div_round(a: int, b: int) -> int:
    """a / b rounded half away from zero (b > 0)."""
    q, r = divmod(abs(a), b)
    if 2 * r >= b:
        q += 1
    return q if a >= 0 else -q


class Position:
    """One position (a strategy's or the total) in one symbol."""

    __slots__ = ("pos", "cost", "realized", "fees", "fills", "volume")

    def __init__(self) -> None:
        self.pos = 0  # lots, signed
        self.cost = 0  # money, signed
        self.realized = 0  # money
        self.fees = 0  # money (negative = rebates earned)
        self.fills = 0
        self.volume = 0  # lots traded

    def apply(self, signed_qty: int, px: int, factor: int) -> None:
        """Apply one fill of ``signed_qty`` lots at ``px`` ticks (``factor`` money per tick*lot)."""
        self.fills += 1
        self.volume += abs(signed_qty)
        pos = self.pos
        if pos == 0 or (pos > 0) == (signed_qty > 0):
            self.pos = pos + signed_qty
            self.cost += signed_qty * px * factor
            return
        qty = abs(signed_qty)
        held = abs(pos)
        closing = qty if qty < held else held
        removed = self.cost if closing == held else div_round(self.cost * closing, held)
        sign = 1 if pos > 0 else -1
        self.realized += sign * closing * px * factor - removed
        self.cost -= removed
        self.pos = pos - sign * closing
        rest = qty - closing
        if rest:  # flipped through zero: the rest opens the other side at the fill price
            self.pos = -sign * rest
            self.cost = -sign * rest * px * factor

    def unrealized(self, mark: int, factor: int) -> int:
        """Money gained if closed at ``mark`` ticks; 0 while the mark is unknown."""
        if self.pos == 0 or mark <= 0:
            return 0
        return self.pos * mark * factor - self.cost


class Ledger:
    """Positions of every strategy and the total per symbol, marks, equity peak and drawdown."""

    def __init__(self, instruments: list[Instrument], capital: int = 0) -> None:
        """``instruments[symbol_id]``; ``capital`` in money units (equity = capital + net P&L)."""
        self.instruments = instruments
        self.n = len(instruments)
        self.money_scale = max([8] + [i.price_scale + i.qty_scale for i in instruments])
        self.e8_unit = 10 ** (self.money_scale - 8)
        self.factor = [10 ** (self.money_scale - i.price_scale - i.qty_scale) for i in instruments]
        self.marks = [0] * self.n  # ticks
        self.total = [Position() for _ in range(self.n)]
        self.by_strategy: dict[int, list[Position]] = {}
        self.capital = capital
        self.peak = capital  # equity peak (total)
        self.strategy_peak: dict[int, int] = {}  # net P&L peak per strategy

    # -- units ------------------------------------------------------------------------------
    def money(self, text: str | Decimal) -> int:
        """Quote amount (decimal text) -> money units; ValueError when not exact."""
        d = Decimal(text) * (10 ** self.money_scale)
        if d != d.to_integral_value():
            raise ValueError(f"amount finer than the money unit: amount={text} money_scale={self.money_scale}")
        return int(d)

    def from_e8(self, e8: int) -> int:
        return e8 * self.e8_unit

    def to_e8(self, money: int) -> int:
        return money // self.e8_unit

    def to_decimal(self, money: int) -> Decimal:
        return Decimal(money).scaleb(-self.money_scale)

    def text(self, money: int) -> str:
        """Money units -> normalized decimal text ("1009.99", "0", "-0.5")."""
        return int_to_decimal(money, self.money_scale)

    # -- events -----------------------------------------------------------------------------
    def fill(self, strategy_id: int, symbol_id: int, side: int, qty: int, px: int, fee_e8: int = 0) -> None:
        """One fill: ``side`` BUY(1)/SELL(-1), ``qty`` lots > 0 at ``px`` ticks, fee in 1e-8 quote."""
        f = self.factor[symbol_id]
        signed = qty if side > 0 else -qty
        fee = fee_e8 * self.e8_unit
        rows = self.by_strategy.get(strategy_id)
        if rows is None:
            rows = self.by_strategy[strategy_id] = [Position() for _ in range(self.n)]
            self.strategy_peak[strategy_id] = 0
        p = rows[symbol_id]
        p.apply(signed, px, f)
        p.fees += fee
        t = self.total[symbol_id]
        t.apply(signed, px, f)
        t.fees += fee

    def set_mark(self, symbol_id: int, ticks: int) -> None:
        self.marks[symbol_id] = ticks

    # -- views ------------------------------------------------------------------------------
    def position(self, symbol_id: int, strategy_id: int | None = None) -> Position:
        if strategy_id is None:
            return self.total[symbol_id]
        rows = self.by_strategy.get(strategy_id)
        return rows[symbol_id] if rows else Position()

    def unrealized(self, symbol_id: int, strategy_id: int | None = None) -> int:
        return self.position(symbol_id, strategy_id).unrealized(self.marks[symbol_id], self.factor[symbol_id])

    def net_pnl(self, strategy_id: int | None = None) -> int:
        """Realized + unrealized - fees over every symbol (of one strategy, or the total)."""
        rows = self.total if strategy_id is None else self.by_strategy.get(strategy_id)
        if not rows:
            return 0
        out = 0
        marks, factor = self.marks, self.factor
        for i, p in enumerate(rows):
            if p.fills:
                out += p.realized - p.fees + p.unrealized(marks[i], factor[i])
        return out

    def realized(self, strategy_id: int | None = None) -> int:
        rows = self.total if strategy_id is None else self.by_strategy.get(strategy_id, [])
        return sum(p.realized for p in rows)

    def fees(self, strategy_id: int | None = None) -> int:
        rows = self.total if strategy_id is None else self.by_strategy.get(strategy_id, [])
        return sum(p.fees for p in rows)

    def exposure(self, symbol_id: int) -> int:
        """|position| * mark in money units (0 while the mark is unknown)."""
        return abs(self.total[symbol_id].pos) * self.marks[symbol_id] * self.factor[symbol_id]

    def gross_exposure(self) -> int:
        return sum(self.exposure(i) for i in range(self.n))

    def avg_entry(self, symbol_id: int, strategy_id: int | None = None) -> Decimal:
        """Average entry price (quote per base unit, exact to 28 digits); 0 when flat."""
        p = self.position(symbol_id, strategy_id)
        if p.pos == 0:
            return Decimal(0)
        ins = self.instruments[symbol_id]
        ticks = Decimal(p.cost) / (Decimal(p.pos) * self.factor[symbol_id])
        return ticks.scaleb(-ins.price_scale)

    def equity(self) -> int:
        return self.capital + self.net_pnl()

    def update_peaks(self) -> int:
        """Raise the equity peaks to the current values; returns the total equity."""
        eq = self.equity()
        if eq > self.peak:
            self.peak = eq
        for sid in self.by_strategy:
            v = self.net_pnl(sid)
            if v > self.strategy_peak[sid]:
                self.strategy_peak[sid] = v
        return eq

    def drawdown(self, strategy_id: int | None = None) -> int:
        """Peak minus current (money units, >= 0)."""
        if strategy_id is None:
            return max(0, self.peak - self.equity())
        return max(0, self.strategy_peak.get(strategy_id, 0) - self.net_pnl(strategy_id))

    def reset_peak(self) -> None:
        """An operator acknowledged the drawdown: measure from here."""
        self.peak = self.equity()
        for sid in self.by_strategy:
            self.strategy_peak[sid] = self.net_pnl(sid)

    def snapshot(self) -> dict:
        """People-readable totals and per-strategy rows (Decimal text), for logs and tools."""
        def row(sid: int | None) -> dict:
            return {"realized": self.text(self.realized(sid)),
                    "fees": self.text(self.fees(sid)),
                    "net_pnl": self.text(self.net_pnl(sid)),
                    "drawdown": self.text(self.drawdown(sid)),
                    "positions": {self.instruments[i].symbol: self.instruments[i].lots_to_qty(p.pos)
                                  for i, p in enumerate(self.total if sid is None else self.by_strategy[sid])
                                  if p.pos}}
        return {"total": row(None), "equity": self.text(self.equity()),
                "strategies": {sid: row(sid) for sid in self.by_strategy}}
