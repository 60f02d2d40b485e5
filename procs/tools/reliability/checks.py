"""The consistency checks a chaos campaign ends with, as pure functions of what it collected:
the venue's order log and open orders, execution's journal, the strategy state file, risk's and
the venue's positions.

* **lost**: an order the venue accepted (a NEW record) whose client order id the journal does not know;
* **doubled**: a client order id the venue accepted twice, or one intent that became two orders
  (two ids for one (ring, sequence), or for one strategy's tag);
* **orphaned**: open at the venue, and in no strategy's working set (the state file's
  ``open_orders``), or not b25's;
* **state mismatches**: per order, the journal's final status and filled quantity against the venue's;
* **position mismatches**: per symbol, the venue's position against risk's and the strategies' sum.

Quantities are compared in lots (integers), converted with the symbol's ``Instrument``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.exchange_sim.observe import LoggedOrder
from procs.venue import messages as V
from procs.venue.messages import OrderReport

# journal kind -> the order status it means (named as procs.venue.messages.STATUS_NAMES)
_STATUS_OF_KIND = {M.ORDER_ACCEPTED: V.NEW, M.ORDER_PARTIALLY_FILLED: V.PARTIALLY_FILLED, M.ORDER_FILLED: V.FILLED,
                   M.ORDER_CANCELED: V.CANCELED, M.ORDER_EXPIRED: V.EXPIRED, M.ORDER_REJECTED: V.REJECTED}
_CLOSED = {V.FILLED, V.CANCELED, V.EXPIRED, V.REJECTED}
_RANK = {V.PENDING: 0, V.NEW: 1, V.PARTIALLY_FILLED: 2, **dict.fromkeys(_CLOSED, 3)}


def status_name(status: int | None) -> str | None:
    return None if status is None else V.STATUS_NAMES[status]


@dataclass
class JournalOrder:
    """One order as execution's journal tells it."""

    cid: str
    strategy_id: int
    client_tag: int
    source: int
    symbol_id: int
    ring: int
    ring_seq: int
    status: int = V.PENDING
    cum_qty: int = 0
    vanished: bool = False
    not_sent: bool = False  # canceled before it was ever written: the venue cannot know it


@dataclass
class VenueOrder:
    """One order as the venue's order log tells it."""

    cid: str
    symbol: str
    news: int = 0  # records of its acceptance: more than one is an order accepted twice
    status: int | None = None
    executed: str = "0"
    restart_closed: bool = False  # closed by a venue restart (reason venue_restart)


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    doubled: list[dict[str, Any]] = field(default_factory=list)
    orphaned: list[dict[str, Any]] = field(default_factory=list)
    state_mismatches: list[dict[str, Any]] = field(default_factory=list)
    position_mismatches: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items()}


def journal_orders(records: list[Any]) -> dict[str, JournalOrder]:
    """Every order the journal knows, by client order id, with its final status and fills."""
    out: dict[str, JournalOrder] = {}
    for r in records:
        if not r.cid:
            continue
        o = out.get(r.cid)
        if o is None:
            o = out[r.cid] = JournalOrder(r.cid, r.strategy_id, r.client_tag, r.source, r.symbol_id, r.ring,
                                          r.ring_seq)
        if r.kind == M.ORDER_SENT and r.ring >= 0 and o.ring < 0:
            o.ring, o.ring_seq = r.ring, r.ring_seq
        status = _STATUS_OF_KIND.get(r.kind)
        if status is not None and _RANK[status] >= _RANK[o.status] and o.status not in _CLOSED:
            o.status = status
        if r.kind in (M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED):
            o.cum_qty = max(o.cum_qty, r.cum_qty)
        if r.flags & M.FLAG_VANISHED:
            o.vanished = True
        if r.kind == M.ORDER_CANCELED and r.flags & M.FLAG_NOT_SENT:
            o.not_sent = True
    return out


def venue_orders(order_log: list[LoggedOrder], account: str = "default") -> dict[str, VenueOrder]:
    """Every order of ``account`` in the venue's order log, by client order id (the newest order
    of an id wins for status; acceptances are counted over all of them)."""
    out: dict[str, VenueOrder] = {}
    for e in order_log:
        r = e.report
        if e.account != account:
            continue
        o = out.get(r.client_order_id)
        if o is None:
            o = out[r.client_order_id] = VenueOrder(r.client_order_id, r.symbol)
        if e.accepted:
            o.news += 1
        if r.status is not None:
            o.status = r.status
        o.executed = r.cum_qty
        if e.venue_restart:
            o.restart_closed = True
    return out


def find_lost_and_doubled(journal: dict[str, JournalOrder], venue: dict[str, VenueOrder],
                          prefix: str = "b25-") -> tuple[list[str], list[dict[str, Any]]]:
    lost = sorted(cid for cid, v in venue.items() if v.news and cid.startswith(prefix) and cid not in journal)
    doubled: list[dict[str, Any]] = [{"cid": cid, "accepted": v.news} for cid, v in venue.items() if v.news > 1]
    by_intent: dict[tuple, list[str]] = defaultdict(list)
    by_tag: dict[tuple, list[str]] = defaultdict(list)
    for o in journal.values():
        if not o.cid.startswith(prefix):
            continue  # an order execution adopted at reconciliation: not one of its intents
        if o.ring >= 0:
            by_intent[(o.ring, o.ring_seq)].append(o.cid)
        if o.source in (M.SOURCE_STRATEGY, M.SOURCE_REMOTE) and o.client_tag:
            by_tag[(o.source, o.strategy_id, o.client_tag)].append(o.cid)
    for (ring, seq), cids in by_intent.items():
        if len(cids) > 1:
            doubled.append({"ring": ring, "ring_seq": seq, "cids": sorted(cids)})
    for (source, sid, tag), cids in by_tag.items():
        if len(cids) > 1:
            doubled.append({"source": source, "strategy_id": sid, "client_tag": tag, "cids": sorted(cids)})
    return lost, doubled


def find_state_mismatches(journal: dict[str, JournalOrder], venue: dict[str, VenueOrder],
                          instruments: dict[str, Instrument], symbols: list[str],
                          prefix: str = "b25-") -> list[dict[str, Any]]:
    """Per order: the journal's final status and filled lots against the venue's."""
    out = []
    for cid, v in venue.items():
        if not cid.startswith(prefix) or cid not in journal:
            continue
        j = journal[cid]
        inst = instruments.get(v.symbol)
        executed = inst.qty_to_lots(v.executed) if inst is not None else -1
        if j.status != v.status or j.cum_qty != executed:
            out.append({"cid": cid, "journal": status_name(j.status), "journal_cum": j.cum_qty,
                        "venue": status_name(v.status), "venue_executed": executed, "venue_restart": v.restart_closed})
    for cid, j in journal.items():
        if cid in venue or not cid.startswith(prefix):
            continue
        # never reached the venue: refused, or canceled before it was written (execution's flag)
        if j.status != V.REJECTED and not (j.status == V.CANCELED and j.not_sent and j.cum_qty == 0):
            sym = symbols[j.symbol_id] if 0 <= j.symbol_id < len(symbols) else str(j.symbol_id)
            out.append({"cid": cid, "journal": status_name(j.status), "journal_cum": j.cum_qty, "venue": None, "symbol": sym})
    return out


def find_orphaned(open_at_venue: list[OrderReport], journal: dict[str, JournalOrder],
                  working: dict[int, set[int]], live: set[int]) -> list[dict[str, Any]]:
    """Venue-open orders no live strategy manages. ``working``: strategy number -> the tags of its
    working set; ``live``: the numbers of strategies whose process is running."""
    out = []
    for d in open_at_venue:
        cid = d.client_order_id
        j = journal.get(cid)
        if j is None:
            out.append({"cid": cid, "why": "unknown to the journal"})
        elif j.source != M.SOURCE_STRATEGY:
            out.append({"cid": cid, "why": f"source {M.SOURCE_NAMES.get(j.source, j.source)}: no strategy manages it"})
        elif j.strategy_id not in live:
            out.append({"cid": cid, "why": f"strategy {j.strategy_id} is not running"})
        elif j.client_tag not in working.get(j.strategy_id, set()):
            out.append({"cid": cid, "why": f"not in strategy {j.strategy_id}'s working set", "tag": j.client_tag})
    return out


def find_position_mismatches(symbols: list[str], venue: dict[str, int], risk: dict[str, int],
                             strategies: dict[str, int]) -> list[dict[str, Any]]:
    """Per symbol (lots): the venue's, risk's and the strategies' summed position."""
    out = []
    for s in symbols:
        v, r, st = venue.get(s, 0), risk.get(s, 0), strategies.get(s, 0)
        if not v == r == st:
            out.append({"symbol": s, "venue": v, "risk": r, "strategies": st})
    return out


def strategy_positions(state: dict[str, Any]) -> dict[str, int]:
    """The strategies' positions in lots per symbol, summed, from a strategy state file."""
    out: dict[str, int] = defaultdict(int)
    for snap in state.get("strategies", {}).values():
        for sym, row in snap.get("positions", {}).items():
            out[sym] += int(row.get("qty", 0))
    return dict(out)


def working_sets(state: dict[str, Any]) -> dict[int, set[int]]:
    """Strategy number -> the open order tags the state file lists."""
    return {int(s.get("num", -1)): {int(t) for t in s.get("open_orders", [])}
            for s in state.get("strategies", {}).values()}
