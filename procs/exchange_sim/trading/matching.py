"""Matching engine of the simulator: simulated orders against the market book, per symbol.

Everything is integer ticks and lots. The market book (``MarketView``) is the truth the market
side generates or replays; simulated orders (ours, from the order API) interact with it like
this:

* **Aggressive orders** walk the displayed opposite levels best first (and simulated resting
  orders of *other* accounts at those prices). Orders of the same account never match each
  other: the aggressor passes over them (a simple self-trade prevention; Binance would expire
  one side instead).
* **Market impact** (``market_impact=True``, default): liquidity a simulated order took is
  remembered per level as *consumed* and hidden from later simulated orders until the market
  itself removes that much from the level (a decrease of the level is attributed to our
  consumption first; a level that vanishes forgets it). hftbacktest assumes no impact, which
  lets a strategy take the same displayed size again and again; hiding it is the cautious
  choice. With ``market_impact=False`` aggressive fills leave the view untouched.
* **Queue position**: a resting order joins the queue behind the quantity displayed at its
  price (``queue_ahead``). Market trades at that price consume the queue ahead first and only
  the remainder fills us. A decrease of the level that is not a trade (a cancel somewhere in
  the queue) is, in the ``conservative`` model, assumed to come from behind us: the queue
  ahead only shrinks when the level shrinks below it. ``prorata`` removes the share
  ``queue_ahead / level`` of every non-trade decrease (trade quantity seen at the level is
  subtracted from the next decrease first, so it is not counted twice). Both models work the
  same for generated and replayed markets because they use only level updates and trades.
* **Trade-through**: a market trade at a price worse than a resting order's price fills that
  order (at its own price, as maker) up to the trade quantity, best price then time first.
* **Crossing book**: a market level that appears on the other side at or through a resting
  order's price fills it (at the resting price) up to the level's unconsumed quantity; that
  quantity is then marked consumed so the same displayed size cannot fill twice.
"""

from __future__ import annotations

from typing import Protocol

from procs.exchange_sim.api import MarketView

NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
EXPIRED = "EXPIRED"
REJECTED = "REJECTED"


class SimOrder:
    """One simulated order; mutable state owned by its SymbolEngine (or, while a conditional order
    waits for its trigger, by the venue's trigger book)."""

    __slots__ = (
        "account", "symbol", "order_id", "client_order_id", "is_buy", "type", "tif",
        "price_ticks", "qty_lots", "filled_lots", "cum_quote", "status", "reduce_only",
        "time_ms", "update_ms", "queue_ahead", "expire_reason", "resp_type", "fee_total",
        "position_side", "closing", "orig_type", "stop_ticks", "working_type", "price_protect",
        "close_position", "activation_ticks", "callback_rate", "amendments", "algo_id", "counted_closed",
    )

    def __init__(
        self, *, account: str, symbol: str, order_id: int, client_order_id: str, is_buy: bool,
        type: str, tif: str, price_ticks: int, qty_lots: int, reduce_only: bool, time_ms: int,
        position_side: str = "BOTH", closing: bool | None = None,
    ) -> None:
        self.account = account
        self.symbol = symbol
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.is_buy = is_buy
        self.type = type
        self.tif = tif
        self.price_ticks = price_ticks  # 0 for MARKET
        self.qty_lots = qty_lots
        self.filled_lots = 0
        self.cum_quote = 0  # sum of price_ticks * lots over fills (exact)
        self.status = NEW
        self.reduce_only = reduce_only
        self.time_ms = time_ms
        self.update_ms = time_ms
        self.queue_ahead = 0
        self.expire_reason = 0
        self.resp_type = "ACK"
        self.fee_total = None
        self.position_side = position_side
        # closes a position only: reduce-only, or a hedge-mode SELL LONG / BUY SHORT
        self.closing = reduce_only if closing is None else closing
        self.orig_type = type  # a triggered conditional order keeps its conditional type here
        self.stop_ticks = 0
        self.working_type = "CONTRACT_PRICE"
        self.price_protect = False
        self.close_position = False
        self.activation_ticks = 0
        self.callback_rate = ""  # trailing stops: percent as sent ("1.5")
        self.amendments = 0  # PUT /fapi/v1/order count (the exchange allows < 10000)
        self.algo_id = 0  # the algo order this order was placed for, 0 for none
        self.counted_closed = False  # among the venue's kept closed orders (Venue.keep_closed)

    @property
    def remaining(self) -> int:
        return self.qty_lots - self.filled_lots

    @property
    def is_open(self) -> bool:
        return self.status in (NEW, PARTIALLY_FILLED)


class FillSink(Protocol):
    """Told about every fill; owns accounts and events (``procs.exchange_sim.trading.venue.Venue``)."""

    def on_fill(self, order: SimOrder, price_ticks: int, qty_lots: int, is_maker: bool, trade_id: int) -> None:
        ...

    def reduce_cap(self, order: SimOrder) -> int:
        """Most lots a reduce-only order may fill now (its position's size on the closing side)."""
        ...


class SymbolEngine:
    """Resting simulated orders of one symbol and their matching against the market book."""

    def __init__(
        self, symbol: str, market: MarketView, sink: FillSink, *, market_impact: bool = True,
        queue_model: str = "conservative", depth: int = 1000,
    ) -> None:
        self.symbol = symbol
        self.market = market
        self.sink = sink
        self.market_impact = market_impact
        self.prorata = queue_model == "prorata"
        self.depth = depth
        # side (True = bid) -> price -> orders in time priority
        self.book: dict[bool, dict[int, list[SimOrder]]] = {True: {}, False: {}}
        self.best: dict[bool, int | None] = {True: None, False: None}
        # market side (True = bid levels) -> price -> lots taken by simulated orders
        self.consumed: dict[bool, dict[int, int]] = {True: {}, False: {}}
        # last displayed qty seen, only for levels we care about (resting orders or consumed)
        self.known: dict[bool, dict[int, int]] = {True: {}, False: {}}
        self.traded: dict[bool, dict[int, int]] = {True: {}, False: {}}  # prorata bookkeeping
        self.next_trade_id = 1

    # -- helpers ---------------------------------------------------------------------------
    def _avail(self, is_bid_level: bool, price: int, displayed: int) -> int:
        return max(0, displayed - self.consumed[is_bid_level].get(price, 0))

    def _crosses(self, is_buy: bool, limit: int | None, price: int) -> bool:
        if limit is None:
            return True
        return price <= limit if is_buy else price >= limit

    def _trade_id(self) -> int:
        tid = self.next_trade_id
        self.next_trade_id += 1
        return tid

    def _refresh_best(self, side: bool) -> None:
        prices = self.book[side]
        self.best[side] = (max(prices) if side else min(prices)) if prices else None

    def _opposite_prices(self, order: SimOrder, limit: int | None) -> list[tuple[int, int]]:
        """(price, displayed) of every opposite price the order may trade at, best first."""
        prices: dict[int, int] = {}
        m = self.market
        best = m.best_ask(self.symbol) if order.is_buy else m.best_bid(self.symbol)
        if best is not None and self._crosses(order.is_buy, limit, best[0]):
            # Fetch a few levels first: levels() sorts the side, and most orders cross one or two.
            n = 8
            while True:
                lv = m.levels(self.symbol, not order.is_buy, min(n, self.depth))
                for p, q in lv:
                    if not self._crosses(order.is_buy, limit, p):
                        break  # levels come best first
                    prices[p] = q
                else:
                    if len(lv) == min(n, self.depth) and n < self.depth:
                        prices.clear()
                        n *= 8
                        continue
                break
        for p in self.book[not order.is_buy]:
            if self._crosses(order.is_buy, limit, p) and p not in prices:
                prices[p] = 0
        return sorted(prices.items(), key=lambda pq: pq[0], reverse=not order.is_buy)

    def _cap(self, order: SimOrder, want: int) -> int:
        if order.closing:
            return max(0, min(want, self.sink.reduce_cap(order)))
        return want

    def _apply_fill(self, order: SimOrder, price: int, qty: int, is_maker: bool, trade_id: int) -> None:
        order.filled_lots += qty
        order.cum_quote += price * qty
        order.status = FILLED if order.filled_lots >= order.qty_lots else PARTIALLY_FILLED
        if is_maker and order.status == FILLED:
            self._remove(order)
        self.sink.on_fill(order, price, qty, is_maker, trade_id)

    def _remove(self, order: SimOrder) -> None:
        side = order.is_buy
        level = self.book[side].get(order.price_ticks)
        if level is None or order not in level:
            return
        level.remove(order)
        if not level:
            del self.book[side][order.price_ticks]
            self._forget_level(side, order.price_ticks)
            self._refresh_best(side)

    def _forget_level(self, side: bool, price: int) -> None:
        if price not in self.consumed[side]:
            self.known[side].pop(price, None)
        self.traded[side].pop(price, None)

    # -- order entry -----------------------------------------------------------------------
    def fillable(self, order: SimOrder, need: int) -> int:
        """Lots the order could take right now (stops counting at ``need``)."""
        limit = None if order.type == "MARKET" else order.price_ticks
        is_buy = order.is_buy
        best = self.market.best_ask(self.symbol) if is_buy else self.market.best_bid(self.symbol)
        if best is not None and self._crosses(is_buy, limit, best[0]):
            # the common case (a post-only quote that would cross): the market's best opposite
            # level is the first price counted unless a resting order of ours is better, so when
            # it alone covers ``need`` the count is that level's, without sorting the side
            p = best[0]
            resting = self.book[not is_buy]
            if not any(q < p if is_buy else q > p for q in resting):
                total = self._avail(not is_buy, p, best[1])
                for r in resting.get(p, ()):
                    if r.account != order.account:
                        total += r.remaining
                if total >= need:
                    return total
        total = 0
        for p, displayed in self._opposite_prices(order, limit):
            total += self._avail(not order.is_buy, p, displayed)
            for r in self.book[not order.is_buy].get(p, ()):
                if r.account != order.account:
                    total += r.remaining
            if total >= need:
                break
        return total

    def take(self, order: SimOrder) -> None:
        """Match an incoming order against the book; the caller rests or expires the rest."""
        limit = None if order.type == "MARKET" else order.price_ticks
        mkt_side = not order.is_buy  # the market levels we take are on the other side
        for p, displayed in self._opposite_prices(order, limit):
            if order.remaining <= 0:
                break
            avail = self._avail(mkt_side, p, displayed)
            taken_mkt = 0
            for r in list(self.book[mkt_side].get(p, ())):
                if r.account == order.account:
                    continue
                chunk = min(r.queue_ahead, avail) - taken_mkt
                if chunk > 0:
                    t = self._cap(order, min(chunk, order.remaining))
                    if t > 0:
                        self._apply_fill(order, p, t, False, self._trade_id())
                        taken_mkt += t
                if order.remaining <= 0:
                    break
                t = self._cap(order, min(r.remaining, order.remaining))
                t = self._cap(r, t)
                if t > 0:
                    tid = self._trade_id()
                    self._apply_fill(r, p, t, True, tid)
                    self._apply_fill(order, p, t, False, tid)
                if order.remaining <= 0 or (order.closing and self._cap(order, 1) == 0):
                    break
            if order.remaining > 0:
                t = self._cap(order, min(avail - taken_mkt, order.remaining))
                if t > 0:
                    self._apply_fill(order, p, t, False, self._trade_id())
                    taken_mkt += t
            if taken_mkt and self.market_impact:
                self.consumed[mkt_side][p] = self.consumed[mkt_side].get(p, 0) + taken_mkt
                self.known[mkt_side].setdefault(p, displayed)
                for r in self.book[mkt_side].get(p, ()):
                    r.queue_ahead = max(0, r.queue_ahead - taken_mkt)
            if order.closing and self._cap(order, 1) == 0:
                break

    def rest(self, order: SimOrder) -> None:
        """Put an order (with remaining qty) on the book behind the displayed queue."""
        side = order.is_buy
        p = order.price_ticks
        displayed = self.market.displayed_qty(self.symbol, side, p)
        # Liquidity we already took from this level is not ahead of us any more.
        order.queue_ahead = self._avail(side, p, displayed)
        self.book[side].setdefault(p, []).append(order)
        self.known[side].setdefault(p, displayed)
        self._refresh_best(side)

    def cancel(self, order: SimOrder) -> None:
        self._remove(order)

    def open_orders(self) -> list[SimOrder]:
        return [o for side in (True, False) for lvl in self.book[side].values() for o in lvl]

    # -- market events ---------------------------------------------------------------------
    def watches(self, is_bid: bool, price: int, qty: int) -> bool:
        """Whether ``on_book_level`` would do anything with this level (a market that applies a
        whole event at once asks before calling it: b25 backtest)."""
        if price in self.known[is_bid]:
            return True
        best = self.best[not is_bid]
        return qty > 0 and best is not None and (price >= best if is_bid else price <= best)

    def on_book_level(self, is_bid: bool, price: int, qty: int) -> None:
        known = self.known[is_bid]
        old = known.get(price)
        if old is not None:
            cons = self.consumed[is_bid]
            c_old = cons.get(price, 0)
            c = c_old
            if c:
                # The market removing size from a level is attributed to our consumption first
                # (it is the market catching up with what we took from the front).
                c = 0 if qty == 0 else max(0, c - max(0, old - qty))
                c = min(c, qty)
                if c:
                    cons[price] = c
                else:
                    del cons[price]
            orders = self.book[is_bid].get(price)
            if orders and qty < old:
                eff = qty - c  # what the market really still shows ahead of or behind us
                d = (old - qty) - (c_old - c)
                if self.prorata and d > 0:
                    tr = self.traded[is_bid].get(price, 0)
                    by_trade = min(tr, d)
                    if tr:
                        self.traded[is_bid][price] = tr - by_trade
                    d_nt = d - by_trade
                    old_eff = old - c_old
                    for r in orders:
                        if d_nt and old_eff > 0:
                            r.queue_ahead -= d_nt * r.queue_ahead // old_eff
                        r.queue_ahead = min(r.queue_ahead, eff)
                else:
                    for r in orders:
                        r.queue_ahead = min(r.queue_ahead, eff)
            if orders or price in cons:
                known[price] = qty
            else:
                del known[price]
        # A market level on the other side at or through our resting price fills us.
        ours = not is_bid
        best = self.best[ours]
        if qty > 0 and best is not None and (price <= best if ours else price >= best):
            self._fill_crossed(is_bid, price, qty)

    def _fill_crossed(self, level_is_bid: bool, price: int, qty: int) -> None:
        ours = not level_is_bid
        avail = self._avail(level_is_bid, price, qty)
        if avail <= 0:
            return
        used = 0
        for p in sorted(self.book[ours], reverse=ours):
            if not (p >= price if ours else p <= price):
                break
            for r in list(self.book[ours].get(p, ())):
                t = self._cap(r, min(r.remaining, avail - used))
                if t > 0:
                    self._apply_fill(r, p, t, True, self._trade_id())
                    used += t
                if used >= avail:
                    break
            if used >= avail:
                break
        if used:
            # Always remembered (even without market impact) so one displayed size fills once.
            self.consumed[level_is_bid][price] = self.consumed[level_is_bid].get(price, 0) + used
            self.known[level_is_bid][price] = qty

    def on_market_trade(self, price: int, qty: int, buyer_is_maker: bool) -> None:
        # buyer_is_maker: the seller was the aggressor and hit bids, so our resting buys are at risk.
        ours = buyer_is_maker
        book = self.book[ours]
        if not book:
            return
        best = self.best[ours]
        if best is None or (best < price if ours else best > price):
            return
        if self.prorata and price in book:
            self.traded[ours][price] = self.traded[ours].get(price, 0) + qty
        budget = qty
        for p in sorted(book, reverse=ours):
            # No early exit on an empty budget: the trade still consumed the queue at its price.
            through = p > price if ours else p < price
            if not through and p != price:
                break
            level_filled = 0
            for r in list(book.get(p, ())):
                if through:
                    t = self._cap(r, min(r.remaining, budget))
                else:
                    ahead = r.queue_ahead
                    r.queue_ahead = max(0, ahead - qty)
                    leftover = min(max(0, qty - ahead) - level_filled, budget)
                    t = self._cap(r, min(r.remaining, leftover)) if leftover > 0 else 0
                if t > 0:
                    self._apply_fill(r, p, t, True, self._trade_id())
                    budget -= t
                    level_filled += t
                if budget <= 0 and through:
                    break
