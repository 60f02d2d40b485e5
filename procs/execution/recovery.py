"""Recovery: rebuild execution's orders from the journal, compact a large journal, and
reconcile with the exchange before any new intent is read.

``rebuild`` replays every record silently (nothing is published): orders with their status,
cumulative fills and trade ids, the strategies' tags, the highest SUBMIT sequence of each
intent ring (so intents re-read after a crash are skipped), the event sequence and the epoch
(the next run's client order ids start with ``b25-<epoch+1>-``).

``republish_unpublished`` publishes the journaled events ``exec`` never carried (a SIGKILL
between the journal and the ring), in order, before anything new is published.

``compact`` writes the same state as a short journal (open orders only, with their trade ids
and the ring positions) when the file has grown past ``journal_rotate_mb``; the old file is
kept beside it as ``<journal>.<epoch>``.

``reconcile``: the venue's open orders (``OrderGateway.open_orders``) are matched by client
order id. Known ones are brought up to date (missed fills from the venue's trade list first);
unknown ones are adopted (ORDER_ACCEPTED with FLAG_RECOVERED) or cancelled per config; orders
b25 thought open but the venue does not list are queried for their final status, and an order
that never reached the venue (REJECT_UNKNOWN_ORDER) is sent again with the same id
(``recover_resend``). Everything goes through the engine's public methods.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from procs.core import log
from procs.core import messages as M
from procs.venue.messages import REPLY_OK, REPLY_REJECTED, VenueError

from . import orders as O
from .counters import Counter
from .journal import REC_EPOCH, REC_POSITION, JournalRecord
from .orders import Order

if TYPE_CHECKING:
    from shm.ring import Producer

    from .engine import Engine


def published_through(producer: Producer) -> tuple[int, int]:
    """Where ``exec`` (which outlives execution in shm) stands: ``(event_seq, created_ns)``, the
    event_seq of its newest event (reports carry 0 and are passed over) and the ring's creation
    time (wall clock). ``event_seq`` is 0 when no event was published on this ring, -1 when its
    window holds none although records were lapped (nothing can be told)."""
    cursor = producer.next_sequence
    seqs = producer.records["event_seq"]
    oldest_to_newest = np.roll(seqs, -(cursor % producer.capacity)) if cursor >= producer.capacity else seqs[:cursor]
    events = np.flatnonzero(oldest_to_newest > 0)
    if events.size:
        return int(oldest_to_newest[events[-1]]), producer.created_ns
    return (0 if cursor <= producer.capacity else -1), producer.created_ns


def republish_unpublished(eng: Engine, records: list[JournalRecord], through: tuple[int, int]) -> int:
    """Publish again, in order, the events the journal holds that ``exec`` does not (``through``:
    ``published_through``): an event is journaled, then published, so a SIGKILL between the two
    left it journaled and never sent (a CI run: an ORDER_EXPIRED the strategy never saw). Past the
    ring's newest event, or, when it holds none, journaled since the ring was created. The
    journal's fields; the latency stamps it does not keep are 0. Returns how many."""
    last, created_ns = through
    if last < 0:
        log.warn("events_not_republished", why="exec ring lapped by reports: its newest event is unknown")
        return 0
    n = 0
    for r in records:
        if r.event_seq <= 0 or not r.cid:  # journal-only records, epochs and ring positions
            continue
        unpublished = r.event_seq > last if last > 0 else r.wall_ns >= created_ns
        if unpublished:
            eng.sink.publish((r.event_seq, r.kind, r.strategy_id, r.symbol_id, r.side, r.order_type, r.client_tag,
                              r.order_id, r.price, r.qty, r.cum_qty, r.last_px, r.last_qty, r.fee_e8, r.reason,
                              r.trade_id, r.ts_event, time.monotonic_ns(), r.ts_intent, 0, 0, r.intent_id, r.source,
                              r.flags, r.cid.encode(), r.trigger_price))
            n += 1
    if n:
        eng.c.inc(Counter.EVENTS_REPUBLISHED, n)
        log.warn("events_republished", events=n, after_event_seq=last)
    return n


def rebuild(eng: Engine, records: list[JournalRecord]) -> None:
    """Orders, trade ids, intent positions and the epoch from a previous run's journal."""
    store = eng.store
    for r in records:
        if r.kind == REC_EPOCH:
            eng.epoch = max(eng.epoch, r.epoch)
            continue
        eng.epoch = max(eng.epoch, r.epoch)
        if r.kind == REC_POSITION and 0 <= r.ring < len(eng.processed_seq):
            # where a ring's count starts again: the sequences before it were another ring's
            eng.processed_seq[r.ring] = r.ring_seq
            eng.ring_created[r.ring] = r.ts_event
            continue
        if 0 <= r.ring < len(eng.processed_seq) and r.ring_seq > eng.processed_seq[r.ring]:
            eng.processed_seq[r.ring] = r.ring_seq
        if r.event_seq > eng.event_seq:
            eng.event_seq = r.event_seq
        if not r.cid:
            continue
        o = store.by_cid.get(r.cid)
        if o is None:
            if r.kind not in (M.ORDER_SENT, M.ORDER_ACCEPTED):
                continue
            o = Order(r.cid, r.strategy_id, r.symbol_id, r.side, r.order_type, r.tif, r.price, r.qty,
                      r.reduce_only, r.client_tag, r.intent_id, r.source, r.ts_intent, 0,
                      adopted=r.kind == M.ORDER_ACCEPTED, trigger_price=r.trigger_price, callback_bps=r.callback_bps,
                      on_mark=bool(r.intent_flags & M.INTENT_ON_MARK))
            store.add(o)
        if r.order_id:
            o.order_id = r.order_id
        k = r.kind
        if k in (M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED):
            cum = o.filled_after(r.trade_id, r.last_qty)
            if r.cum_qty > o.reported_cum:
                # the journaled cumulative holds every trade taken so far: one that comes again, or
                # an earlier one the venue's report had in it, adds nothing (Order.filled_after)
                o.reported_cum, o.reported_at_trade = r.cum_qty, max(o.trade_ids)
            if o.status == O.PENDING:
                store.set_status(o, O.NEW)
            store.set_cum(o, max(cum, r.cum_qty))
            if o.is_open:
                store.set_status(o, O.FILLED if k == M.ORDER_FILLED else O.PARTIALLY_FILLED)
        elif k == M.ORDER_MODIFIED:
            store.set_terms(o, r.price, r.qty)
        elif k == M.ORDER_TRIGGERED:
            store.set_triggered(o, r.order_id)
        elif k in (M.ORDER_ACCEPTED, M.ORDER_CANCELED, M.ORDER_EXPIRED, M.ORDER_REJECTED):
            st = {M.ORDER_ACCEPTED: O.NEW, M.ORDER_CANCELED: O.CANCELED, M.ORDER_EXPIRED: O.EXPIRED,
                  M.ORDER_REJECTED: O.REJECTED}[k]
            if o.status == O.PENDING and st not in (O.NEW, O.REJECTED):
                store.set_status(o, O.NEW)
            store.set_status(o, st)
    store.prune(time.monotonic_ns() + 1)  # closed in an earlier run: nothing will report on them


def start_epoch(eng: Engine) -> None:
    """This run's epoch: one more than any in the journal, recorded before any order is sent."""
    eng.epoch += 1
    eng.journal.append(JournalRecord(REC_EPOCH, epoch=eng.epoch, wall_ns=time.time_ns(),
                                     event_seq=eng.event_seq))


def attach_ring(eng: Engine, ring: int, position: int, created_ns: int) -> str:
    """Execution attached intent ring ``ring`` (its consumer resumes at ``position``): make the
    journaled SUBMIT sequences (which skip intents read again after a crash) count for this
    ring only. Returns "same", "recreated" or "unknown".

    The journal names the ring each count belongs to by its ``created_ns`` (a REC_POSITION
    record, ``ts_event``). The guess "journaled sequence more than one batch past our cursor",
    kept only for journals that have no such record, sends re-read intents twice or skips a new
    ring's intents as done (docs/decisions/024-intent-ring-incarnation.md)."""
    known = eng.ring_created[ring]
    if known == created_ns:
        return "same"
    # another ring's count, or (a journal from before REC_POSITION named rings) the old guess
    verdict = "recreated" if known or eng.processed_seq[ring] >= position + 256 else "unknown"
    if verdict == "recreated":
        log.warn("intent_ring_recreated", ring=ring, journal_seq=eng.processed_seq[ring], position=position)
        eng.processed_seq[ring] = -1
    eng.ring_created[ring] = created_ns
    eng.journal.append(JournalRecord(REC_POSITION, ring=ring, ring_seq=eng.processed_seq[ring], ts_event=created_ns,
                                     epoch=eng.epoch, wall_ns=time.time_ns()))
    return verdict


def snapshot(eng: Engine) -> list[JournalRecord]:
    """The rebuilt state as journal records: replaying them gives the same open orders, trade
    ids, ring positions, event sequence and epoch."""
    out = [JournalRecord(REC_EPOCH, epoch=eng.epoch, wall_ns=time.time_ns(), event_seq=eng.event_seq)]
    for ring, seq in enumerate(eng.processed_seq):
        if seq >= 0 or eng.ring_created[ring]:
            out.append(JournalRecord(REC_POSITION, ring=ring, ring_seq=seq, ts_event=eng.ring_created[ring],
                                     epoch=eng.epoch))
    for o in eng.store.open.values():
        base = dict(cid=o.cid, strategy_id=o.strategy_id, symbol_id=o.symbol_id, side=o.side,
                    order_type=o.order_type, tif=o.tif, price=o.price, qty=o.qty, reduce_only=o.reduce_only,
                    client_tag=o.client_tag, order_id=o.order_id, ts_intent=o.ts_intent, intent_id=o.intent_id,
                    source=o.source, epoch=eng.epoch, trigger_price=o.trigger_price, callback_bps=o.callback_bps,
                    intent_flags=M.INTENT_ON_MARK if o.on_mark else 0)
        out.append(JournalRecord(M.ORDER_SENT, **base))
        if o.status != O.PENDING:
            out.append(JournalRecord(M.ORDER_ACCEPTED, **base))
        if o.triggered:
            out.append(JournalRecord(M.ORDER_TRIGGERED, **base))
        for t in sorted(o.trade_ids):
            out.append(JournalRecord(M.ORDER_PARTIALLY_FILLED, trade_id=t, cum_qty=o.cum_qty, **base))
    return out


def compact(eng: Engine, path: Path, fsync: bool = True) -> Path:
    """Replace the journal at ``path`` by ``snapshot(eng)``; the old file stays as
    ``<path>.<epoch>``. Crash-safe: the new file is complete and synced before the renames."""
    from .journal import Journal

    tmp = path.with_name(path.name + ".compact")
    tmp.unlink(missing_ok=True)
    j = Journal(tmp, "never")
    for r in snapshot(eng):
        j.append(r)
    j.close()  # truncated to its records
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    old = path.with_name(f"{path.name}.{eng.epoch}")
    k = 0
    while old.exists():
        k += 1
        old = path.with_name(f"{path.name}.{eng.epoch}.{k}")
    os.link(path, old)  # the archive appears before the live name moves: no moment without either
    os.replace(tmp, path)
    log.info("journal_compacted", path=str(path), archive=str(old), open_orders=len(eng.store.open))
    return old

async def reconcile(eng: Engine) -> dict[str, int]:
    """Compare b25's open orders with the venue's; returns what was done (for the log)."""
    stats = {"exchange_open": 0, "known": 0, "adopted": 0, "canceled": 0, "queried": 0, "resent": 0}
    flags = M.FLAG_RECOVERED
    gateway = eng.gateway
    while True:
        try:
            reports = await gateway.open_orders()
            break
        except VenueError as exc:
            log.warn("reconcile_open_orders_failed", reason=str(exc))
        await asyncio.sleep(max(0.2, eng.limiter.wait_ms(int(time.time() * 1000), *gateway.open_orders_cost) / 1000))
    while True:
        try:
            reports += await gateway.open_conditionals()
            break
        except VenueError as exc:
            log.warn("reconcile_open_conditionals_failed", reason=str(exc))
        await asyncio.sleep(max(0.2, eng.limiter.wait_ms(int(time.time() * 1000), *gateway.open_orders_cost) / 1000))
    seen: set[str] = set()
    for rep in reports:
        sid = eng.sym_id.get(rep.symbol)
        cid = rep.client_order_id
        stats["exchange_open"] += 1
        if sid is None:
            log.warn("reconcile_unknown_symbol", symbol=rep.symbol, cid=cid)
            continue
        o = eng.store.by_cid.get(cid)
        if o is None and not rep.conditional:  # the MARKET order a conditional order of ours placed
            o = eng.store.by_triggered_id.get(rep.order_id)
        seen.add(o.cid if o is not None else cid)
        if o is not None:
            stats["known"] += 1
            eng.sync_terms(o, rep)  # amended while we were down, or the amend's answer never journaled
            eng.apply_report(o, rep, flags)
            continue
        inst = eng.instruments[sid]
        assert inst is not None
        if eng.cfg.reconcile == "cancel":
            c = await (gateway.cancel_conditional_now if rep.conditional else gateway.cancel_now)(inst.symbol, cid)
            stats["canceled"] += 1
            eng.c.inc(Counter.RECONCILE_CANCELED)
            log.info("reconcile_canceled", cid=cid, symbol=inst.symbol, outcome=c.outcome, venue_code=c.venue_code)
            continue
        otype = rep.order_type if rep.conditional and rep.order_type in M.CONDITIONAL_TYPES else (
            M.LIMIT if rep.order_type == M.LIMIT else M.MARKET)
        o = Order(cid, 0, sid, M.BUY if rep.side == M.BUY else M.SELL, otype, rep.tif or M.GTC,
                  inst.price_to_ticks(rep.price), inst.qty_to_lots(rep.qty), 1 if rep.reduce_only else 0, source=0,
                  adopted=True, trigger_price=inst.price_to_ticks(rep.trigger_price) if rep.conditional else 0)
        o.order_id = rep.order_id
        eng.adopt(o, flags)
        stats["adopted"] += 1
        eng.apply_report(o, rep, flags)
    for o in list(eng.store.open.values()):
        if o.cid in seen:
            continue
        inst = eng.instruments[o.symbol_id]
        assert inst is not None
        stats["queried"] += 1
        if o.conditional:
            q = await gateway.query_conditional_now(inst.symbol, o.cid)
        else:
            q = await gateway.query_now(inst.symbol, o.actual_cid or o.cid)
        if q.outcome == REPLY_OK:
            eng.apply_report(o, q.report, flags)
        elif q.outcome == REPLY_REJECTED and q.reason == M.REJECT_UNKNOWN_ORDER and o.status == O.PENDING:
            if eng.cfg.recover_resend:
                stats["resent"] += 1
                eng.resend(o)
            else:
                eng.reject(o, M.REJECT_UNKNOWN_ORDER, flags)
        else:
            log.warn("reconcile_query_failed", cid=o.cid, outcome=q.outcome, venue_code=q.venue_code, msg=q.msg)
            eng.requery(o)
    while eng.catching_up:
        await asyncio.sleep(0.01)
    return stats
