"""Scratch copies of the engine's rings, counters and one strategy slot, for ``Engine.keep_warm``.

On this VM a strategy that sleeps 5 ms between book updates answers one in several times
the time it takes back to back: the code and data of the path went cold meanwhile. The
engine therefore runs its own per-event code (``_read_books`` -> ``StrategyApi`` ->
``submit``/``cancel`` -> ``_write`` -> ``Producer.try_publish`` -> counters) every
``keep_warm_ms`` of quiet, with every target swapped for one of these: rings and a counters
block in private anonymous memory (nothing in /dev/shm, no other process sees them), a
strategy state of its own and ``WarmStrategy`` in place of the user's strategies (their
callbacks may have side effects: they are never called).
"""

from __future__ import annotations

import numpy as np

from procs.core import messages as M
from procs.core.config import Section
from procs.core.registry import MD_BOOK, ORDERS_STRATEGY
from shm import layout as L
from shm.counters import COUNTER_DTYPE, Counters, counters_rows
from shm.registry import Registry
from shm.ring import Consumer, Producer
from shm.segment import Segment

from .api import BookView, Strategy, StrategyApi, StrategyHost
from .config import StrategyEntry
from .loader import Plugin
from .slot import Slot
from .state import StrategyState

SCRATCH_CAPACITY = 64  # records per scratch ring (the code path does not depend on it)
WARM_ID = "keep_warm"


def scratch_segment(kind: int, capacity: int, dtype: np.dtype, policy: int = 0) -> Segment:
    """A segment with the shm layout in private anonymous memory (the same header words)."""
    return Segment.anonymous(WARM_ID, kind, capacity, dtype, policy)


class WarmConfig(Section):
    pass


class WarmStrategy(Strategy):
    """What a strategy does with a book update, through the real api: look at the top, find
    its working order, then cancel it or submit one (alternately, like ``strategies.echo``)."""

    config_class = WarmConfig

    def on_book(self, book: BookView) -> None:
        sid = book.symbol_id
        api = self.api
        o = api.working(sid, M.BUY)
        if o is not None:
            api.cancel(o.tag)
            return
        ref = book.best_bid or book.best_ask
        if ref and book.usable:
            tick = api.tick(sid)
            api.submit_limit(sid, M.BUY, max(ref - 1000 * tick, tick), api.step(sid), M.GTC)


class ScratchPath:
    """Everything ``Engine.keep_warm`` swaps in: book ring (producer and reader), orders ring,
    counters, and a slot running ``WarmStrategy`` on symbol ``sid`` with its own state."""

    def __init__(self, engine: StrategyHost, registry: Registry, instance: str, counters_ids: type, hist_ids: type,
                 units: list[float], sid: int) -> None:
        book_dt = registry.ring_spec(MD_BOOK).dtype
        seg = scratch_segment(L.KIND_RING, SCRATCH_CAPACITY, book_dt, L.POLICY_BROADCAST)
        self.book_out = Producer(seg, book_dt, instance)
        self.books = Consumer(seg, book_dt, None, None)  # an observer: the broadcast read path
        orders_dt = registry.ring_spec(ORDERS_STRATEGY).dtype
        self.orders = Producer(scratch_segment(L.KIND_RING, SCRATCH_CAPACITY, orders_dt, L.POLICY_GATING),
                               orders_dt, instance)
        rows = counters_rows(counters_ids, hist_ids)
        self.counters = Counters(scratch_segment(L.KIND_COUNTERS, rows, COUNTER_DTYPE), counters_ids, hist_ids)
        n = len(units)
        self.sid = sid
        self.bid = [0] * n
        self.ask = [0] * n
        self.state = StrategyState(WARM_ID, 0, units)
        symbol = engine.symbols[sid]
        entry = StrategyEntry(id=WARM_ID, class_path=f"{__name__}:WarmStrategy", symbols=[symbol], num=1)
        plugin = Plugin(__name__, WarmStrategy, WarmConfig, WARM_ID)
        self.api = StrategyApi(engine, WARM_ID, 0, self.state, [sid])
        self.api.running = True
        self.slot = Slot(entry, plugin, WarmStrategy(WarmConfig(), self.api), self.api)
        self.routes: list[list[Slot]] = [[] for _ in range(n)]
        self.routes[sid].append(self.slot)

    def forget(self) -> None:
        """Drop the scratch orders (no execution answers them)."""
        st = self.state
        st.orders.clear()
        st.closed.clear()
        for lst in st.by_symbol:
            lst.clear()
