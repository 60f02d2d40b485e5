"""ImbalanceTaker: takes liquidity when the top of the book leans hard to one side.

Signal: order-book imbalance over the best ``levels`` levels,
``(bid qty - ask qty) / (bid qty + ask qty)`` in [-1, 1]. At or above ``threshold`` it buys
``qty``, at or below ``-threshold`` it sells, at most once per ``cooldown_ms`` per symbol, never
beyond ``max_position`` and never while its previous order is still open. Orders are IOC limits
at the touch plus ``slippage_ticks`` (they take what is there and never rest), or MARKET.
"""

from __future__ import annotations

from typing import Literal

from procs.strategy import (
    BUY,
    DECISION_BUY,
    DECISION_NONE,
    DECISION_SELL,
    IOC,
    SELL,
    BookView,
    Strategy,
    StrategyApi,
    StrategyConfig,
)


class ImbalanceTakerConfig(StrategyConfig):
    levels: int = 5  # top-K levels per side in the imbalance
    threshold: float = 0.6  # |imbalance| that triggers, in (0, 1]
    cooldown_ms: int = 1000  # per symbol, between orders
    qty: str = "0.001"  # base asset per order
    max_position: str = "0.005"  # absolute, base asset
    order: Literal["ioc", "market"] = "ioc"
    slippage_ticks: int = 0  # IOC limit: this many exchange ticks through the touch

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0 or self.levels < 1 or self.cooldown_ms < 0 or self.slippage_ticks < 0:
            raise ValueError(f"need 0<threshold<=1 levels>=1 cooldown_ms>=0 slippage_ticks>=0: "
                             f"threshold={self.threshold} levels={self.levels} cooldown_ms={self.cooldown_ms} "
                             f"slippage_ticks={self.slippage_ticks}")


def imbalance(book: BookView, levels: int) -> float:
    """Top-``levels`` order-book imbalance in [-1, 1]; 0.0 for an empty book."""
    b = book.bid_qty_sum(levels)
    a = book.ask_qty_sum(levels)
    return (b - a) / (b + a) if b + a > 0 else 0.0


class ImbalanceTaker(Strategy):
    config_class = ImbalanceTakerConfig

    def __init__(self, config: ImbalanceTakerConfig, api: StrategyApi) -> None:
        super().__init__(config, api)
        n = max(api.symbol_ids) + 1
        self.qty = [0] * n
        self.max_pos = [0] * n
        self.slip = [0] * n
        for sid in api.symbol_ids:
            self.qty[sid] = api.qty_to_lots(sid, config.qty)
            self.max_pos[sid] = api.qty_to_lots(sid, config.max_position)
            if self.qty[sid] <= 0:
                raise ValueError(f"qty must be > 0: qty={config.qty!r}")
            self.slip[sid] = config.slippage_ticks * api.tick(sid)
        self.next_ok_ns = [0] * n
        self.cooldown_ns = config.cooldown_ms * 1_000_000
        self.market = config.order == "market"

    def on_book(self, book: BookView) -> None:
        if not book.usable:
            return
        sid = book.symbol_id
        api = self.api
        imb = imbalance(book, self.config.levels)
        th = self.config.threshold
        decision = DECISION_NONE
        if imb >= th or imb <= -th:
            now = api.now_ns()
            pos = api.position(sid)
            q = self.qty[sid]
            if now >= self.next_ok_ns[sid] and not api.open_orders(sid):
                if imb >= th and pos + q <= self.max_pos[sid]:
                    decision = DECISION_BUY
                    self._take(sid, BUY, book.best_ask + self.slip[sid], q)
                elif imb <= -th and pos - q >= -self.max_pos[sid]:
                    decision = DECISION_SELL
                    self._take(sid, SELL, book.best_bid - self.slip[sid], q)
                if decision:
                    self.next_ok_ns[sid] = now + self.cooldown_ns
        api.signal(sid, imb, decision)

    def _take(self, sid: int, side: int, px: int, q: int) -> int:
        if self.market:
            return self.api.submit_market(sid, side, q)
        return self.api.submit_limit(sid, side, px, q, IOC)
