"""The execution engine: intents in, requests out, exchange answers and user-stream reports in,
OrderEvents out (journaled first). Everything runs on one asyncio loop; nothing here blocks. The
venue is an ``OrderGateway`` (procs.venue.protocols): requests out, ``Reply`` and ``OrderReport``
in b25's words back.

Request path: ``on_intent`` runs the pre-trade check in line, gives the order its client order
id (``b25-<epoch>-<n>``: the epoch is persisted in the journal and grows at every start, so ids
never repeat across restarts), journals it (ORDER_SENT record, before the wire) and queues it;
``_pump`` writes queued requests as the limiter and the connection allow. A retry always reuses
the order's client order id; after an unknown outcome (timeout, dropped connection, an
ambiguous server error) the order is queried by its client order id and only re-sent when the
exchange says it does not know it (REJECT_UNKNOWN_ORDER).

Recovery (``procs.execution.recovery``, through this class's public methods): ``rebuild``
replays the journal; ``reconcile`` compares with the exchange's open orders (adopting or
cancelling unknown ones, querying the final status of orders that are gone) before the intake
is opened.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from procs.core import log
from procs.core import messages as M
from procs.core.instruments import Instrument, decimal_to_int
from procs.venue.messages import (
    REPLY_FAILED,
    REPLY_OK,
    REPLY_RATE_LIMITED,
    REPLY_REJECTED,
    REPLY_UNKNOWN,
    OrderReport,
    Reply,
)
from procs.venue.protocols import OrderGateway

from . import breaker as B
from . import orders as O
from .config import ExecutionConfig
from .counters import Counter, Hist
from .deadman import DeadMan
from .journal import Journal, JournalRecord
from .limiter import RateLimiter
from .orders import Order, OrderStore
from .pretrade import RiskLimits, check_modify, check_submit

PLACE, CANCEL, QUERY, MODIFY, BATCH_CANCEL = 1, 2, 3, 4, 5
MAX_ATTEMPTS = 5
_WARM_CID = "b25-0-0"  # warm()'s scratch order: epoch 0 is never a run's (start_epoch counts from 1)
RING_BATCH = 256


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _loop_call_later(delay_s: float, fn: Callable[..., Any], *args: Any) -> Any:
    return asyncio.get_running_loop().call_later(delay_s, fn, *args)


class Req:
    __slots__ = ("kind", "order", "t_wire", "done")

    def __init__(self, kind: int, order: Any) -> None:  # an Order; BATCH_CANCEL: a list of them
        self.kind = kind
        self.order = order
        self.t_wire = 0
        self.done = False


class EventSink:
    """Publishes OrderEvent tuples to the gating ``exec`` ring; a full ring makes events wait
    (in order, counted), never drops them."""

    def __init__(self, producer: Any, on_wait: Callable[[], None]) -> None:
        self.p = producer
        self.q: deque[tuple] = deque()
        self.on_wait = on_wait
        self._scheduled = False

    def publish(self, vals: tuple) -> None:
        if not self.q and self.p.try_publish(*vals):
            return
        self.q.append(vals)
        self.on_wait()
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(0.001, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        q = self.q
        while q and self.p.try_publish(*q[0]):
            q.popleft()
        if q:
            self._scheduled = True
            asyncio.get_running_loop().call_later(0.001, self._flush)

    def drain(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.q and time.monotonic() < deadline:
            if self.p.try_publish(*self.q[0]):
                self.q.popleft()
            else:
                time.sleep(0.001)
        return not self.q


class Engine:
    def __init__(self, cfg: ExecutionConfig, instruments: list[Instrument | None], journal: Journal,
                 sink: EventSink, counters: Any, risk: Callable[[], RiskLimits], gateway: OrderGateway,
                 limiter: RateLimiter, instance: str = "", clock: Any = None,
                 wall_ms: Callable[[], int] | None = None, call_later: Callable[..., Any] | None = None) -> None:
        self.cfg = cfg  # instance: the shm instance whose sim.clock [execution] sim_clock reads
        self.instruments = instruments
        self.sym_id = {i.symbol: k for k, i in enumerate(instruments) if i is not None}
        self.scales = [(i.price_scale, i.qty_scale) if i is not None else None for i in instruments]
        self._warm_sid = next((k for k, i in enumerate(instruments) if i is not None), -1)  # warm(): its scratch order
        self.journal = journal
        self.sink = sink
        self.c = counters
        self.risk = risk
        self.gateway = gateway
        self._costs = {PLACE: gateway.place_cost, CANCEL: gateway.cancel_cost, QUERY: gateway.query_cost,
                       MODIFY: gateway.modify_cost, BATCH_CANCEL: gateway.batch_cancel_cost}
        gateway.on_fallback = lambda: self.c.inc(Counter.REST_FALLBACK)
        self.limiter = limiter
        self.breaker = B.Breaker(cfg.breaker_failures, cfg.breaker_cooldown_s, self._breaker_changed)
        # off in a replay: the venue's countdown runs on the recording's clock there
        self.dead_man = DeadMan(gateway, 0.0 if cfg.sim_clock else cfg.dead_man_s, cfg.dead_man_refresh_s,
                                counters, self._spend_now)
        self.store = OrderStore()
        self.queue: deque[tuple[int, Order]] = deque()
        self.inflight: deque[Req] = deque()
        self.timeout_ns = int(cfg.request_timeout_s * 1e9)
        self.epoch = 0
        self.n = 0
        self.event_seq = 0
        self.processed_seq = [-1, -1, -1]  # per intent ring (intake.RINGS): highest sequence whose SUBMIT is journaled
        self.ring_created = [0, 0, 0]  # per intent ring: created_ns of the ring those sequences count in (0 unknown)
        self.rate: deque[int] = deque()  # admission times (ns) in the last second
        self.ready = False
        self._pump_at = 0.0
        self._pump_handle: asyncio.TimerHandle | None = None
        self._pumping = False
        self._catching: set[str] = set()
        # user-stream reports of orders b25 does not know (yet): a conditional order's MARKET order
        # can report before the trigger that names it; kept until then (the last few hundred)
        self._unclaimed: deque[tuple[int, OrderReport]] = deque(maxlen=256)
        self._tasks: set[asyncio.Task] = set()
        self.work = 0
        self.trace = cfg.trace_orders
        # -- replay harness only (procs/tools/replay): the simulated clock and the lockstep gauges ----
        # b25 backtest: the simulated clock (order-rate window, ack stamps), the limiter's clock
        # (ms) and the timer of retries all come from its event queue instead
        self._wall_ms = wall_ms or _wall_ms
        self._call_later = call_later or _loop_call_later
        self.sim_clock: Any = clock
        if cfg.sim_clock and clock is None:
            from procs.core.simclock import SimClock

            self.sim_clock = SimClock(instance)
            # every entry point leaves the PENDING gauge right when it returns
            self.on_intent = self._gauged(self.on_intent, False)  # type: ignore[method-assign]
            self._reply = self._gauged(self._reply, False)  # type: ignore[method-assign]
            self.on_report = self._gauged(self.on_report, True)  # type: ignore[method-assign]

    def _gauged(self, fn: Callable, user_event: bool) -> Callable:
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            finally:
                self.set_pending_gauge()
                if user_event:
                    self.c.inc(Counter.USER_EVENTS)  # last: the barrier reads it before PENDING
        return call

    def set_pending_gauge(self) -> None:
        self.c.set(Counter.PENDING, self.pending() + len(self.sink.q) + len(self._tasks))

    # -- events -------------------------------------------------------------------------------
    def _emit(self, kind: int, o: Order, *, reason: int = 0, last_px: int = 0, last_qty: int = 0,
              fee_e8: int = 0, trade_id: int = 0, ts_event: int = 0, flags: int = 0, ring: int = -1,
              ring_seq: int = -1, journal: bool = True, publish: bool = True, price: int | None = None,
              qty: int | None = None) -> None:
        """Journal and publish one event of ``o`` (``price``/``qty``: other than the order's own,
        for an amend asked for)."""
        price = o.price if price is None else price
        qty = o.qty if qty is None else qty
        if o.reduce_only:
            flags |= M.FLAG_REDUCE_ONLY
        seq = 0
        if publish:
            self.event_seq += 1
            seq = self.event_seq
        if journal:
            try:
                self.journal.append(JournalRecord(
                    kind, o.cid, o.strategy_id, o.symbol_id, o.side, o.order_type, o.tif, price, qty,
                    o.reduce_only, o.client_tag, o.order_id, o.cum_qty, last_px, last_qty, fee_e8, reason, trade_id,
                    ts_event, o.ts_intent, o.intent_id, o.source, flags, ring, ring_seq, self.epoch, time.time_ns(), seq,
                    o.trigger_price, o.callback_bps, M.INTENT_ON_MARK if o.on_mark else 0))
            except OSError:
                self.c.inc(Counter.JOURNAL_ERRORS)  # read by the monitor and the notifier before the exit
                raise
            self.c.inc(Counter.JOURNAL_RECORDS)
        if publish:
            self.sink.publish((
                self.event_seq, kind, o.strategy_id, o.symbol_id, o.side, o.order_type, o.client_tag, o.order_id,
                price, qty, o.cum_qty, last_px, last_qty, fee_e8, reason, trade_id, ts_event,
                time.monotonic_ns(), o.ts_intent, o.ts_md_recv, o.ts_sent, o.intent_id, o.source, flags,
                o.cid.encode(), o.trigger_price))

    def _set(self, o: Order, status: int, *, reason: int = 0, ts_event: int = 0, flags: int = 0) -> int:
        """Apply a non-fill status report through the state machine; emits the event if applied."""
        if o.status == O.PENDING and status not in (O.PENDING, O.NEW, O.REJECTED):
            self._set(o, O.NEW, ts_event=ts_event, flags=flags)  # it was accepted on the way
        t = self.store.set_status(o, status)
        if self.trace:
            log.info("order_trace", what="status", cid=o.cid, status=O.STATUS_NAMES[status], result=t,
                     cancel_wanted=o.cancel_wanted)
        if t == O.APPLIED:
            if status in (O.PARTIALLY_FILLED, O.FILLED):
                return t  # fill events come with their trade (``_fill``)
            self._emit(O.EVENT_OF[status], o, reason=reason, ts_event=ts_event, flags=flags)
            self.c.inc({O.NEW: Counter.ACCEPTED, O.CANCELED: Counter.CANCELED, O.EXPIRED: Counter.EXPIRED,
                        O.REJECTED: Counter.REJECTED}[status])
            if status == O.NEW and o.cancel_wanted:
                self.request_cancel(o)
            elif status == O.NEW:
                self._next_amend(o)
        elif t == O.ILLEGAL:
            self.c.inc(Counter.ILLEGAL_TRANSITIONS)
            log.warn("illegal_transition", cid=o.cid, status=O.STATUS_NAMES[o.status], report=O.STATUS_NAMES[status])
        elif t == O.STALE:
            self.c.inc(Counter.STALE_REPORTS)
        return t

    def _fill(self, o: Order, trade_id: int, last_qty: int, last_px: int, cum: int, fee_e8: int, maker: bool,
              ts_event: int, flags: int = 0) -> None:
        if trade_id in o.trade_ids:
            self.c.inc(Counter.DUPLICATE_FILLS)
            return
        cum = o.filled_after(trade_id, last_qty, cum)
        if o.status == O.PENDING:
            self._set(o, O.NEW, ts_event=ts_event, flags=flags)
        was_open = o.is_open
        self.store.set_cum(o, cum)
        status = O.FILLED if o.cum_qty >= o.qty else O.PARTIALLY_FILLED
        if was_open:
            self.store.set_status(o, status)
        else:  # a real trade on an order we had closed: the fact is published, the status is kept
            self.c.inc(Counter.ILLEGAL_TRANSITIONS)
            log.warn("fill_on_closed_order", cid=o.cid, status=O.STATUS_NAMES[o.status], trade_id=trade_id)
        self.c.inc(Counter.FILLS)
        self._emit(M.ORDER_FILLED if status == O.FILLED else M.ORDER_PARTIALLY_FILLED, o, last_px=last_px,
                   last_qty=last_qty, fee_e8=fee_e8, trade_id=trade_id, ts_event=ts_event,
                   flags=flags | (M.FLAG_MAKER if maker else 0))

    # -- intents ------------------------------------------------------------------------------
    def on_intent(self, ring: int, seq: int, row: tuple, t_read: int) -> None:
        """One OrderIntent record (as a tuple in dtype order) read at ``t_read``."""
        self.c.inc(Counter.INTENTS)
        self.work += 1
        (intent_id, kind, source, strategy_id, symbol_id, side, order_type, tif, price, qty, reduce_only,
         client_tag, ts_md_recv, _md_seq, ts_intent, intent_flags, trigger_price, callback_bps) = row
        if kind == M.SUBMIT_ORDER:
            if seq <= self.processed_seq[ring]:
                self.c.inc(Counter.DUPLICATE_INTENTS)  # journaled before a crash, re-read: done already
                return
            self.processed_seq[ring] = seq
            self._submit(ring, seq, t_read, intent_id, source, strategy_id, symbol_id, side, order_type, tif, price,
                         qty, reduce_only, client_tag, ts_md_recv, ts_intent, trigger_price, callback_bps, intent_flags)
        elif kind == M.CANCEL_ORDER:
            o = self.store.find_tag(strategy_id, client_tag)
            if o is None or not o.is_open:
                tmp = Order("", strategy_id, symbol_id, side, order_type, tif, price, qty, client_tag=client_tag,
                            intent_id=intent_id, source=source, ts_intent=ts_intent, ts_md_recv=ts_md_recv)
                self.c.inc(Counter.DENIED)
                self._emit(M.ORDER_DENIED, tmp, reason=M.DENY_UNKNOWN_ORDER)
                return
            self.request_cancel(o)
        elif kind == M.MODIFY_ORDER:
            self._modify(strategy_id, symbol_id, client_tag, price, qty)
        elif kind == M.CANCEL_ALL:
            # a strategy's (local or remote) CANCEL_ALL is its own orders; manual and risk: everyone's
            self.cancel_all(strategy_id if source in (M.SOURCE_STRATEGY, M.SOURCE_REMOTE) else None,
                            symbol_id if symbol_id >= 0 else None)
        elif kind == M.REPORT_ORDERS:
            self.report_orders(source, strategy_id, intent_id, source)
        else:
            log.once(f"bad_intent_kind:{kind}", "warn", "bad_intent", kind=kind, ring=ring, seq=seq)

    def _submit(self, ring: int, seq: int, t_read: int, intent_id: int, source: int, strategy_id: int,
                symbol_id: int, side: int, order_type: int, tif: int, price: int, qty: int, reduce_only: int,
                client_tag: int, ts_md_recv: int, ts_intent: int, trigger_price: int = 0, callback_bps: int = 0,
                intent_flags: int = 0) -> None:
        now = time.monotonic_ns() if self.sim_clock is None else self.sim_clock.now_ns()
        rate = self.rate
        while rate and now - rate[0] >= 1_000_000_000:
            rate.popleft()
        scales = self.scales[symbol_id] if 0 <= symbol_id < len(self.scales) else None
        reason = check_submit(symbol_id, side, order_type, price, qty, reduce_only, self.risk(),
                              self.store.counts, len(rate), scales, trigger_price, callback_bps)
        if reason == 0 and order_type == M.LIMIT and tif not in M.TIF_NAMES:
            reason = M.DENY_BAD_INTENT
        if reason == 0 and not self.breaker.allow_new():
            reason = M.DENY_BREAKER_OPEN
        if reason == 0 and self.journal.low:
            reason = M.DENY_JOURNAL_FULL  # no room to journal it before the wire
        if reason:
            o = Order("", strategy_id, symbol_id, side, order_type, tif, price, qty, reduce_only, client_tag,
                      intent_id, source, ts_intent, ts_md_recv)
            self.c.inc(Counter.DENIED)
            self._emit(M.ORDER_DENIED, o, reason=reason, ring=ring, ring_seq=seq)
            return
        self.n += 1
        o = Order(f"b25-{self.epoch}-{self.n}", strategy_id, symbol_id, side, order_type, tif, price, qty,
                  reduce_only, client_tag, intent_id, source, ts_intent, ts_md_recv)
        o.t_read = t_read
        if order_type in M.CONDITIONAL_TYPES:
            o.trigger_price, o.callback_bps, o.on_mark = trigger_price, callback_bps, bool(intent_flags & M.INTENT_ON_MARK)
        self.store.add(o)
        rate.append(now)
        # the id is on disk before the request is on the wire: a crash can never orphan it
        self._emit(M.ORDER_SENT, o, ring=ring, ring_seq=seq, publish=False)
        if self.trace:
            log.info("order_trace", what="submit", cid=o.cid, trading_state=self.risk().trading_state,
                     intent_id=intent_id, source=source)
        self._enqueue(PLACE, o)

    def _modify(self, strategy_id: int, symbol_id: int, client_tag: int, price: int, qty: int) -> None:
        """A MODIFY_ORDER intent: the order named by (strategy, tag) to ``price`` / ``qty`` (0: as it is)."""
        o = self.store.find_tag(strategy_id, client_tag)
        if o is None or not o.is_open or o.cancel_wanted:
            tmp = o or Order("", strategy_id, symbol_id, 0, M.LIMIT, 0, price, qty, client_tag=client_tag)
            self.c.inc(Counter.MODIFY_REJECTED)
            self._emit(M.ORDER_MODIFY_REJECTED, tmp, reason=M.DENY_UNKNOWN_ORDER, journal=o is not None)
            return
        want = (price or o.price, qty or o.qty)
        if not self._modify_allowed(o, *want):
            return
        if o.amend_inflight or o.status == O.PENDING or o.unknown:
            o.amend_next = want  # the newest wins; sent once the order is known and the last amend answered
            return
        self._send_modify(o, *want)

    def _modify_allowed(self, o: Order, price: int, qty: int) -> bool:
        """The pre-trade check of an amend; a denial is published (ORDER_MODIFY_REJECTED)."""
        reason = check_modify(o.symbol_id, o.side, o.order_type, o.price, o.qty, o.cum_qty, price, qty,
                              o.reduce_only, self.risk(), self.store.counts, self.scales[o.symbol_id])
        if reason:
            self.c.inc(Counter.MODIFY_REJECTED)
            self._emit(M.ORDER_MODIFY_REJECTED, o, reason=reason)
        return not reason

    def _send_modify(self, o: Order, price: int, qty: int) -> None:
        o.amend_to = (price, qty)
        o.amend_inflight = True
        # asked-for terms on disk before the request is on the wire (the order keeps its own until answered)
        self._emit(M.ORDER_MODIFY_SENT, o, price=price, qty=qty)
        self._enqueue(MODIFY, o)

    def _next_amend(self, o: Order) -> None:
        """Send the amend that waited, when the order can take it now (checked again: the
        state may have changed while it waited)."""
        want = o.amend_next
        if (want is None or o.amend_inflight or not o.is_open or o.status == O.PENDING or o.unknown
                or o.cancel_wanted):
            return
        o.amend_next = None
        if want != (o.price, o.qty) and self._modify_allowed(o, *want):
            self._send_modify(o, *want)

    def sync_terms(self, o: Order, rep: OrderReport, ts_event: int = 0) -> bool:
        """Take the price and quantity of the venue's report of ``o`` (an amend took): True
        when they changed (ORDER_MODIFIED published). A report older than the terms held is stale."""
        if o.order_type != M.LIMIT or not o.is_open or (rep.ts_event_ms and rep.ts_event_ms < o.terms_ms):
            return False
        inst = self.instruments[o.symbol_id]
        assert inst is not None
        try:
            price, qty = inst.price_to_ticks(rep.price), inst.qty_to_lots(rep.qty)
        except ValueError:
            return False
        if price <= 0 or qty <= 0 or (price == o.price and qty == o.qty):
            return False
        o.terms_ms = max(o.terms_ms, rep.ts_event_ms)
        self.store.set_terms(o, price, qty)
        self.c.inc(Counter.MODIFIED)
        self._emit(M.ORDER_MODIFIED, o, ts_event=ts_event)
        return True

    def warm(self) -> int:
        """The keep-warm tick (execution's ``keep_warm_ms``): run what an order intent runs up
        to the socket write, on scratch data: the risk read and pre-trade check, an Order, its
        journal frame (copied past the journal's last frame, never counted: ``Journal.warm``), the
        limiter's check, and the venue's cancel and place requests built and signed
        (``OrderGateway.warm``). Nothing is sent, journaled, published or stored; no order or
        limiter budget changes. Returns the request's size (0 when the venue builds none ahead,
        or no symbol is tradable)."""
        sid = self._warm_sid
        if sid < 0:
            return 0
        self.c.inc(Counter.KEEP_WARM)
        inst = self.instruments[sid]
        assert inst is not None
        lim = self.risk()
        price = lim.mark[sid] or 1
        check_submit(sid, M.BUY, M.LIMIT, price, 1, 0, lim, self.store.counts, len(self.rate), self.scales[sid])
        o = Order(_WARM_CID, 0, sid, M.BUY, M.LIMIT, M.GTC, price, 1, 0, 0, 0, M.SOURCE_STRATEGY, 0, 0)
        self.journal.warm(JournalRecord(
            M.ORDER_SENT, o.cid, o.strategy_id, o.symbol_id, o.side, o.order_type, o.tif, o.price, o.qty,
            o.reduce_only, o.client_tag, o.order_id, o.cum_qty, 0, 0, 0, 0, 0, 0, o.ts_intent, o.intent_id, o.source,
            0, 0, 0, self.epoch, time.time_ns(), 0))
        self.limiter.wait_ms(self._wall_ms(), *self.gateway.place_cost)
        return self.gateway.warm(inst.symbol, inst.lots_to_qty(o.qty), inst.ticks_to_price(o.price), o.cid)

    def request_cancel(self, o: Order) -> None:
        if not o.is_open:
            return
        o.cancel_wanted = True
        if self.trace:
            log.info("order_trace", what="cancel_wanted", cid=o.cid, status=O.STATUS_NAMES[o.status],
                     unknown=o.unknown, cancel_inflight=o.cancel_inflight)
        o.amend_next = None  # a cancel overrides any amend still waiting
        if o.status == O.PENDING or o.unknown or o.cancel_inflight:
            return  # sent once the exchange has acknowledged the order
        o.cancel_inflight = True
        self._enqueue(CANCEL, o)

    def _withdraw(self, o: Order) -> None:
        """An order whose cancel came before it was ever written: closed here, never sent (so no
        order leaves after a CancelAll, or under HALTED, from the queue the limiter held back)."""
        if self.store.set_status(o, O.CANCELED) == O.APPLIED:
            self.c.inc(Counter.CANCELED)
            self._emit(M.ORDER_CANCELED, o, flags=M.FLAG_NOT_SENT)
            if self.trace:
                log.info("order_trace", what="withdrawn", cid=o.cid)

    def cancel_all(self, strategy_id: int | None = None, symbol_id: int | None = None) -> int:
        """Cancel every open order (of a strategy, of a symbol); how many. The ones the venue
        knows go in batches where the venue has them and they cost less weight than one cancel
        each (docs/decisions/038-amend-batch-dead-man.md)."""
        n = 0
        ready: dict[int, list[Order]] = {}
        for o in list(self.store.open.values()):
            if (strategy_id is None or o.strategy_id == strategy_id) and (symbol_id is None or o.symbol_id == symbol_id):
                n += 1
                if o.status == O.PENDING or o.unknown or o.cancel_inflight or o.cancel_wanted or o.conditional:
                    self.request_cancel(o)  # singly: once the venue has acknowledged it, or a conditional order
                else:
                    ready.setdefault(o.symbol_id, []).append(o)
        g = self.gateway
        size = g.batch_cancel_max
        for orders in ready.values():
            batches = -(-len(orders) // size) if size else 0
            if size and batches * g.batch_cancel_cost[0] < len(orders) * g.cancel_cost[0]:
                for k in range(0, len(orders), size):
                    chunk = orders[k:k + size]
                    for o in chunk:
                        o.cancel_wanted = o.cancel_inflight = True
                        o.amend_next = None
                    self._enqueue(BATCH_CANCEL, chunk)  # type: ignore[arg-type]
            else:
                for o in orders:
                    self.request_cancel(o)
        return n

    def _spend_now(self, weight: int, orders: int) -> bool:
        """Spend from the venue's limits if there is room now (requests outside the queue)."""
        now = int(time.time() * 1000)
        if self.limiter.wait_ms(now, weight, orders) > 0:
            return False
        self.limiter.spend(now, weight, orders)
        return True

    def open_symbols(self) -> set[str]:
        """The symbols with open orders (the dead-man switch guards these)."""
        per = self.store.counts.per_symbol
        return {i.symbol for k, i in enumerate(self.instruments) if i is not None and per[k] > 0}

    def report_orders(self, source: int, strategy_id: int = -1, intent_id: int = 0, requester: int = 0) -> int:
        """Publish one ORDER_OPEN per open order of ``source`` (of ``strategy_id``, or -1 every
        strategy's), then ORDERS_REPORTED naming the request (``intent_id``, ``requester``; 0/0
        for execution's own report after a restart). Returns how many orders were reported.

        A report restates state, it changes none: nothing is journaled and the events carry
        event_seq 0. It is published in one call, so its records are contiguous on ``exec`` and
        every event before it (after it) happened before (after) the report."""
        publish = self.sink.publish
        now = time.monotonic_ns()
        n = 0
        for o in self.store.open.values():
            if o.source != source or (strategy_id >= 0 and o.strategy_id != strategy_id):
                continue
            n += 1
            flags = M.FLAG_RECOVERED | (M.FLAG_REDUCE_ONLY if o.reduce_only else 0)
            publish((0, M.ORDER_OPEN, o.strategy_id, o.symbol_id, o.side, o.order_type, o.client_tag, o.order_id,
                     o.price, o.qty, o.cum_qty, 0, 0, 0, o.status, o.tif, 0, now, o.ts_intent, o.ts_md_recv,
                     o.ts_sent, o.intent_id, o.source, flags, o.cid.encode(), o.trigger_price))
        publish((0, M.ORDERS_REPORTED, strategy_id, -1, 0, 0, 0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0, now, 0, 0, 0,
                 intent_id, requester, 0, b"", 0))
        self.c.inc(Counter.ORDER_REPORTS)
        log.info("orders_reported", source=M.SOURCE_NAMES.get(source, source), strategy_id=strategy_id, orders=n,
                 requester=M.SOURCE_NAMES.get(requester, "execution"), intent_id=intent_id)
        return n

    # -- the wire -----------------------------------------------------------------------------
    def _enqueue(self, kind: int, o: Any, front: bool = False) -> None:
        if front:
            self.queue.appendleft((kind, o))
        else:
            self.queue.append((kind, o))
        if not self._pumping and self._pump_handle is None:
            self._pump()

    def _schedule_pump(self, delay_s: float) -> None:
        if self._pump_handle is not None:
            return
        self._pump_handle = self._call_later(max(0.0, delay_s), self._pump_timer)

    def _pump_timer(self) -> None:
        self._pump_handle = None
        self._pump()

    def _pump(self) -> None:
        self._pumping = True
        try:
            q = self.queue
            while q:
                kind, o = q[0]
                weight, orders = self._costs[kind] if kind != PLACE or not o.conditional else self.gateway.conditional_cost
                wait = self.limiter.wait_ms(self._wall_ms(), weight, orders)
                if wait > 0:
                    self.c.inc(Counter.THROTTLED)
                    self._schedule_pump(wait / 1000)
                    return
                q.popleft()
                if kind == PLACE and o.attempts == 0 and o.cancel_wanted:
                    self._withdraw(o)  # cancelled (e.g. CancelAll, kill switch) before it left
                    continue
                if not self._write(kind, o):
                    q.appendleft((kind, o))
                    self._schedule_pump(0.02)
                    return
                self.limiter.spend(self._wall_ms(), weight, orders)
        finally:
            self._pumping = False

    def _write(self, kind: int, o: Any) -> bool:
        g = self.gateway
        if kind == BATCH_CANCEL:
            inst = self.instruments[o[0].symbol_id]
            assert inst is not None
            req = Req(kind, o)
            return self._written(req, g.cancel_batch(inst.symbol, [x.cid for x in o], partial(self._batch_reply, req)))
        inst = self.instruments[o.symbol_id]
        assert inst is not None
        req = Req(kind, o)
        cb = partial(self._reply, req)
        if kind == PLACE and o.conditional:  # waits at the venue's own service: no dead-man switch for it
            t = g.place_conditional(inst.symbol, o.side, o.order_type, inst.lots_to_qty(o.qty),
                                    inst.ticks_to_price(o.trigger_price) if o.trigger_price else None, o.callback_bps,
                                    o.on_mark, o.cid, bool(o.reduce_only), cb)
        elif o.conditional and not (o.triggered and o.actual_cid):  # cancel or query it before its trigger
            t = (g.cancel_conditional if kind == CANCEL else g.query_conditional)(inst.symbol, o.cid, cb)
        elif kind == PLACE:
            self.dead_man.ensure(inst.symbol)
            limit = o.order_type == M.LIMIT
            t = g.place(inst.symbol, o.side, o.order_type, o.tif, inst.lots_to_qty(o.qty),
                        inst.ticks_to_price(o.price) if limit else None, o.cid, bool(o.reduce_only), cb)
        elif kind == CANCEL:
            t = g.cancel(inst.symbol, o.actual_cid or o.cid, cb)
        elif kind == MODIFY:
            price, qty = o.amend_to
            t = g.modify(inst.symbol, o.side, o.cid, inst.lots_to_qty(qty), inst.ticks_to_price(price), cb)
        else:
            t = g.query(inst.symbol, o.actual_cid or o.cid, cb)
        return self._written(req, t)

    def _written(self, req: Req, t: int) -> bool:
        """Book a request ``send`` wrote at ``t`` (0: not connected, nothing written)."""
        if t == 0:
            return False
        kind, o = req.kind, req.order
        req.t_wire = t
        self.inflight.append(req)  # timeouts are swept from the housekeeping tick (no timer per request)
        if kind == PLACE:
            o.attempts += 1
            o.ts_sent = t
            if o.attempts == 1:
                self.c.inc(Counter.ORDERS_SENT)
                self.c.record(Hist.INTENT_TO_WIRE, t - o.t_read)
                if o.ts_md_recv:  # 0 = not caused by a market-data event (timer, order event, manual)
                    self.c.record(Hist.TICK_TO_WIRE, t - o.ts_md_recv)
                self._emit(M.ORDER_SENT, o, journal=False)
        elif kind == CANCEL:
            self.c.inc(Counter.CANCELS_SENT)
        elif kind == MODIFY:
            self.c.inc(Counter.MODIFIES_SENT)
        elif kind == BATCH_CANCEL:
            self.c.inc(Counter.BATCH_CANCELS)
            self.c.inc(Counter.CANCELS_SENT, len(o))
        else:
            self.c.inc(Counter.QUERIES)
        return True

    def pending(self) -> int:
        """Requests written and not answered yet, plus requests still queued."""
        return sum(1 for r in self.inflight if not r.done) + len(self.queue)

    def sweep_timeouts(self, now_ns: int | None = None) -> int:
        """Answer every request older than ``request_timeout_s`` as UNKNOWN; returns how many.

        ``inflight`` is in send order, so the scan stops at the first request still in time."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        limit = self.timeout_ns
        q = self.inflight
        n = 0
        while q and (q[0].done or now - q[0].t_wire >= limit):
            req = q.popleft()
            if not req.done:
                n += 1
                self.c.inc(Counter.TIMEOUTS)
                self._reply(req, Reply(outcome=REPLY_UNKNOWN, msg="timeout", ts_ack=now))
        return n

    def _batch_reply(self, req: Req, replies: list[Reply]) -> None:
        """The answer to a batch cancel: each order's as a single cancel's."""
        if req.done:
            return
        req.done = True
        orders = req.order
        first = replies[0]
        self.c.record(Hist.WIRE_TO_ACK, first.ts_ack - req.t_wire)
        now_ms = int(time.time() * 1000)
        usage = [u for r in replies for u in r.usage]
        if usage:
            self.limiter.observe(now_ms, usage)
        if all(r.outcome == REPLY_RATE_LIMITED for r in replies):
            self.c.inc(Counter.RATE_LIMITED)
            pause = self.limiter.on_429(now_ms, first.retry_after_s)
            self.queue.appendleft((BATCH_CANCEL, orders))
            self._schedule_pump(pause)
            return
        if any(r.outcome in (REPLY_OK, REPLY_REJECTED) for r in replies):
            self.breaker.success()
            self.limiter.on_success()
        else:
            self.c.inc(Counter.FAILURES)
            self.breaker.failure()
        for o, r in zip(orders, replies, strict=True):
            self._cancel_reply(o, r)

    def _reply(self, req: Req, r: Reply) -> None:
        if req.kind == BATCH_CANCEL:
            self._batch_reply(req, [r] * len(req.order))  # a timeout: every cancel's outcome unknown
            return
        if req.done:
            return  # answered after its timeout: the query that followed decides
        req.done = True
        o = req.order
        if self.trace:
            log.info("order_trace", what="reply", cid=o.cid, kind=req.kind, outcome=r.outcome, reason=r.reason,
                     venue_code=r.venue_code, msg=r.msg, status=O.STATUS_NAMES[o.status])
        if r.msg != "timeout":
            self.c.record(Hist.WIRE_TO_ACK, r.ts_ack - req.t_wire)
        now_ms = self._wall_ms()
        if r.usage:
            self.limiter.observe(now_ms, r.usage)
        oc = r.outcome
        if oc == REPLY_RATE_LIMITED:
            self.c.inc(Counter.RATE_LIMITED)
            pause = self.limiter.on_429(now_ms, r.retry_after_s)
            log.once(f"rate_limited:{int(pause * 1000)}", "warn", "rate_limited", venue_code=r.venue_code, pause_s=pause)
            if req.kind == PLACE:
                o.attempts -= 1
            self.queue.appendleft((req.kind, o))  # the intent waits, it is never dropped
            self._schedule_pump(pause)
            return
        if oc in (REPLY_OK, REPLY_REJECTED):
            self.breaker.success()
            self.limiter.on_success()
        else:
            self.c.inc(Counter.FAILURES)
            self.breaker.failure()
        if req.kind == PLACE:
            self._place_reply(o, r)
        elif req.kind == CANCEL:
            self._cancel_reply(o, r)
        elif req.kind == MODIFY:
            self._modify_reply(o, r)
        else:
            self._query_reply(o, r)

    def _place_reply(self, o: Order, r: Reply) -> None:
        oc = r.outcome
        if oc == REPLY_OK:
            self.apply_report(o, r.report)
        elif oc == REPLY_REJECTED:
            if r.reason == M.REJECT_DUPLICATE_ID:  # our earlier attempt did arrive
                self._unknown(o)
            else:
                self._rejected(o, r)
        elif oc == REPLY_FAILED:  # the venue was unavailable: not acted on; the strategy decides again
            self._rejected(o, r)
        else:
            self._unknown(o)

    def _rejected(self, o: Order, r: Reply) -> None:
        # the first refusal of each kind is logged with the venue's own code and words
        log.once(f"order_rejected:{r.venue_code}", "warn", "order_rejected", cid=o.cid,
                 reason=M.REJECT_NAMES.get(r.reason, str(r.reason)), venue_code=r.venue_code, msg=r.msg)
        self._set(o, O.REJECTED, reason=r.reason or M.REJECT_UNAVAILABLE)

    def _unknown(self, o: Order) -> None:
        self.c.inc(Counter.UNKNOWN_OUTCOMES)
        o.unknown = True
        self._enqueue(QUERY, o, front=True)

    def _cancel_reply(self, o: Order, r: Reply) -> None:
        o.cancel_inflight = False
        oc = r.outcome
        if oc == REPLY_OK:
            self.apply_report(o, r.report)
        elif oc == REPLY_REJECTED:
            self._emit(M.ORDER_CANCEL_REJECTED, o, reason=r.reason)
            self._enqueue(QUERY, o)  # filled or gone meanwhile: learn its final status
        elif oc == REPLY_FAILED:
            self._call_later(0.2, self.request_cancel, o)
        else:
            self._unknown(o)

    def _modify_reply(self, o: Order, r: Reply) -> None:
        o.amend_inflight = False
        oc = r.outcome
        if oc == REPLY_OK:
            if r.report is not None:
                self.sync_terms(o, r.report)
            self.apply_report(o, r.report)  # the venue cancels an amend at or below the filled quantity
        elif oc in (REPLY_REJECTED, REPLY_FAILED):
            log.once(f"modify_rejected:{r.venue_code}", "warn", "modify_rejected", cid=o.cid,
                     reason=M.REJECT_NAMES.get(r.reason, str(r.reason)), venue_code=r.venue_code, msg=r.msg)
            self.c.inc(Counter.MODIFY_REJECTED)
            self._emit(M.ORDER_MODIFY_REJECTED, o, reason=r.reason or M.REJECT_UNAVAILABLE)
            if r.reason == M.REJECT_UNKNOWN_ORDER:
                self._enqueue(QUERY, o)  # filled or gone meanwhile: learn its final status
        else:
            o.amend_unknown = True  # the query that follows says which terms the order has
            self._unknown(o)
            return
        self._next_amend(o)

    def _query_reply(self, o: Order, r: Reply) -> None:
        oc = r.outcome
        if oc == REPLY_OK:
            was_unknown = o.unknown
            o.unknown = False
            if o.amend_unknown and r.report is not None:
                o.amend_unknown = False
                self.sync_terms(o, r.report)
            self.apply_report(o, r.report)
            self._next_amend(o)
            if o.is_open and o.cancel_wanted and o.status != O.PENDING:
                self.request_cancel(o)
            elif was_unknown and o.status == O.PENDING:
                pass
        elif oc == REPLY_REJECTED and r.reason == M.REJECT_UNKNOWN_ORDER:
            o.unknown = False
            if o.status == O.PENDING:
                if o.attempts >= MAX_ATTEMPTS:
                    self._set(o, O.REJECTED, reason=M.REJECT_UNKNOWN_ORDER)
                else:
                    self.c.inc(Counter.RESENDS)  # never reached the exchange: same id again
                    self._enqueue(PLACE, o, front=True)
            elif o.is_open and o.cid not in self._catching:
                # acknowledged, and now unknown to the exchange (a venue restart, an order purged):
                # it works no more. Left open it counted against max_open_orders for ever, and
                # every cancel of it went cancel -> rejected -> query -> here again
                log.warn("order_vanished", cid=o.cid, status=O.STATUS_NAMES[o.status],
                         action="fills caught up from the venue's trades, then closed as expired")
                self.c.inc(Counter.VANISHED)
                self._spawn(self._catch_up(o, O.EXPIRED, M.FLAG_VANISHED, need_trades=True))
        else:
            self._call_later(0.2, self._enqueue, QUERY, o)

    def apply_report(self, o: Order, rep: OrderReport | None, flags: int = 0) -> None:
        """The venue's word on an order (an answer, a query, an open-orders entry): its id,
        fills it has not reported as trades (caught up first), then its status."""
        if rep is None:
            return
        inst = self.instruments[o.symbol_id]
        assert inst is not None
        self._take_ids(o, rep, flags)
        status = rep.status
        try:
            cum = inst.qty_to_lots(rep.cum_qty)
        except ValueError:
            cum = o.cum_qty
        if cum > o.cum_qty:
            self._spawn(self._catch_up(o, status, flags))  # fills first (with their trade ids), then status
            return
        if status is None:
            return
        # a replay stamps the exchange's time here too: then an acknowledgement journals the same
        # record whether the answer or the user-stream report (which has it) arrives first
        ts = rep.ts_event_ms * 1_000_000 if self.sim_clock is not None else 0
        if status in (O.PARTIALLY_FILLED, O.FILLED):
            if o.status == O.PENDING:
                self._set(o, O.NEW, flags=flags, ts_event=ts)
            return
        self._set(o, status, flags=flags, ts_event=ts)

    def _take_ids(self, o: Order, rep: OrderReport, flags: int = 0) -> None:
        """The venue's id of the order (a conditional order's own while it waits, the MARKET
        order it placed once triggered: ORDER_TRIGGERED then)."""
        if rep.conditional and rep.triggered_order_id and not o.triggered:
            self.store.set_triggered(o, rep.triggered_order_id)
            self.c.inc(Counter.TRIGGERED)
            self._emit(M.ORDER_TRIGGERED, o, ts_event=rep.ts_event_ms * 1_000_000, flags=flags)
            early = [u for u in self._unclaimed if u[1].order_id == o.order_id]
            for u in early:  # that order's reports that came before its trigger's
                self._unclaimed.remove(u)
                self.on_report(u[1], u[0])
        elif rep.order_id and not (o.triggered and rep.conditional):
            o.order_id = rep.order_id

    async def _catch_up(self, o: Order, status: int | None, flags: int, need_trades: bool = False) -> None:
        """Fills the stream has not (yet) delivered, from the venue's trade list, then the status.
        ``need_trades``: the status only once the trades were read (else the order is queried
        again in a second)."""
        if o.cid in self._catching:
            return
        self._catching.add(o.cid)
        try:
            inst = self.instruments[o.symbol_id]
            assert inst is not None
            fills = await self.gateway.user_trades(inst.symbol)
            if fills is None:
                # without its trades a fill's status would close the order with no fill event: the
                # order is queried again in a second, and this runs again
                self._call_later(1.0, self._enqueue, QUERY, o)
                return
            for f in sorted(fills or (), key=lambda f: f.trade_id):
                if f.order_id != o.order_id:
                    continue
                self._fill(o, f.trade_id, inst.qty_to_lots(f.qty), inst.price_to_ticks(f.price), 0,
                           decimal_to_int(f.fee, 8), f.maker, f.ts_event_ms * 1_000_000, flags)
            if need_trades and not o.is_open:
                return  # the trades filled it: that was its end
            if status is not None and status not in (O.PARTIALLY_FILLED, O.FILLED):
                self._set(o, status, flags=flags)
            elif status is not None and o.status == O.PENDING:
                self._set(o, O.NEW, flags=flags)
        finally:
            self._catching.discard(o.cid)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        if self.sim_clock is not None:
            t.add_done_callback(lambda _t: self.set_pending_gauge())

    # -- user-data stream -----------------------------------------------------------------------
    def on_report(self, rep: OrderReport | None, ts_recv: int) -> None:
        """One event of the account's stream (None: an event that reports no order)."""
        if rep is None:
            return
        o = self.store.by_cid.get(rep.client_order_id)
        if o is None:
            o = self.store.by_triggered_id.get(rep.order_id) if rep.order_id and not rep.conditional else None
            if o is None:  # not ours, or a triggered order reported before its trigger: kept a while
                self.c.inc(Counter.UNKNOWN_REPORTS)
                if rep.order_id and not rep.conditional:
                    self._unclaimed.append((ts_recv, rep))
                return
            o.actual_cid = o.actual_cid or rep.client_order_id
        if rep.conditional:
            self.apply_report(o, rep)
            return
        inst = self.instruments[o.symbol_id]
        assert inst is not None
        self._take_ids(o, rep)
        ts_event = rep.ts_event_ms * 1_000_000
        if rep.amended:
            self.sync_terms(o, rep, ts_event)
        f = rep.fill
        if f is not None:
            try:
                self._fill(o, f.trade_id, inst.qty_to_lots(f.qty), inst.price_to_ticks(f.price),
                           inst.qty_to_lots(rep.cum_qty), decimal_to_int(f.fee, 8), f.maker, ts_event)
            except ValueError as exc:
                log.once(f"bad_fill:{o.cid}", "warn", "bad_fill_report", cid=o.cid, reason=str(exc))
            return
        status = rep.status
        if status is not None and status not in (O.PARTIALLY_FILLED, O.FILLED):
            self._set(o, status, ts_event=ts_event)

    def on_stream_connected(self, connects: int) -> None:
        if connects > 1 and self.ready:
            self.c.inc(Counter.STREAM_RECONNECTS)
            self._requery_open("user stream reconnected")  # events may have been missed while down

    def _requery_open(self, why: str) -> int:
        """Query every acknowledged open order (those pending or unknown are queried already)."""
        n = 0
        for o in list(self.store.open.values()):
            if o.status != O.PENDING and not o.unknown:
                self._enqueue(QUERY, o)
                n += 1
        log.info("open_orders_requeried", why=why, orders=n)
        return n

    # -- breaker --------------------------------------------------------------------------------
    def _breaker_changed(self, old: int, new: int, failures: int) -> None:
        self.c.set(Counter.BREAKER_STATE, new)
        if new == B.OPEN:
            self.c.inc(Counter.BREAKER_OPENS)
        log.warn("breaker_changed", old=B.STATE_NAMES[old], new=B.STATE_NAMES[new], failures=failures)
        if new == B.CLOSED and self.ready:
            # the venue answers again: what changed while it did not is learnt now, not at the
            # orders' next events (its reports of the outage may be lost with a dropped stream)
            self._requery_open("venue answers again")

    # -- what recovery (procs.execution.recovery) does through ----------------------------------
    def adopt(self, o: Order, flags: int) -> None:
        """An open order the venue has and b25 did not know: kept and published as accepted."""
        self.store.add(o)
        self.store.set_status(o, O.NEW)
        self._emit(M.ORDER_ACCEPTED, o, flags=flags)
        self.c.inc(Counter.ADOPTED)

    def resend(self, o: Order) -> None:
        """Send again, with its own client order id, an order that never reached the venue."""
        self.c.inc(Counter.RESENDS)
        o.t_read = time.monotonic_ns()
        self._enqueue(PLACE, o)

    def reject(self, o: Order, reason: int, flags: int = 0) -> None:
        """Close an order the venue refused (``reason``: REJECT_*)."""
        self._set(o, O.REJECTED, reason=reason, flags=flags)

    def requery(self, o: Order) -> None:
        """Its state is unknown: ask the venue again (before anything else is sent for it)."""
        o.unknown = True
        self._enqueue(QUERY, o)

    @property
    def catching_up(self) -> bool:
        """Fills of some order are being read from the venue's trade list."""
        return bool(self._catching)

    def prune(self, now_ns: int, keep_s: float = 600.0) -> int:
        """Forget orders closed more than ``keep_s`` ago (late reports for them are then unknown)."""
        return self.store.prune(now_ns - int(keep_s * 1e9))

    async def close(self) -> None:
        if self._pump_handle is not None:
            self._pump_handle.cancel()
        for t in list(self._tasks):
            t.cancel()
