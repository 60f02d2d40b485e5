"""MarketMaker: quotes both sides around the mid (or microprice), skewed by inventory.

Each book update computes a fair price (``price_ref``), shifts it against the position
(``skew_ticks`` at full ``max_position``: long -> both quotes move down, so the ask is hit more
and the bid less), and places a bid and an ask at least ``spread_ticks`` apart, rounded away
from fair to the exchange tick. A resting quote is cancelled only when its target moved by
``requote_ticks`` or more (queue position is worth keeping); the replacement goes out when the
cancel is confirmed, so a side never has two live quotes. The side that would take the
position beyond ``max_position`` is not quoted. Post-only by default: it never takes.
A resyncing or one-sided book, or no book for ``stale_ms``, cancels the quotes. A reload
keeps the resting quotes: the new instance finds them through ``api.working`` and moves them
only if its targets differ (the engine cancels everything at shutdown). With
``recovered_orders = "adopt"``, the quotes a killed process left working come back the same way
(the first on a side is the quote, moved when its target differs; any other on that side is
cancelled).
"""

from __future__ import annotations

import math
from typing import Literal

from procs.core import messages as M
from procs.strategy import (
    BUY,
    DECISION_CANCEL,
    DECISION_QUOTE,
    GTC,
    POST_ONLY,
    SELL,
    BookView,
    Order,
    OrderEventView,
    Strategy,
    StrategyApi,
    StrategyConfig,
)

_STALE_TIMER = 1


class MarketMakerConfig(StrategyConfig):
    quote_qty: str = "0.001"  # per side, base asset
    max_position: str = "0.01"  # absolute, base asset
    price_ref: Literal["mid", "microprice"] = "mid"
    spread_ticks: int = 4  # minimum quoted spread, bid to ask, in exchange ticks
    skew_ticks: float = 2.0  # fair-price shift at full max_position, exchange ticks
    requote_ticks: int = 1  # move a resting quote only when its target moved this far
    post_only: bool = True  # a quote that would take is rejected instead
    stale_ms: int = 2000  # no book for this long: cancel the quotes (0 = never)

    def __post_init__(self) -> None:
        if self.spread_ticks < 1 or self.requote_ticks < 1 or self.skew_ticks < 0 or self.stale_ms < 0:
            raise ValueError(f"need spread_ticks>=1 requote_ticks>=1 skew_ticks>=0 stale_ms>=0: "
                             f"spread_ticks={self.spread_ticks} requote_ticks={self.requote_ticks} "
                             f"skew_ticks={self.skew_ticks} stale_ms={self.stale_ms}")


class MarketMaker(Strategy):
    config_class = MarketMakerConfig

    def __init__(self, config: MarketMakerConfig, api: StrategyApi) -> None:
        super().__init__(config, api)
        n = max(api.symbol_ids) + 1
        self.tick = [1] * n
        self.step = [1] * n
        self.qty = [0] * n
        self.max_pos = [0] * n
        for sid in api.symbol_ids:  # a quantity that does not fit the lot scale fails the load here
            self.tick[sid] = api.tick(sid)
            self.step[sid] = api.step(sid)
            self.qty[sid] = _lots(api, sid, config.quote_qty, "quote_qty")
            self.max_pos[sid] = _lots(api, sid, config.max_position, "max_position")
        self.want = [[0, 0, 0, 0] for _ in range(n)]  # per symbol: bid px, bid qty, ask px, ask qty
        self.last_book_ns = [0] * n
        self.micro = config.price_ref == "microprice"
        self.tif = POST_ONLY if config.post_only else GTC

    def on_start(self) -> None:
        if self.config.stale_ms:
            period = self.config.stale_ms * 1_000_000 // 2
            self.api.set_timer(_STALE_TIMER, period, period)

    def on_book(self, book: BookView) -> None:
        sid = book.symbol_id
        api = self.api
        self.last_book_ns[sid] = api.now_ns()
        if not book.usable:
            if api.open_orders(sid):
                api.cancel_all(sid)
            api.signal(sid, 0.0, DECISION_CANCEL)
            return
        tick = self.tick[sid]
        bb = book.best_bid
        ba = book.best_ask
        fair = book.microprice if self.micro else (bb + ba) * 0.5
        pos = api.position(sid)
        max_pos = self.max_pos[sid]
        center = fair - self.config.skew_ticks * tick * pos / max_pos
        half = self.config.spread_ticks * tick * 0.5
        bid = math.floor((center - half) / tick) * tick
        ask = math.ceil((center + half) / tick) * tick
        if self.config.post_only:  # never cross the touch: a post-only order that would take is rejected
            bid = min(bid, ba - tick)
            ask = max(ask, bb + tick)
        step = self.step[sid]
        bid_qty = min(self.qty[sid], max_pos - pos)
        ask_qty = min(self.qty[sid], max_pos + pos)
        bid_qty -= bid_qty % step
        ask_qty -= ask_qty % step
        w = self.want[sid]
        w[0], w[1], w[2], w[3] = bid, bid_qty, ask, ask_qty
        self._quote(sid, BUY, bid, bid_qty)
        self._quote(sid, SELL, ask, ask_qty)
        api.signal(sid, (center - (bb + ba) * 0.5) / tick, DECISION_QUOTE, aux=float(pos))

    def _quote(self, sid: int, side: int, px: int, qty: int) -> None:
        api = self.api
        o = api.working(sid, side)
        if o is None:
            if qty > 0 and px > 0 and not api.has_canceling(sid, side):
                api.submit_limit(sid, side, px, qty, self.tif)
            return
        if qty <= 0 or abs(o.price - px) >= self.config.requote_ticks * self.tick[sid] or o.remaining > qty:
            api.cancel(o.tag)

    def on_order_event(self, event: OrderEventView, order: Order | None) -> None:
        if event.kind == M.ORDER_OPEN and order is not None:  # adopted: one quote a side
            quote = self.api.working(order.symbol_id, order.side)
            if quote is not None and quote is not order:
                self.api.cancel(order.tag)
            return
        # a confirmed cancel frees the side: put the replacement out now, not at the next book
        if event.kind == M.ORDER_CANCELED and order is not None:
            sid = order.symbol_id
            w = self.want[sid]
            if w[1] or w[3]:
                if order.side == BUY:
                    self._quote(sid, BUY, w[0], w[1])
                else:
                    self._quote(sid, SELL, w[2], w[3])

    def on_timer(self, token: int, now_ns: int) -> None:
        if token != _STALE_TIMER:
            return
        limit = self.config.stale_ms * 1_000_000
        for sid in self.api.symbol_ids:
            if self.api.open_orders(sid) and now_ns - self.last_book_ns[sid] > limit:
                self.want[sid] = [0, 0, 0, 0]
                n = self.api.cancel_all(sid)
                self.api.log_once(f"stale/{sid}", "quotes_pulled", symbol=self.api.symbol(sid), cancels=n,
                                  reason="no book update", stale_ms=self.config.stale_ms)


def _lots(api: StrategyApi, sid: int, text: str, name: str) -> int:
    try:
        lots = api.qty_to_lots(sid, text)
    except ValueError as exc:
        raise ValueError(f"{name} does not fit the lot scale: {name}={text!r} symbol={api.symbol(sid)}") from exc
    if lots <= 0:
        raise ValueError(f"{name} must be > 0: {name}={text!r}")
    return lots
