"""What the engine keeps per strategy: open orders, positions and P&L.

This state lives in the engine, not in the strategy instance, so a hot reload (a new instance
of a new class) carries it over untouched. Prices are ticks and quantities lots, as in the ring
records; P&L is in the quote (margin) asset as float, converted with the symbol's scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from procs.core import messages as M

# Order.status, as the strategy sees its own order
SUBMITTED = 1  # intent written; execution has not answered yet
WORKING = 2  # accepted by the exchange (or partially filled)
CANCELING = 3  # cancel intent written; the order may still fill
STATUS_NAMES = {SUBMITTED: "submitted", WORKING: "working", CANCELING: "canceling"}

CLOSED_KEPT = 4096  # closed orders remembered so a late or repeated report is recognized
_DONE = frozenset((M.ORDER_DENIED, M.ORDER_REJECTED, M.ORDER_FILLED, M.ORDER_CANCELED, M.ORDER_EXPIRED))


@dataclass(slots=True)
class Order:
    """One open order of a strategy, named by its client tag."""

    tag: int
    symbol_id: int
    side: int
    order_type: int
    tif: int
    price: int
    qty: int
    reduce_only: int = 0
    status: int = SUBMITTED
    filled: int = 0
    order_id: int = 0
    ts_intent: int = 0
    trigger_price: int = 0  # a conditional order's trigger (a trailing stop's activation), ticks
    callback_bps: int = 0  # a trailing stop's callback
    triggered: bool = False  # a conditional order whose trigger was hit: a MARKET order now
    reported: bool = False  # execution has sent an event about it: it holds the order (or closed it)

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def is_canceling(self) -> bool:
        return self.status == CANCELING


@dataclass(slots=True)
class Position:
    """Net position of one strategy in one symbol, with average-cost P&L."""

    symbol_id: int
    unit: float  # quote value of 1 tick * 1 lot
    qty: int = 0  # lots, signed
    avg_px: float = 0.0  # ticks
    realized: float = 0.0  # quote asset, before fees
    fees: float = 0.0  # quote asset; negative = rebates
    volume: int = 0  # lots traded
    fills: int = 0

    def apply_fill(self, side: int, px: int, lots: int, fee: float) -> None:
        self.fees += fee
        self.volume += lots
        self.fills += 1
        pos = self.qty
        signed = lots if side == M.BUY else -lots
        if pos == 0 or (pos > 0) == (signed > 0):
            total = abs(pos) + lots
            self.avg_px = (self.avg_px * abs(pos) + px * lots) / total
            self.qty = pos + signed
            return
        closing = min(lots, abs(pos))
        self.realized += (px - self.avg_px) * closing * (1 if pos > 0 else -1) * self.unit
        self.qty = pos + signed
        if self.qty == 0:
            self.avg_px = 0.0
        elif (self.qty > 0) != (pos > 0):  # flipped through zero: the rest opens at px
            self.avg_px = float(px)

    def unrealized(self, mark: float) -> float:
        """P&L of the open position marked at ``mark`` ticks (0 when flat or no mark)."""
        if self.qty == 0 or mark <= 0:
            return 0.0
        return (mark - self.avg_px) * self.qty * self.unit


@dataclass
class StrategyState:
    """Everything about one strategy that must survive a reload."""

    sid: str
    num: int
    units: list[float]  # per symbol_id: quote value of 1 tick * 1 lot
    next_tag: int = 1
    orders: dict[int, Order] = field(default_factory=dict)  # tag -> open order
    closed: dict[int, Order] = field(default_factory=dict)  # tag -> recently closed order (late reports)
    by_symbol: list[list[Order]] = field(default_factory=list)  # symbol_id -> open orders
    positions: list[Position] = field(default_factory=list)  # symbol_id -> position
    unknown_events: int = 0
    fills_applied: int = 0
    held_until: int = 0  # engine clock ns: new orders are held until then (Engine deny hold)

    def __post_init__(self) -> None:
        n = len(self.units)
        if not self.by_symbol:
            self.by_symbol = [[] for _ in range(n)]
        if not self.positions:
            self.positions = [Position(i, self.units[i]) for i in range(n)]

    def new_tag(self) -> int:
        t = self.next_tag
        self.next_tag = t + 1
        return t

    def add(self, o: Order) -> None:
        self.orders[o.tag] = o
        self.by_symbol[o.symbol_id].append(o)

    def remove(self, o: Order) -> None:
        if self.orders.pop(o.tag, None) is not None:
            self.by_symbol[o.symbol_id].remove(o)
            self.closed[o.tag] = o
            if len(self.closed) > CLOSED_KEPT:
                del self.closed[next(iter(self.closed))]

    def on_event(self, kind: int, tag: int, symbol_id: int, side: int, order_id: int, cum_qty: int,
                 last_px: int, last_qty: int, fee_e8: int, price: int = 0, qty: int = 0) -> Order | None:
        """Apply one OrderEvent of this strategy; returns the order it named (None if unknown).

        Fills are applied by ``cum_qty`` when execution reports it: a report delivered twice
        (at-least-once after a restart) does not move cum_qty and is not applied again, also
        for orders that have just closed.
        """
        o = self.orders.get(tag)
        ref = o if o is not None else self.closed.get(tag)
        if kind == M.ORDER_PARTIALLY_FILLED or kind == M.ORDER_FILLED:
            lots = last_qty
            if ref is not None and cum_qty > 0:
                lots = cum_qty - ref.filled
            if lots > 0:
                self.fills_applied += 1
                if ref is not None:
                    ref.filled += lots
                if 0 <= symbol_id < len(self.positions):
                    self.positions[symbol_id].apply_fill(side, last_px, lots, fee_e8 / 1e8)
        if o is None:
            if ref is None and kind != M.ORDER_SENT:
                self.unknown_events += 1
            return ref
        o.reported = True
        if order_id:
            o.order_id = order_id
        if kind in _DONE:
            self.remove(o)
        elif kind == M.ORDER_ACCEPTED or kind == M.ORDER_PARTIALLY_FILLED:
            if o.status == SUBMITTED:
                o.status = WORKING
        elif kind == M.ORDER_MODIFIED:  # the amend took: the order's new terms
            o.price, o.qty = price, qty
        elif kind == M.ORDER_TRIGGERED:
            o.triggered = True
        elif kind == M.ORDER_CANCEL_REJECTED:
            if o.status == CANCELING:  # the order is still there (or about to report a fill)
                o.status = WORKING
        return o

    def snapshot(self, symbols: list[str]) -> dict:
        """Positions, P&L and the tag counter as plain data; the open orders' tags for people and
        tools (they are not restored: execution reports them after a restart)."""
        return {"num": self.num, "next_tag": self.next_tag, "open_orders": sorted(self.orders),
                "positions": {symbols[p.symbol_id]: {"qty": p.qty, "avg_px": p.avg_px, "realized": p.realized,
                                                     "fees": p.fees, "volume": p.volume, "fills": p.fills}
                              for p in self.positions if p.qty or p.fills}}

    def restore(self, snap: dict, symbols: list[str]) -> None:
        """Take positions and P&L from a snapshot; tags only move forward."""
        self.next_tag = max(self.next_tag, int(snap.get("next_tag", 0)))
        for sym, row in snap.get("positions", {}).items():
            if sym not in symbols:
                continue
            p = self.positions[symbols.index(sym)]
            p.qty, p.avg_px = int(row["qty"]), float(row["avg_px"])
            p.realized, p.fees = float(row["realized"]), float(row["fees"])
            p.volume, p.fills = int(row["volume"]), int(row["fills"])

    def pnl(self, symbol_id: int, mark: float) -> tuple[float, float, float]:
        """(realized, unrealized, fees) of one symbol, unrealized marked at ``mark`` ticks."""
        p = self.positions[symbol_id]
        return p.realized, p.unrealized(mark), p.fees
