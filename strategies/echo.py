"""Echo: answers every book update with exactly one intent (the end-to-end latency probe).

Used by ``b25 bench e2e``: its intents measure the strategy stage (BookUpdate published ->
intent written) and, through execution, tick-to-order. The order is a limit ``offset_ticks``
exchange ticks away from the touch (far enough not to fill), ``qty`` in base asset.

Modes:
  * ``alternate`` (default): no working order -> submit one; a working order -> cancel it.
    Every update gives one intent and at most two orders are ever open (one canceling).
  * ``new``: every update submits a new order (open orders grow until execution or risk
    deny them; denied intents still measure the path).
"""

from __future__ import annotations

from typing import Literal

from procs.strategy import BUY, GTC, SELL, BookView, Strategy, StrategyApi, StrategyConfig


class EchoConfig(StrategyConfig):
    offset_ticks: int = 1000  # exchange ticks from the touch
    qty: str = "0.001"
    side: Literal["buy", "sell"] = "buy"
    mode: Literal["alternate", "new"] = "alternate"


class Echo(Strategy):
    config_class = EchoConfig

    def __init__(self, config: EchoConfig, api: StrategyApi) -> None:
        super().__init__(config, api)
        n = max(api.symbol_ids) + 1
        self.lots = [0] * n
        self.offset = [0] * n
        self.min_px = [0] * n  # one exchange tick: the lowest buy price
        for sid in api.symbol_ids:
            self.lots[sid] = api.qty_to_lots(sid, config.qty)
            self.offset[sid] = config.offset_ticks * api.tick(sid)
            self.min_px[sid] = api.tick(sid)
        self.side = BUY if config.side == "buy" else SELL
        self.alternate = config.mode == "alternate"

    def on_book(self, book: BookView) -> None:
        sid = book.symbol_id
        api = self.api
        if self.alternate:
            o = api.working(sid, self.side)
            if o is not None:
                api.cancel(o.tag)
                return
        if self.side == BUY:
            ref = book.best_bid or book.best_ask
            px = max(ref - self.offset[sid], self.min_px[sid])
        else:
            ref = book.best_ask or book.best_bid
            px = ref + self.offset[sid]
        if ref:
            api.submit_limit(sid, self.side, px, self.lots[sid], GTC)
