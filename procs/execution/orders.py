"""Orders as execution sees them, and the order state machine.

Statuses are b25's (``procs.venue.messages``): new, partially filled, filled, canceled,
rejected, expired, plus pending (written to the wire, not yet answered); the venue's adapter
reports in them. A report either applies, repeats the current
status (SAME: e.g. the API ack and the user stream both say NEW), is older than what we know
(STALE: NEW arriving after a fill) or is ILLEGAL (FILLED -> CANCELED): illegal ones are counted
and logged by the caller and never applied.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import KeysView
from dataclasses import dataclass, field

from procs.core import messages as M
from procs.venue.messages import CANCELED as CANCELED
from procs.venue.messages import EXPIRED as EXPIRED
from procs.venue.messages import FILLED as FILLED
from procs.venue.messages import NEW as NEW
from procs.venue.messages import PARTIALLY_FILLED as PARTIALLY_FILLED
from procs.venue.messages import PENDING as PENDING
from procs.venue.messages import REJECTED as REJECTED
from procs.venue.messages import STATUS_NAMES as STATUS_NAMES

from .pretrade import OpenCounts

TERMINAL = frozenset((FILLED, CANCELED, REJECTED, EXPIRED))
_RANK = (0, 1, 2, 3, 3, 3, 3)
EVENT_OF = {NEW: M.ORDER_ACCEPTED, PARTIALLY_FILLED: M.ORDER_PARTIALLY_FILLED, FILLED: M.ORDER_FILLED,
            CANCELED: M.ORDER_CANCELED, REJECTED: M.ORDER_REJECTED, EXPIRED: M.ORDER_EXPIRED}

APPLIED, SAME, STALE, ILLEGAL = range(4)


def transition(cur: int, new: int) -> int:
    """How a report of status ``new`` relates to the current status ``cur``."""
    if new == cur:
        return SAME
    if new == PENDING or _RANK[new] < _RANK[cur]:
        return STALE  # e.g. the API's NEW ack arriving after the stream's fill
    if cur in TERMINAL:
        return ILLEGAL
    if new == REJECTED:
        return APPLIED if cur == PENDING else ILLEGAL
    return APPLIED


@dataclass(slots=True)
class Order:
    """One order b25 sent (or adopted); ints are ticks / lots as in the ring records."""

    cid: str
    strategy_id: int
    symbol_id: int
    side: int
    order_type: int
    tif: int
    price: int
    qty: int
    reduce_only: int = 0
    client_tag: int = 0
    intent_id: int = 0
    source: int = 0
    ts_intent: int = 0
    ts_md_recv: int = 0
    ts_sent: int = 0
    t_read: int = 0  # when execution read the intent (intent_to_wire)
    order_id: int = 0
    status: int = PENDING
    cum_qty: int = 0
    trade_lots: dict[int, int] = field(default_factory=dict)  # trade id -> lots, of the trades taken
    reported_cum: int = 0  # the venue's highest cumulative quantity in a fill report ...
    reported_at_trade: int = 0  # ... and the trade it came with: it covers every trade up to that id
    cancel_wanted: bool = False  # cancel as soon as the exchange knows the order
    cancel_inflight: bool = False
    unknown: bool = False  # the last request's outcome is unknown: query before re-sending
    attempts: int = 0
    adopted: bool = False
    # amends (MODIFY_ORDER): one on the wire at a time; the newest asked meanwhile waits in
    # ``amend_next`` (price, qty) and goes when the order is acknowledged and the last one answered
    amend_inflight: bool = False
    amend_to: tuple[int, int] = (0, 0)  # the (price, qty) on the wire
    amend_next: tuple[int, int] | None = None
    amend_unknown: bool = False  # an amend's outcome is unknown: the next query's terms are the venue's
    terms_ms: int = 0  # the venue's time of the price and quantity we hold (older amend reports are stale)
    # conditional orders (order_type in CONDITIONAL_TYPES): what it waits for, and once triggered,
    # the MARKET order the venue placed for it (order_id then names that one; its client id the venue's)
    trigger_price: int = 0
    callback_bps: int = 0
    on_mark: bool = False
    triggered: bool = False
    actual_cid: str = ""

    @property
    def conditional(self) -> bool:
        return self.order_type in M.CONDITIONAL_TYPES

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def trade_ids(self) -> KeysView[int]:
        return self.trade_lots.keys()

    @property
    def remaining(self) -> int:
        return max(0, self.qty - self.cum_qty)

    def filled_after(self, trade_id: int, lots: int, reported_cum: int = 0) -> int:
        """The order's cumulative filled lots once trade ``trade_id`` (``lots``) is taken, with
        the venue's cumulative quantity when the report gave one (0: a trade from the trade list).

        Trades can come out of order (after a restart, the stream's next fill before the trade
        list's earlier ones): a reported cumulative already holds every trade up to its own id
        (the venue's trade ids rise), so an earlier trade taken later adds nothing to it, and a
        later one adds its lots. Summing lots onto the reported cumulative counted the earlier
        trades twice (a 100-fault chaos run: journal 0.033 against the venue's 0.020)."""
        self.trade_lots[trade_id] = lots
        if reported_cum > self.reported_cum:
            self.reported_cum, self.reported_at_trade = reported_cum, trade_id
        later = sum(q for t, q in self.trade_lots.items() if t > self.reported_at_trade)
        return max(self.cum_qty, self.reported_cum + later, sum(self.trade_lots.values()))


class OrderStore:
    """Every order of this run by client order id, the strategies' tags, and the open counts."""

    def __init__(self) -> None:
        self.by_cid: dict[str, Order] = {}
        self.by_tag: dict[tuple[int, int], Order] = {}  # (strategy_id, client_tag) -> newest
        self.by_triggered_id: dict[int, Order] = {}  # a triggered conditional's MARKET order id -> it
        self.open: dict[str, Order] = {}
        self.counts = OpenCounts()
        self.closed: deque[tuple[int, str]] = deque()  # (monotonic ns, cid) in closing order

    def add(self, o: Order) -> None:
        self.by_cid[o.cid] = o
        if o.client_tag:
            self.by_tag[(o.strategy_id, o.client_tag)] = o
        if o.is_open:
            self.open[o.cid] = o
            self._count(o, 1)

    def _count(self, o: Order, sign: int) -> None:
        c = self.counts
        s = o.symbol_id
        c.total += sign
        if 0 <= s < M.MAX_SYMBOLS:
            c.per_symbol[s] += sign
            if o.side == M.BUY:
                c.buy_qty[s] += sign * o.remaining
            else:
                c.sell_qty[s] += sign * o.remaining

    def set_status(self, o: Order, status: int) -> int:
        """Apply a status report through the state machine; returns APPLIED/SAME/STALE/ILLEGAL."""
        t = transition(o.status, status)
        if t == APPLIED:
            was_open = o.is_open
            if was_open:
                self._count(o, -1)
            o.status = status
            if o.is_open:
                self._count(o, 1)
            elif was_open:
                self.open.pop(o.cid, None)
                self.closed.append((time.monotonic_ns(), o.cid))
        return t

    def prune(self, closed_before_ns: int) -> int:
        """Forget orders that closed before ``closed_before_ns``; returns how many."""
        n = 0
        q = self.closed
        while q and q[0][0] < closed_before_ns:
            _, cid = q.popleft()
            o = self.by_cid.pop(cid, None)
            if o is not None:
                n += 1
                if o.triggered and self.by_triggered_id.get(o.order_id) is o:
                    del self.by_triggered_id[o.order_id]
                if self.by_tag.get((o.strategy_id, o.client_tag)) is o:
                    del self.by_tag[(o.strategy_id, o.client_tag)]
        return n

    def set_triggered(self, o: Order, order_id: int) -> None:
        """A conditional order's trigger was hit: the venue's MARKET order ``order_id`` works for it."""
        o.triggered = True
        o.order_id = order_id
        self.by_triggered_id[order_id] = o

    def set_terms(self, o: Order, price: int, qty: int) -> None:
        """An amend took: the order's new price and quantity (the open counts follow)."""
        if o.is_open:
            self._count(o, -1)
            o.price, o.qty = price, qty
            self._count(o, 1)
        else:
            o.price, o.qty = price, qty

    def set_cum(self, o: Order, cum_qty: int) -> int:
        """Raise the cumulative filled qty (never lowers it); returns the lots newly filled."""
        if cum_qty <= o.cum_qty:
            return 0
        if o.is_open:
            self._count(o, -1)
            new = cum_qty - o.cum_qty
            o.cum_qty = cum_qty
            self._count(o, 1)
            return new
        new = cum_qty - o.cum_qty
        o.cum_qty = cum_qty
        return new

    def find_tag(self, strategy_id: int, client_tag: int) -> Order | None:
        return self.by_tag.get((strategy_id, client_tag))
