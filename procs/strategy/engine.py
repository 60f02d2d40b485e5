"""The strategy engine: routes market data and order events to strategy plugins and writes
their intents to ``orders.strategy``.

One duty cycle (``do_work``): drain ``exec`` completely (a gating ring: execution must never
wait on us), read up to ``max_md_per_cycle`` BookUpdates and Trades and hand each to the
strategies subscribed to its symbol, fire due timers, and now and then do housekeeping.

Error policy (one visible setting, STYLE.md example 10): an exception raised by a strategy is
logged once per distinct error, counted, and that strategy is paused (its open orders are
cancelled when ``cancel_on_pause``); the others run on. A reload resumes it.

State (open orders, positions, P&L, client tags) is kept per strategy id in the engine, so a
hot reload swaps the instance and keeps the state. A reload is all-or-nothing: every changed
strategy is imported, validated and constructed first; any failure keeps the old versions.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from procs.core import log
from procs.core import messages as M
from procs.core.config import ConfigError
from procs.core.instruments import Instrument
from procs.core.registry import (
    EXEC,
    MD_BOOK,
    MD_TRADE,
    ORDERS_STRATEGY,
    SIGNALS,
    RingCapacities,
    build_registry,
)
from shm.counters import Counters
from shm.idle import Waiter
from shm.ring import Consumer

from .api import (
    ERR_BAD_INTENT,
    ERR_HELD,
    ERR_NOT_RUNNING,
    ERR_RING_FULL,
    ERR_SYMBOL,
    ERR_UNKNOWN_ORDER,
    BookView,
    OrderEventView,
    Strategy,
    StrategyApi,
    TradeView,
)
from .clock import MonotonicClock
from .config import StrategyEngineConfig, StrategyEntry, status_file
from .loader import Loader, LoadError, Plugin, decode_params
from .slot import Slot
from .state import CANCELING, STATUS_NAMES, SUBMITTED, WORKING, Order, StrategyState
from .warm import ScratchPath

CONSUMER = "strategy"
HOUSEKEEPING_NS = 100_000_000
STATUS_NS = 1_000_000_000  # the status file is rewritten at most this often, and only when it changed
ATTACH_RETRY_NS = 1_000_000_000


class Counter(IntEnum):
    """strategy counters (labels are the lower-case names)."""

    BOOKS_IN = 0
    TRADES_IN = 1
    EXEC_EVENTS_IN = 2
    INTENTS_OUT = 3
    INTENTS_DROPPED = 4  # orders.strategy full: execution is behind
    BAD_INTENTS = 5
    EXCEPTIONS = 6
    PAUSED = 7  # gauge: strategies paused now
    RELOADS = 8
    RELOAD_FAILURES = 9
    SIGNALS_OUT = 10
    TIMERS_FIRED = 11
    FILLS = 12  # fill reports applied to positions (a repeated report is not)
    FOREIGN_EVENTS = 13  # exec events of strategies this process does not run
    UNKNOWN_ORDER_EVENTS = 14
    RUNNING = 15  # gauge: strategies running now
    CONTROL_COMMANDS = 16
    # replay harness lockstep gauges, kept only with [strategy] sim_clock (procs/tools/replay/lockstep.py);
    # the *_DONE positions are written last in a duty cycle, after every intent it caused
    CLOCK_SEEN = 17  # the simulated time the last duty cycle fired timers for
    NEXT_TIMER = 18  # the earliest timer deadline (simulated ns)
    BOOKS_DONE = 19  # md.book position handled
    TRADES_DONE = 20  # md.trade position handled
    EXEC_DONE = 21  # exec position handled
    INTENTS_HELD = 22  # new orders held (ERR_HELD) after a denial for the system's state
    ORDERS_ADOPTED = 23  # open orders of a previous process adopted (recovered_orders = "adopt")
    ORDERS_RECOVERED_CANCELED = 24  # open orders of a previous process (or of no strategy now) cancelled
    ORDERS_GONE = 25  # orders we held open that execution's report did not list: dropped
    REPORTS = 26  # reports of open orders received from execution
    EVENTS_REPLAYED = 27  # exec events read again after a restart whose effects the state file held
    OPEN_ORDERS = 28  # gauge: open orders of every strategy (the working sets), each housekeeping


class Hist(IntEnum):
    BOOK_TO_INTENT = 0  # BookUpdate.ts_pub -> intent written


class RingSource(Protocol):
    """Where the engine's rings come from when not shared memory (``b25 backtest``): producers
    with ``try_publish``/``next_sequence``/``prewake``/``heartbeat``/``close``, consumers with
    ``poll_one``/``has_data``/``position``/``heartbeat``/``close``, as ``shm.ring``'s."""

    def producer(self, name: str) -> Any: ...

    def consumer(self, name: str) -> Any: ...


# the per-event path reads plain ints and bound functions (no enum or module attribute lookups)
_BOOKS_IN = int(Counter.BOOKS_IN)
_INTENTS_OUT = int(Counter.INTENTS_OUT)
_BOOK_TO_INTENT = int(Hist.BOOK_TO_INTENT)
_BUY, _SELL, _SUBMIT, _SOURCE = M.BUY, M.SELL, M.SUBMIT_ORDER, M.SOURCE_STRATEGY
_DENIED = M.ORDER_DENIED
_REPORT_KINDS = M.ORDER_OPEN  # ORDER_OPEN and ORDERS_REPORTED: the highest kinds
KEEP_STATE_ARCHIVES = 10  # state files set aside for another venue session (Engine._archive_state)
# denials for the whole system's state, not the order: the next order would be denied the same
# denials the next order would meet as well: the system's state, or its order rate (every
# strategy's orders of the last second, [risk] max_orders_per_s)
_HOLD_REASONS = frozenset((M.DENY_HALTED, M.DENY_RECOVERING, M.DENY_RISK_UNAVAILABLE, M.DENY_BREAKER_OPEN,
                           M.DENY_JOURNAL_FULL, M.DENY_ORDER_RATE))
_mono = time.monotonic_ns


def _cid(v: tuple) -> str:
    """The client order id of an OrderEvent tuple."""
    return v[24].rstrip(b"\0").decode(errors="replace")


class Engine:
    """Routes events to strategies, writes their intents, keeps their state; one per process."""

    def __init__(self, cfg: StrategyEngineConfig, instance: str, symbols: list[str],
                 instruments: dict[str, Instrument], depth: int, counters: Counters,
                 read_config: Callable[[], StrategyEngineConfig] | None = None,
                 clock: object | None = None, waiter: Waiter | None = None, venue_session: str = "",
                 rings: RingCapacities | None = None, ring_source: RingSource | None = None) -> None:
        self.cfg = cfg
        # the simulator process whose account the positions are held at ("" a real venue, or
        # unknown): saved positions from another session are not restored (_load_state)
        self.venue_session = venue_session
        self.instance = instance
        self.symbols = list(symbols)
        self.depth = depth
        self.counters = counters
        self.read_config = read_config
        self.sim_clock = bool(cfg.sim_clock) and clock is None
        if self.sim_clock:  # a replay: the recording's time (procs/core/simclock.py)
            from procs.core.simclock import SimClock

            clock = SimClock(instance)
        self.clock = clock or MonotonicClock()
        self.waiter = waiter
        self.registry = build_registry(depth, rings)
        self.instruments: list[Instrument] = []
        for s in self.symbols:
            inst = instruments.get(s)
            self.instruments.append(inst if inst is not None else Instrument(symbol=s, price_scale=8, qty_scale=8))
        self._have_instrument = [s in instruments for s in self.symbols]
        self.ticks = [i.tick_ticks for i in self.instruments]
        self.steps = [i.step_lots for i in self.instruments]
        self.units = [float(i.contract_size) * 10.0 ** -(i.price_scale + i.qty_scale) for i in self.instruments]
        n = len(self.symbols)
        self._bid = [0] * n
        self._ask = [0] * n
        self.loader = Loader()
        self.slots: dict[str, Slot] = {}
        self.states: dict[str, StrategyState] = {}  # by strategy id; kept after a strategy is removed
        self.versions: list[dict] = []  # every applied config version
        self._by_num: dict[int, StrategyState] = {}
        self._slot_by_num: dict[int, Slot] = {}
        self._book_routes: list[list[Slot]] = [[] for _ in range(n)]
        self._trade_routes: list[list[Slot]] = [[] for _ in range(n)]
        self._book_view = BookView(depth)
        self._trade_view = TradeView()
        self._event_view = OrderEventView()
        # the market-data event being handled: copied into every intent it causes (trace)
        self._c_recv = 0
        self._c_seq = 0
        self._c_pub = 0
        self._next_timer = 1 << 62
        self._next_house = 0
        self._next_attach = 0
        self._next_pnl_log = 0
        self._books: Consumer | None = None
        self._trades: Consumer | None = None
        self._exec: Consumer | None = None
        # the rings: shared memory, or what ``ring_source`` gives (b25 backtest runs this engine in-process)
        self.ring_source = ring_source
        self._orders = (self.registry.producer(instance, ORDERS_STRATEGY) if ring_source is None
                        else ring_source.producer(ORDERS_STRATEGY))
        self._signals = self.registry.producer(instance, SIGNALS) if ring_source is None else ring_source.producer(SIGNALS)
        self._publish_intent = self._orders.try_publish
        # keep_warm: with no event for keep_warm_ms, run the per-event code on scratch data
        self._warm_ns = int(cfg.runtime.keep_warm_ms * 1e6) if ring_source is None else 0  # scratch rings are shm
        self._last_busy = 0
        self._next_warm = 0
        self._take_runtime_settings(cfg)
        self._warm: ScratchPath | None = None
        # a replay or backtest runs on a fresh instance: no predecessor left orders working, and
        # what it does (tags, intent ids) must not depend on the host clock or on what ran before
        self.fresh_start = self.sim_clock or ring_source is not None
        self._tag_base = 0 if self.fresh_start else int(time.time()) * 1_000_000  # unique across restarts
        if cfg.state_file == "-":
            self.state_path: Path | None = None
        else:
            self.state_path = Path(cfg.state_file or f"run/strategy/{instance}.state.json")
        self._snapshots: dict[str, dict] = {}
        self._dirty = False
        self._next_save = 0
        self.status_path = status_file(cfg, instance)
        self.errors: dict[str, dict] = {}  # strategy id -> its last error (an exception, a failed reload)
        self._status_text = ""
        self._next_status = 0
        # exec is read without storing the cursor; a drain that applied fills saves the state
        # first, so a SIGKILL never loses a fill (re-read, it is skipped: _saved_exec)
        self._exec_store_pending = False
        self._fills_unsaved = False
        self._saved_exec: tuple[int, int] | None = None  # (position, ring created_ns) the state file holds
        self._skip_until = 0
        # the report of open orders asked for at start (its intent_id; None = none outstanding)
        self._report_intent: int | None = None
        self._report_unsent = False
        self._report_asked = 0
        self._report_seen: set[tuple[int, int]] = set()
        self._report_counts = [0, 0]  # adopted, cancelled since the last report closed

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """Attach the input rings (waiting up to attach_timeout_s) and start every strategy.

        Raises ConfigError/LoadError when a strategy cannot be loaded: a bad start is fatal.
        """
        self._load_state()
        self._attach(self.cfg.attach_timeout_s)
        self._apply(self.cfg, target="", reason="start")
        if not self.fresh_start:  # a replay or backtest: nothing was left working, no report to ask for
            self._ask_report()

    def _attach(self, timeout: float) -> None:
        for attr, ring in (("_exec", EXEC), ("_books", MD_BOOK), ("_trades", MD_TRADE)):
            if getattr(self, attr) is not None:
                continue
            try:
                c = (self.registry.consumer(self.instance, ring, CONSUMER, timeout=timeout, waiter=self.waiter)
                     if self.ring_source is None else self.ring_source.consumer(ring))
            except (TimeoutError, FileNotFoundError) as exc:
                log.once(f"attach_wait/{ring}", "warn", "ring_not_ready", ring=ring, reason=str(exc),
                         action="retrying every second")
                continue
            setattr(self, attr, c)
            log.info("ring_attached", ring=ring, consumer=CONSUMER, position=c.position)
            if ring == EXEC and self._saved_exec is not None:
                position, created = self._saved_exec
                if c.created_ns == created and position > c.position:
                    self._skip_until = position  # read again, already in the restored positions

    def close(self) -> None:
        """Stop every strategy (on_stop), cancel open orders when configured, detach."""
        for slot in list(self.slots.values()):
            self._stop_slot(slot, "shutdown")
        if self.cfg.cancel_on_stop:
            n = sum(self._cancel_state(st) for st in self.states.values())
            if n:
                log.info("open_orders_cancelled", count=n, reason="shutdown")
        self._log_pnl()
        self.save_state()
        self._store_exec()
        self.write_status(stopped=True)
        for c in (self._books, self._trades, self._exec):
            if c is not None:
                c.close()
        self._books = self._trades = self._exec = None
        self._orders.close()
        self._signals.close()

    # -- the duty cycle ----------------------------------------------------------------------
    def do_work(self) -> int:
        n = 0
        if self._exec is not None:
            n += self._drain_exec()
        if self._books is not None:
            n += self._read_books()
        if self._trades is not None:
            n += self._read_trades()
        now = self.clock.now_ns()
        if now >= self._next_timer:
            n += self._fire_timers(now)
        house = time.monotonic_ns() if self.sim_clock else now  # attach retries, saves: host time
        if n:
            self._last_busy = house
        elif self._warm_ns and house >= self._next_warm and house - self._last_busy >= self._warm_ns:
            self._next_warm = house + self._warm_ns
            self.keep_warm()
        if house >= self._next_house:
            self._housekeeping(house)
        if self._exec_store_pending:
            self._store_exec()
        if self.sim_clock:
            self._lockstep_marks(now)
        return n

    def _store_exec(self) -> None:
        """Store the exec read position, saving the state first when fills were applied since
        the last save: a restart then reads again only what the state file already holds."""
        self._exec_store_pending = False
        if self._fills_unsaved:
            self._fills_unsaved = False
            self.save_state()
        if self._exec is not None:
            self._exec.store_position()

    def on_wake(self) -> None:
        """A producer's post ended the idle park: a record, or market_data's prewake promise of
        one, is on its way.

        The keep-warm tick waits a period: run now it would hold the real book behind scratch
        work (docs/decisions/006-keep-warm-ticks.md). When nothing has landed yet (a prewake:
        market_data is still decoding the frame), watch the md cursors for up to
        ``wake_watch_us``, one memory load a turn, instead of running whole duty cycles (exec
        drain, timers, housekeeping) that the book would then wait behind; the price is up to
        that long of CPU per prewake that brings no book (docs/decisions/008-strategy-wake-watch.md)."""
        self._last_busy = time.monotonic_ns() if self.sim_clock else self.clock.now_ns()
        if not self._watch_ns or (self._books is None and self._trades is None):
            return
        if self._md_landed() or (self._exec is not None and self._exec.has_data()):
            return
        until = time.monotonic_ns() + self._watch_ns
        while not self._md_landed():
            if time.monotonic_ns() >= until:
                return

    def _md_landed(self) -> bool:
        books, trades = self._books, self._trades
        return (books is not None and books.has_data()) or (trades is not None and trades.has_data())

    def keep_warm(self) -> bool:
        """Run the per-event code on scratch targets, changing nothing real; True when it ran.

        Why: between book updates the path's code and data go cold, and a cold event costs
        several times a warm one; a tick costs a few percent of a CPU while idle
        (docs/decisions/006-keep-warm-ticks.md). ``do_work`` calls this every ``keep_warm_ms`` of quiet: one
        book record (the last real book) goes through the real ``_read_books`` with the book
        ring, orders ring, counters, routes and marks swapped for ``warm.ScratchPath``'s,
        whose one slot runs ``warm.WarmStrategy`` through the real api (a submit, and a
        cancel of it the next time). No user strategy is called, no real ring, counter or
        state is written; a failure here turns keep_warm off and is logged, never raised.
        """
        if not self.symbols:
            return False
        real = (self._books, self._book_routes, self._bid, self._ask, self._orders, self._publish_intent,
                self.counters, self._book_view._v)
        w = self._warm
        try:
            if w is None:
                sid = next((i for i, r in enumerate(self._book_routes) if r), 0)
                w = self._warm = ScratchPath(self, self.registry, self.instance, Counter, Hist, self.units, sid)
            v = self._book_view._v
            if v[0] != w.sid or not v[5] or not v[6]:
                v = self._warm_record(w.sid)
            self._books, self._book_routes, self._bid, self._ask = w.books, w.routes, w.bid, w.ask
            self._orders, self._publish_intent, self.counters = w.orders, w.orders.try_publish, w.counters
            w.book_out.try_publish(*v[:4], _mono(), *v[5:])
            self._read_books()
        except Exception as exc:  # never on purpose: keep_warm stops, the process runs on
            self._warm_ns = 0
            log.error("keep_warm_failed", error=repr(exc)[:200], action="keep_warm off")
            return False
        finally:
            (self._books, self._book_routes, self._bid, self._ask, self._orders, self._publish_intent,
             self.counters, self._book_view._v) = real
            if w is not None and len(w.state.orders) > 8:
                w.forget()
        return True

    def _warm_record(self, sid: int) -> tuple:
        """A two-sided BookUpdate of ``sid`` (keep_warm before the first real one)."""
        d = self.depth
        px = 100_000 * self.ticks[sid]
        step = self.ticks[sid]
        return ((sid, 1, 1, 1, 0, d, d, 0, 1) + tuple(px - k * step for k in range(d)) + (1,) * d
                + tuple(px + (k + 1) * step for k in range(d)) + (1,) * d)

    def _lockstep_marks(self, now: int) -> None:
        """Where this duty cycle left off, for the replay's lockstep barrier (positions last)."""
        c = self.counters
        c.set(Counter.NEXT_TIMER, min(self._next_timer, (1 << 62)))
        c.set(Counter.CLOCK_SEEN, now)
        for ring, ctr in ((self._books, Counter.BOOKS_DONE), (self._trades, Counter.TRADES_DONE),
                          (self._exec, Counter.EXEC_DONE)):
            if ring is not None:
                c.set(ctr, ring.position)

    def _drain_exec(self) -> int:
        n = self._skip_replayed() if self._skip_until else 0
        persist = self.state_path is not None
        poll = self._exec.read_one if persist else self._exec.poll_one
        view = self._event_view
        by_num = self._by_num
        fills = foreign = unknown = 0
        while True:
            v = poll()
            if v is None:
                break
            n += 1
            kind = v[1]
            if kind >= _REPORT_KINDS:
                self._on_report_event(v)
                continue
            st = by_num.get(v[2])
            if st is None:
                foreign += 1
                continue
            unknown -= st.unknown_events
            fills -= st.fills_applied
            order = st.on_event(kind, v[6], v[3], v[4], v[7], v[10], v[11], v[12], v[13], v[8], v[9])
            if kind == _DENIED and v[14] in _HOLD_REASONS and self._hold_ns:
                self._hold(st, v[14])
            unknown += st.unknown_events
            fills += st.fills_applied
            slot = self._slot_by_num.get(v[2])
            if slot is not None and not slot.paused:
                view._v = v
                try:
                    slot.strategy.on_order_event(view, order)
                except Exception as exc:  # a strategy's bug pauses that strategy only
                    self._fault(slot, "on_order_event", exc)
        if n:
            c = self.counters
            c.inc(Counter.EXEC_EVENTS_IN, n)
            if persist:
                self._exec_store_pending = True
                self._dirty = True  # the working sets the state file shows changed
            if fills:
                c.inc(Counter.FILLS, fills)
                self._dirty = True
                self._fills_unsaved = persist
            if foreign:
                c.inc(Counter.FOREIGN_EVENTS, foreign)
            if unknown:
                c.inc(Counter.UNKNOWN_ORDER_EVENTS, unknown)
        return n

    def _skip_replayed(self) -> int:
        """Events read again after a restart whose effects the restored state already holds
        (read before the last save, stored after it): skipped. Their orders were the previous
        process's; the report of open orders brings back those still working."""
        exec_ = self._exec
        n = 0
        while exec_.position < self._skip_until and exec_.read_one() is not None:
            n += 1
        if exec_.position >= self._skip_until:
            self._skip_until = 0
        if n:
            self.counters.inc(Counter.EVENTS_REPLAYED, n)
            self._exec_store_pending = True
        return n

    # -- open orders after a restart (ours or execution's) ------------------------------------
    def _ask_report(self) -> None:
        """Ask execution for every open order of this process's strategies (REPORT_ORDERS)."""
        intent_id = self._orders.next_sequence
        self._report_asked = time.monotonic_ns()
        # not an order: written past _write, so intents_out and book_to_intent count orders only
        self._report_unsent = not self._orders.try_publish(intent_id, M.REPORT_ORDERS, _SOURCE, -1, -1, 0, 0, 0, 0, 0,
                                                           0, 0, 0, 0, self._report_asked, 0, 0, 0)
        if not self._report_unsent:
            self._report_intent = intent_id

    def _on_report_event(self, v: tuple) -> None:
        if v[1] == M.ORDER_OPEN:
            self._on_open_order(v)
        elif v[1] == M.ORDERS_REPORTED:
            self._on_reported(v)

    def _on_open_order(self, v: tuple) -> None:
        """One order execution holds open: ours already, or adopted, or cancelled."""
        if v[22] != _SOURCE:
            return  # a manual or remote order: not this process's
        num, tag = v[2], v[6]
        self._report_seen.add((num, tag))
        st = self._by_num.get(num)
        o = st.orders.get(tag) if st is not None else None
        if o is not None:  # ours already: the report may be newer than what we heard
            o.reported = True
            if v[7]:
                o.order_id = v[7]
            if v[14] != M.REPORTED_PENDING and o.status == SUBMITTED:
                o.status = WORKING
            return
        sid, side, otype = v[3], v[4], v[5]
        if st is None or not 0 <= sid < len(self.symbols):  # no strategy of ours has this number now
            self._write(M.CANCEL_ORDER, num, sid, side, otype, v[15], v[8], v[9], 0, tag)
            self.counters.inc(Counter.ORDERS_RECOVERED_CANCELED)
            self._report_counts[1] += 1
            log.info("recovered_order_canceled", strategy_num=num, tag=tag, cid=_cid(v),
                     reason="no configured strategy has this number")
            return
        o = Order(tag, sid, side, otype, v[15], v[8], v[9], 1 if v[23] & M.FLAG_REDUCE_ONLY else 0,
                  WORKING if v[14] != M.REPORTED_PENDING else SUBMITTED, v[10], v[7], v[18], True)
        st.closed.pop(tag, None)
        st.add(o)
        st.next_tag = max(st.next_tag, tag + 1)
        slot = self._slot_by_num.get(num)
        if slot is not None and not slot.paused and slot.entry.recovered_orders == "adopt":
            self.counters.inc(Counter.ORDERS_ADOPTED)
            self._report_counts[0] += 1
            log.info("order_adopted", strategy=st.sid, tag=tag, cid=_cid(v), symbol=self.symbols[sid],
                     side=side, price=v[8], qty=v[9], filled=v[10])
            view = self._event_view
            view._v = v
            try:
                slot.strategy.on_order_event(view, o)
            except Exception as exc:  # a strategy's bug pauses that strategy only
                self._fault(slot, "on_order_event", exc)
            return
        self._cancel_order(num, o)  # held as CANCELING until execution reports it closed
        self.counters.inc(Counter.ORDERS_RECOVERED_CANCELED)
        self._report_counts[1] += 1
        log.info("recovered_order_canceled", strategy=st.sid, tag=tag, cid=_cid(v),
                 reason="recovered_orders = cancel" if slot is not None and not slot.paused else "strategy not running")

    def _on_reported(self, v: tuple) -> None:
        """A report closed: orders we hold that execution had reported on before (so it read
        their intents before this report) and that it did not list are not open there (their
        closing events were lost): they are dropped, not managed for ever. An order execution
        has said nothing about may be an intent it has not read yet: kept."""
        self.counters.inc(Counter.REPORTS)
        scope = v[2]
        seen = self._report_seen
        gone = 0
        for st in self.states.values():
            if scope >= 0 and st.num != scope:
                continue
            for o in list(st.orders.values()):
                if o.reported and (st.num, o.tag) not in seen:
                    st.remove(o)
                    gone += 1
                    log.warn("order_not_open_at_execution", strategy=st.sid, tag=o.tag,
                             action="dropped from the working set")
        if gone:
            self.counters.inc(Counter.ORDERS_GONE, gone)
        mine = v[22] == _SOURCE and v[21] == self._report_intent
        if mine or v[22] == 0:
            adopted, cancelled = self._report_counts
            log.info("open_orders_recovered", reported=v[9], adopted=adopted, canceled=cancelled, dropped=gone,
                     asked_by="strategy" if mine else "execution (restarted)")
        if mine:
            self._report_intent = None
        self._report_seen = set()
        self._report_counts = [0, 0]

    def _read_books(self) -> int:
        poll = self._books.poll_one
        view = self._book_view
        routes = self._book_routes
        nsym = len(routes)
        ap = 9 + 2 * self.depth
        bid, ask = self._bid, self._ask
        woke = False
        n = 0
        for _ in range(self.cfg.max_md_per_cycle):
            v = poll()
            if v is None:
                break
            n += 1
            sid = v[0]
            if not 0 <= sid < nsym:
                continue
            bid[sid] = v[9] if v[5] else 0
            ask[sid] = v[ap] if v[6] else 0
            slots = routes[sid]
            if not slots:
                continue
            if not woke:
                woke = True
                if self._prewake:
                    self._orders.prewake()  # execution wakes while the strategies decide
            view._v = v
            self._c_recv = v[3]
            self._c_seq = v[8]
            self._c_pub = v[4]
            for slot in slots:
                try:
                    slot.strategy.on_book(view)
                except Exception as exc:  # a strategy's bug pauses that strategy only
                    self._fault(slot, "on_book", exc)
            self._c_recv = self._c_seq = self._c_pub = 0
        if n:
            self.counters.inc(_BOOKS_IN, n)
        return n

    def _read_trades(self) -> int:
        poll = self._trades.poll_one
        view = self._trade_view
        routes = self._trade_routes
        nsym = len(routes)
        n = 0
        for _ in range(self.cfg.max_md_per_cycle):
            v = poll()
            if v is None:
                break
            n += 1
            sid = v[0]
            if not 0 <= sid < nsym or not routes[sid]:
                continue
            view._v = v
            self._c_recv = v[5]  # a trade-caused intent traces to the trade (md_seq 0)
            for slot in routes[sid]:
                try:
                    slot.strategy.on_trade(view)
                except Exception as exc:  # a strategy's bug pauses that strategy only
                    self._fault(slot, "on_trade", exc)
            self._c_recv = 0
        if n:
            self.counters.inc(Counter.TRADES_IN, n)
        return n

    # -- timers ------------------------------------------------------------------------------
    def set_timer(self, api: StrategyApi, token: int, delay_ns: int, interval_ns: int = 0) -> None:
        slot = self.slots.get(api.id)
        if slot is None or slot.api is not api:
            return
        deadline = self.clock.now_ns() + max(0, delay_ns)
        slot.timers[token] = [deadline, max(0, interval_ns)]
        if deadline < self._next_timer:
            self._next_timer = deadline

    def cancel_timer(self, api: StrategyApi, token: int) -> None:
        slot = self.slots.get(api.id)
        if slot is not None and slot.api is api:
            slot.timers.pop(token, None)

    def _fire_timers(self, now: int) -> int:
        fired = 0
        for slot in list(self.slots.values()):
            if slot.paused or not slot.timers:
                continue
            for token, t in list(slot.timers.items()):
                if t[0] > now:
                    continue
                if t[1] > 0:
                    t[0] += t[1]
                    if t[0] <= now:  # fell behind (a long pause): skip the missed periods
                        t[0] = now + t[1]
                else:
                    del slot.timers[token]
                fired += 1
                try:
                    slot.strategy.on_timer(token, now)
                except Exception as exc:  # a strategy's bug pauses that strategy only
                    self._fault(slot, "on_timer", exc)
                    break
        self._next_timer = min((t[0] for s in self.slots.values() if not s.paused for t in s.timers.values()),
                               default=1 << 62)
        if fired:
            self.counters.inc(Counter.TIMERS_FIRED, fired)
        return fired

    # -- intents (called by StrategyApi; hot path returns codes) ------------------------------
    def bad_intent(self) -> int:
        self.counters.inc(Counter.BAD_INTENTS)
        return ERR_BAD_INTENT

    def submit(self, api: StrategyApi, sid: int, side: int, order_type: int, tif: int, price: int, qty: int,
               reduce_only: bool, trigger_price: int = 0, callback_bps: int = 0, flags: int = 0) -> int:
        if not api.running:
            return ERR_NOT_RUNNING
        if not 0 <= sid < len(api._mine) or not api._mine[sid]:
            self.counters.inc(Counter.BAD_INTENTS)
            return ERR_SYMBOL
        if qty <= 0 or (side != _BUY and side != _SELL):
            return self.bad_intent()
        st = api.state
        if st.held_until and self.clock.now_ns() < st.held_until:
            self.counters.inc(Counter.INTENTS_HELD)
            return ERR_HELD
        tag = st.next_tag
        ro = 1 if reduce_only else 0
        ts = self._write(_SUBMIT, api.num, sid, side, order_type, tif, price, qty, ro, tag, flags, trigger_price,
                         callback_bps)
        if not ts:
            return ERR_RING_FULL
        st.next_tag = tag + 1
        st.add(Order(tag, sid, side, order_type, tif, price, qty, ro, ts_intent=ts, trigger_price=trigger_price,
                     callback_bps=callback_bps))
        return tag

    def modify(self, api: StrategyApi, tag: int, price: int, qty: int) -> int:
        if not api.running:
            return ERR_NOT_RUNNING
        o = api.state.orders.get(tag)
        if o is None or o.status == CANCELING:
            return ERR_UNKNOWN_ORDER
        if o.order_type != M.LIMIT or price < 0 or (qty and qty <= o.filled) or qty < 0 or (not price and not qty):
            return self.bad_intent()
        if not self._write(M.MODIFY_ORDER, api.num, o.symbol_id, o.side, o.order_type, o.tif, price, qty,
                           o.reduce_only, tag):
            return ERR_RING_FULL
        return tag

    def _hold(self, st: StrategyState, reason: int) -> None:
        """Execution denied one of ``st``'s orders for the system's state: hold its new orders."""
        log.once(f"intents_held:{st.sid}:{reason}", "warn", "intents_held", strategy=st.sid,
                 reason=M.DENY_NAMES.get(reason, str(reason)), hold_ms=self._hold_ns / 1e6,
                 action="new orders held (ERR_HELD), then one try per hold")
        st.held_until = self.clock.now_ns() + self._hold_ns

    def cancel(self, api: StrategyApi, tag: int) -> int:
        if not api.running:
            return ERR_NOT_RUNNING
        o = api.state.orders.get(tag)
        if o is None:
            return ERR_UNKNOWN_ORDER
        return tag if self._cancel_order(api.num, o) else ERR_RING_FULL

    def cancel_all(self, api: StrategyApi, sid: int = -1) -> int:
        if not api.running:
            return 0
        return self._cancel_state(api.state, sid)

    def cancel_everything(self, sid: int = -1) -> int:
        """Cancel the open orders of every strategy (of one symbol_id, or all); cancels written."""
        return sum(self._cancel_state(st, sid) for st in self.states.values())

    def _cancel_order(self, num: int, o: Order) -> bool:
        if o.status == CANCELING:
            return True
        if not self._write(M.CANCEL_ORDER, num, o.symbol_id, o.side, o.order_type, o.tif, o.price, o.qty,
                           o.reduce_only, o.tag):
            return False
        o.status = CANCELING
        return True

    def _cancel_state(self, st: StrategyState, sid: int = -1) -> int:
        n = 0
        for o in list(st.orders.values()):
            if (sid < 0 or o.symbol_id == sid) and o.status != CANCELING and self._cancel_order(st.num, o):
                n += 1
        return n

    def _write(self, kind: int, num: int, sid: int, side: int, order_type: int, tif: int, price: int, qty: int,
               reduce_only: int, tag: int, flags: int = 0, trigger_price: int = 0, callback_bps: int = 0) -> int:
        """Write one OrderIntent with the current trace fields; its ts_intent, or 0 when the ring is full."""
        ts = _mono()
        if not self._publish_intent(self._orders.next_sequence, kind, _SOURCE, num, sid, side, order_type,
                                    tif, price, qty, reduce_only, tag, self._c_recv, self._c_seq, ts, flags,
                                    trigger_price, callback_bps):
            self.counters.inc(Counter.INTENTS_DROPPED)
            log.once("orders_ring_full", "warn", "intent_dropped", ring=ORDERS_STRATEGY,
                     reason="ring full: execution is not consuming", strategy_num=num)
            return 0
        c = self.counters
        c.inc(_INTENTS_OUT)
        if self._c_pub:
            c.record(_BOOK_TO_INTENT, ts - self._c_pub)
        return ts

    # -- signals, marks ----------------------------------------------------------------------
    def signal(self, api: StrategyApi, sid: int, value: float, decision: int, aux: float) -> bool:
        if not 0 <= sid < len(api._sig_ts):
            return False
        now = self.clock.now_ns()
        if decision == api._sig_dec[sid] and now - api._sig_ts[sid] < self._sig_interval:
            return False
        api._sig_dec[sid] = decision
        api._sig_ts[sid] = now
        self._signals.try_publish(api.num, sid, now, float(value), int(decision), api.state.positions[sid].qty,
                                  float(aux), self._c_seq)
        self.counters.inc(Counter.SIGNALS_OUT)
        return True

    def mid(self, sid: int) -> float:
        """Last mid in ticks from md.book (0.0 before the first two-sided book)."""
        b, a = self._bid[sid], self._ask[sid]
        return (b + a) * 0.5 if b and a else 0.0

    # -- faults ------------------------------------------------------------------------------
    def _fault(self, slot: Slot, where: str, exc: BaseException) -> None:
        self.counters.inc(Counter.EXCEPTIONS)
        tb = traceback.extract_tb(exc.__traceback__)
        at = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
        msg = str(exc)[:200]
        self.errors[slot.id] = {"ts": round(time.time(), 3), "callback": where, "error": type(exc).__name__,
                                "message": msg, "at": at}
        log.once(f"strategy_error/{slot.id}/{where}/{type(exc).__name__}/{msg}/{at}", "error", "strategy_failed",
                 strategy=slot.id, callback=where, error=type(exc).__name__, message=msg, at=at,
                 version=slot.plugin.code_hash)
        if slot.paused:
            return
        slot.paused = True
        slot.api.running = False
        slot.timers.clear()
        cancelled = self._cancel_state(slot.api.state) if self.cfg.cancel_on_pause else 0
        self._route()
        log.warn("strategy_paused", strategy=slot.id, callback=where, error=type(exc).__name__,
                 orders_cancelled=cancelled, resume="reload (SIGHUP or control Reload)")

    # -- reload ------------------------------------------------------------------------------
    def reload(self, target: str = "", reason: str = "reload") -> bool:
        """Re-read the config and reload changed strategy code; False (old version kept) on failure."""
        try:
            cfg = self.read_config() if self.read_config is not None else self.cfg
            self._apply(cfg, target, reason)
        except Exception as exc:  # a reload never takes the process down: whatever failed, the old version runs
            self.counters.inc(Counter.RELOAD_FAILURES)
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            log.error("reload_failed", target=target or "*", reason=reason, kept="previous version")
            failed = {"ts": round(time.time(), 3), "callback": "reload", "error": type(exc).__name__,
                      "message": reason[:300], "at": ""}
            for sid in ([target] if target else list(self.slots)):
                self.errors[sid] = failed
            return False
        self.counters.inc(Counter.RELOADS)
        return True

    def _apply(self, cfg: StrategyEngineConfig, target: str, reason: str) -> None:
        if target and target not in {e.id for e in cfg.strategies} and target not in self.slots:
            raise ValueError(f"unknown strategy: target={target}")
        wanted = {e.id: e for e in cfg.strategies if e.enabled and (not target or e.id == target)}
        built: dict[str, Slot] = {}
        for e in wanted.values():  # build phase: nothing is swapped until every one is good
            old = self.slots.get(e.id)
            plugin = self.loader.resolve(e.class_path, fresh=reason != "start")
            if (old is not None and not old.paused and old.entry.fingerprint() == e.fingerprint()
                    and old.plugin.cls is plugin.cls and old.plugin.code_hash == plugin.code_hash):
                continue
            built[e.id] = self._build(e, plugin)
        removed = [sid for sid in self.slots if (sid == target or not target) and sid not in wanted]
        for sid, slot in built.items():  # swap phase
            old = self.slots.get(sid)
            if old is not None:
                self._stop_slot(old, reason)
            self.slots[sid] = slot
            self._by_num[slot.api.num] = slot.api.state
            self._slot_by_num[slot.api.num] = slot
            slot.api.running = True
        for sid in removed:
            old = self.slots.pop(sid)
            self._stop_slot(old, "removed")
            self._slot_by_num.pop(old.api.num, None)
            n = self._cancel_state(old.api.state) if self.cfg.cancel_on_stop else 0
            log.info("strategy_removed", strategy=sid, orders_cancelled=n)
        if not target:
            self._keep_engine_settings(cfg)
        self._route()
        for sid in built:  # start the new instances (a raising on_start pauses that one only)
            slot = self.slots[sid]
            try:
                slot.strategy.on_start()
            except Exception as exc:  # a strategy's bug pauses that strategy only
                self._fault(slot, "on_start", exc)
        version = {"n": len(self.versions) + 1, "config_hash": cfg.section_hash(), "reason": reason,
                   "target": target or "*", "changed": sorted(built), "removed": removed,
                   "code": {sid: s.plugin.code_hash for sid, s in self.slots.items()}, "ts": round(time.time(), 3)}
        self.versions.append(version)
        log.info("strategy_config_applied", **version)

    def _keep_engine_settings(self, cfg: StrategyEngineConfig) -> None:
        """Take the engine settings that are safe to change at run time; say which need a restart."""
        old = self.cfg
        fixed = sorted(f for f in cfg.restart_only if getattr(cfg, f) != getattr(old, f))
        if fixed:
            log.warn("config_needs_restart", fields=fixed)
        self.cfg = cfg
        self._take_runtime_settings(cfg)

    def _take_runtime_settings(self, cfg: StrategyEngineConfig) -> None:
        """The settings a reload may change: read at start and on every reload."""
        self._sig_interval = cfg.signal_interval_ms * 1_000_000
        self._prewake = cfg.prewake
        self._watch_ns = int(cfg.wake_watch_us * 1000)
        self._hold_ns = int(cfg.deny_hold_ms * 1e6)

    def _build(self, e: StrategyEntry, plugin: Plugin) -> Slot:
        ids = []
        for s in e.symbols:
            if s not in self.symbols:
                raise ConfigError(f"strategy symbol not in [deploy] symbols: id={e.id} symbol={s} "
                                  f"known={','.join(self.symbols)}")
            sid = self.symbols.index(s)
            if not self._have_instrument[sid]:
                raise ConfigError(f"the venue does not list strategy symbol: id={e.id} symbol={s}")
            ids.append(sid)
        config = decode_params(plugin.config_cls, e.params, f"id={e.id} class={e.class_path}")
        st = self.states.get(e.id)
        if st is None:
            st = StrategyState(e.id, e.number, self.units, next_tag=self._tag_base + 1)
            snap = self._snapshots.pop(e.id, None)
            if snap is not None and int(snap.get("num", -1)) == e.number:
                st.restore(snap, self.symbols)
                log.info("strategy_state_restored", strategy=e.id, positions=snap.get("positions", {}))
            self.states[e.id] = st
        elif st.num != e.number:
            raise ConfigError(f"a strategy's number cannot change while it has state: id={e.id} "
                              f"num={st.num} new_num={e.number}")
        api = StrategyApi(self, e.id, e.number, st, ids)  # not running: a constructor cannot send intents
        try:
            strategy = plugin.cls(config, api)
        except Exception as exc:  # the plugin's constructor: reported as a load failure
            raise LoadError(f"strategy constructor failed: id={e.id} class={e.class_path} "
                            f"reason={type(exc).__name__}: {exc}") from None
        return Slot(e, plugin, strategy, api)

    def _stop_slot(self, slot: Slot, reason: str) -> None:
        if not slot.paused:
            try:
                slot.strategy.on_stop()
            except Exception as exc:  # logged, not fatal: the instance is going away anyway
                log.once(f"on_stop/{slot.id}/{type(exc).__name__}", "error", "strategy_stop_failed",
                         strategy=slot.id, error=repr(exc)[:200], reason=reason)
        slot.api.running = False
        slot.timers.clear()

    def _route(self) -> None:
        n = len(self.symbols)
        books: list[list[Slot]] = [[] for _ in range(n)]
        trades: list[list[Slot]] = [[] for _ in range(n)]
        for slot in self.slots.values():
            if slot.paused:
                continue
            for sid in slot.api.symbol_ids:
                if type(slot.strategy).on_book is not Strategy.on_book:  # skip no-op handlers
                    books[sid].append(slot)
                if type(slot.strategy).on_trade is not Strategy.on_trade:
                    trades[sid].append(slot)
        self._book_routes = books
        self._trade_routes = trades
        paused = sum(1 for s in self.slots.values() if s.paused)
        self.counters.set(Counter.PAUSED, paused)
        self.counters.set(Counter.RUNNING, len(self.slots) - paused)
        self._next_timer = min((t[0] for s in self.slots.values() if not s.paused for t in s.timers.values()),
                               default=1 << 62)

    # -- housekeeping ------------------------------------------------------------------------
    def _housekeeping(self, now: int) -> None:
        self._next_house = now + HOUSEKEEPING_NS
        if self._report_unsent or self._report_intent is not None:
            self._check_report()
        self.counters.set(Counter.OPEN_ORDERS, sum(len(st.orders) for st in self.states.values()))
        if (self._books is None or self._trades is None or self._exec is None) and now >= self._next_attach:
            self._next_attach = now + ATTACH_RETRY_NS
            self._attach(0.0)
        if self._dirty and now >= self._next_save:
            self._next_save = now + int(self.cfg.state_save_interval_s * 1e9)
            self.save_state()
        if now >= self._next_status:
            self._next_status = now + STATUS_NS
            self.write_status()
        if self.cfg.pnl_log_interval_s > 0:
            if not self._next_pnl_log:
                self._next_pnl_log = now + int(self.cfg.pnl_log_interval_s * 1e9)
            elif now >= self._next_pnl_log:
                self._next_pnl_log = now + int(self.cfg.pnl_log_interval_s * 1e9)
                self._log_pnl()

    def _check_report(self) -> None:
        """The report asked for at start, unwritten (orders.strategy full) or not answered within
        ``adopt_timeout_s``: asked (again)."""
        if self._report_unsent:
            self._ask_report()
        elif (self._report_intent is not None
              and time.monotonic_ns() - self._report_asked >= self.cfg.adopt_timeout_s * 1e9):
            log.warn("orders_report_late", waited_s=round((time.monotonic_ns() - self._report_asked) / 1e9, 1),
                     action="asked again (is execution running?)")
            self._ask_report()

    # -- positions across restarts -------------------------------------------------------------
    def _load_state(self) -> None:
        """Positions and P&L of the last run (open orders come back through execution's events)."""
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            data = json.loads(self.state_path.read_text())
            snapshots = dict(data.get("strategies", {}))
        except (OSError, ValueError, AttributeError) as exc:
            log.warn("strategy_state_unreadable", path=str(self.state_path), reason=repr(exc), action="starting flat")
            return
        saved = data.get("venue_session")
        if self.venue_session and saved is not None and saved != self.venue_session:
            # a fresh simulator's account is flat: the last session's positions are not held
            archive = self._archive_state()
            log.warn("strategy_state_discarded", path=str(self.state_path), archive=str(archive),
                     reason=f"saved at venue session {saved or '(a real venue)'}; the venue now is "
                            f"simulator session {self.venue_session}, whose account starts flat",
                     action="starting flat")
            return
        self._snapshots = snapshots
        saved_exec = data.get("exec")
        if isinstance(saved_exec, dict):
            try:
                self._saved_exec = (int(saved_exec["position"]), int(saved_exec["created_ns"]))
            except (KeyError, TypeError, ValueError):
                log.warn("strategy_state_exec_unreadable", path=str(self.state_path), value=repr(saved_exec)[:100])

    def _archive_state(self) -> Path:
        """Move the state file aside as ``<file>.<unix time>``, keeping the newest
        ``KEEP_STATE_ARCHIVES`` of them (one per fresh simulator session piles up otherwise)."""
        path = self.state_path
        assert path is not None
        archive = path.with_name(f"{path.name}.{int(time.time())}")
        try:
            os.replace(path, archive)
            old = sorted((p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
                         key=lambda p: int(p.suffix[1:]))
            for p in old[:-KEEP_STATE_ARCHIVES]:
                p.unlink(missing_ok=True)
        except OSError as exc:
            return Path(f"(not archived: {exc!r})")
        return archive

    def save_state(self) -> None:
        """Write the positions snapshot atomically (tmp + rename, 0600); not on the hot path."""
        self._dirty = False
        if self.state_path is None:
            return
        snaps = dict(self._snapshots)  # strategies not configured now keep their last snapshot
        snaps.update({sid: st.snapshot(self.symbols) for sid, st in self.states.items()})
        doc = {"instance": self.instance, "ts": round(time.time(), 3), "venue_session": self.venue_session,
               "strategies": snaps}
        if self._exec is not None:  # the fills of every exec event before this position are in ``snaps``
            doc["exec"] = {"position": max(self._exec.position, self._skip_until), "created_ns": self._exec.created_ns}
        elif self._saved_exec is not None:
            doc["exec"] = {"position": self._saved_exec[0], "created_ns": self._saved_exec[1]}
        body = json.dumps(doc, indent=1)
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(body)
            os.replace(tmp, self.state_path)
        except OSError as exc:
            log.once("state_save_failed", "warn", "strategy_state_save_failed", path=str(self.state_path),
                     reason=repr(exc))

    def status(self, stopped: bool = False) -> dict:
        """Per configured or running strategy: its state (running, paused, disabled, stopped), class,
        code version, symbols, positions (lots, average price in ticks, realized and fees in the
        quote asset), open orders (ticks and lots) and last error."""
        out: dict[str, dict] = {}
        entries = {e.id: e for e in self.cfg.strategies}
        for sid in sorted(set(entries) | set(self.slots) | set(self.states)):
            slot, e, st = self.slots.get(sid), entries.get(sid), self.states.get(sid)
            entry = slot.entry if slot is not None else e
            if slot is not None and not stopped:
                state = "paused" if slot.paused else "running"
            else:
                state = "disabled" if e is not None and not e.enabled else "stopped"
            row: dict = {"state": state, "num": entry.number if entry else (st.num if st else 0),
                         "class": entry.class_path if entry else "", "symbols": list(entry.symbols) if entry else [],
                         "version": slot.plugin.code_hash if slot is not None else "",
                         "last_error": self.errors.get(sid), "positions": {}, "open_orders": []}
            if st is not None:
                row["positions"] = {self.symbols[p.symbol_id]: {
                    "qty": p.qty, "avg_px": p.avg_px, "realized": round(p.realized, 8), "fees": round(p.fees, 8),
                    "volume": p.volume, "fills": p.fills} for p in st.positions if p.qty or p.fills}
                row["open_orders"] = [{"tag": o.tag, "symbol": self.symbols[o.symbol_id], "side": o.side,
                                       "order_type": o.order_type, "tif": o.tif, "price": o.price, "qty": o.qty,
                                       "filled": o.filled, "status": STATUS_NAMES[o.status], "order_id": o.order_id}
                                      for o in st.orders.values()]
            out[sid] = row
        return out

    def write_status(self, stopped: bool = False) -> None:
        """Write ``status()`` atomically when it changed since the last write (tmp + rename, 0600)."""
        if self.status_path is None:
            return
        text = json.dumps({"instance": self.instance, "pid": os.getpid(), "strategies": self.status(stopped)})
        if text == self._status_text:
            return
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text[:-1] + f', "ts": {round(time.time(), 3)}}}')
            os.replace(tmp, self.status_path)
            self._status_text = text
        except OSError as exc:
            log.once("status_write_failed", "warn", "strategy_status_write_failed", path=str(self.status_path),
                     reason=repr(exc))

    def heartbeat(self) -> None:
        for c in (self._books, self._trades, self._exec):
            if c is not None:
                c.heartbeat()
        self._orders.heartbeat()
        self._signals.heartbeat()

    def pnl_report(self) -> dict[str, dict]:
        """Per strategy and symbol: position (lots), realized/unrealized/fees (quote), volume, fills, open orders."""
        out: dict[str, dict] = {}
        for sid, st in self.states.items():
            rows = {}
            for p in st.positions:
                if p.fills or p.qty:
                    mark = self.mid(p.symbol_id)
                    rows[self.symbols[p.symbol_id]] = {
                        "position": p.qty, "avg_px": p.avg_px, "realized": round(p.realized, 8),
                        "unrealized": round(p.unrealized(mark), 8), "fees": round(p.fees, 8),
                        "volume": p.volume, "fills": p.fills}
            slot = self.slots.get(sid)
            out[sid] = {"running": slot is not None and not slot.paused, "paused": bool(slot and slot.paused),
                        "open_orders": len(st.orders), "symbols": rows}
        return out

    def _log_pnl(self) -> None:
        for sid, rep in self.pnl_report().items():
            if rep["symbols"] or rep["open_orders"]:
                log.info("strategy_pnl", strategy=sid, **rep)
