"""A replay's summary: orders, fills, fees, P&L, drawdown, latency, and the journal's hash.

Everything here is computed from what the replay left behind (execution's journal, the
processes' shm counters and histograms, the last books), so it is the same code for a lockstep
and a free-running replay. P&L is in the quote asset (USDT), average-cost accounting per
symbol, net of fees; the equity curve is marked at each fill's price and at the last mid.

``journal_sha256`` hashes the journal's timing-independent fields: every field of every record
except ``wall_ns`` (host clock), ``ts_intent`` (the strategy's monotonic stamp) and
``event_seq``, with the records grouped per order. ``REC_POSITION`` records are left out: they
name the intent ring a count belongs to by its creation time (host clock), and say nothing of
the trading. Client order ids (``b25-<epoch>-<n>``),
client tags, exchange order and trade ids, prices, quantities, fees, reasons, intent ring
sequences and the exchange's event times (the recording's clock) all stay in.

Why per order: within one market event execution handles the strategy's intents and the
exchange's answers as they arrive (order 2's intent may be read before or after order 1's
acknowledgement), so the interleaving of *different* orders' records in the file, and the
published ``event_seq`` that numbers it, are timing; each order's own records, their order and
every value in them are not (lockstep: requests reach the exchange in intent order, against the
same book). Orders are taken in client-order-id order (ids are given in intent order); a denied
intent, which has no id, is keyed by its intent ring and sequence.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from procs.core import messages as M
from procs.execution.journal import REC_POSITION, JournalRecord
from procs.execution.journal import parse_journal as _parse

TIMING_FIELDS = ("wall_ns", "ts_intent", "event_seq")
_enc = msgspec.msgpack.Encoder()
_LEN = struct.Struct("<I")  # the same length prefix as the journal frames
KIND_NAMES = {M.ORDER_ACCEPTED: "accepted", M.ORDER_DENIED: "denied", M.ORDER_REJECTED: "rejected",
              M.ORDER_PARTIALLY_FILLED: "partially_filled", M.ORDER_FILLED: "filled",
              M.ORDER_CANCELED: "canceled", M.ORDER_EXPIRED: "expired", M.ORDER_CANCEL_REJECTED: "cancel_rejected",
              M.ORDER_SENT: "sent"}
FILL_KINDS = (M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED)
STAGES = {  # per-stage latency: (process, histogram) -> the stage's name in the summary
    ("market_data", "recv_to_publish"): "md_recv_to_publish",
    ("strategy", "book_to_intent"): "strategy_book_to_intent",
    ("execution", "intent_to_wire"): "exec_intent_to_wire",
    ("execution", "wire_to_ack"): "exec_wire_to_ack",
    ("risk", "fill_to_state"): "risk_fill_to_state",
}


def parse_journal(data: bytes) -> list[JournalRecord]:
    """The records of a journal (``<u32 len><msgpack>`` frames); a torn tail is left out."""
    return _parse(data)[0]


def timing_independent(rec: JournalRecord) -> JournalRecord:
    return msgspec.structs.replace(rec, **dict.fromkeys(TIMING_FIELDS, 0))


def _order_key(r: JournalRecord) -> tuple:
    if r.cid:
        head, _, n = r.cid.rpartition("-")
        return (1, head, int(n) if n.isdigit() else 0, r.cid)
    if r.kind >= 100:
        return (0, "", r.kind, "")  # journal-only records (epoch): first
    return (2, "", r.ring, str(r.ring_seq))  # a denied intent


def canonical(records: list[JournalRecord]) -> list[JournalRecord]:
    """Records grouped per order (stable: each order's records keep their journal order)."""
    return sorted(records, key=_order_key)


def journal_sha256(records: list[JournalRecord]) -> str:
    h = hashlib.sha256()
    for r in canonical([r for r in records if r.kind != REC_POSITION]):
        b = _enc.encode(timing_independent(r))
        h.update(_LEN.pack(len(b)))
        h.update(b)
    return h.hexdigest()


@dataclass
class _Pos:
    qty: int = 0  # lots, signed
    cost: Decimal = Decimal(0)  # quote value of the open position at its average price
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)


@dataclass
class Ledger:
    """Average-cost positions per symbol from fills, in quote units."""

    scales: dict[int, tuple[Decimal, Decimal]]  # symbol_id -> (price unit, qty unit)
    pos: dict[int, _Pos] = field(default_factory=dict)

    def fill(self, sid: int, side: int, px_ticks: int, qty_lots: int, fee_e8: int) -> None:
        pu, qu = self.scales[sid]
        p = self.pos.setdefault(sid, _Pos())
        px = Decimal(px_ticks) * pu
        signed = qty_lots if side == M.BUY else -qty_lots
        p.fees += Decimal(fee_e8) / Decimal(10**8)
        p.volume += px * Decimal(qty_lots) * qu
        if p.qty == 0 or (p.qty > 0) == (signed > 0):  # opening or adding
            p.cost += px * Decimal(signed) * qu
            p.qty += signed
            return
        closing = min(abs(signed), abs(p.qty))
        avg = p.cost / (Decimal(p.qty) * qu)
        sign = 1 if p.qty > 0 else -1
        p.realized += (px - avg) * Decimal(closing * sign) * qu
        p.cost -= avg * Decimal(closing * sign) * qu
        p.qty += signed
        if p.qty and (p.qty > 0) == (signed > 0):  # flipped: the rest opens at this price
            p.cost = px * Decimal(p.qty) * qu

    def unrealized(self, marks: dict[int, Decimal]) -> Decimal:
        out = Decimal(0)
        for sid, p in self.pos.items():
            if p.qty and sid in marks:
                out += marks[sid] * Decimal(p.qty) * self.scales[sid][1] - p.cost
        return out

    def realized(self) -> Decimal:
        return sum((p.realized for p in self.pos.values()), Decimal(0))

    def fees(self) -> Decimal:
        return sum((p.fees for p in self.pos.values()), Decimal(0))


def instrument_scales(symbols: list[str], instruments: dict[str, dict]) -> dict[int, tuple[Decimal, Decimal]]:
    """symbol_id -> (price per tick, quantity per lot times the contract size)."""
    scales = {}
    for sid, s in enumerate(symbols):
        ins = instruments.get(s, {"price_scale": 8, "qty_scale": 8, "contract_size": "1"})
        cs = Decimal(str(ins.get("contract_size", "1")))
        scales[sid] = (Decimal(1).scaleb(-int(ins["price_scale"])), Decimal(1).scaleb(-int(ins["qty_scale"])) * cs)
    return scales


def summarize(records: list[JournalRecord], symbols: list[str], instruments: dict[str, dict],
              books: dict[str, tuple[int, int]]) -> tuple[dict, dict]:
    """(summary fields, series for the plots) from the journal records."""
    scales = instrument_scales(symbols, instruments)
    ledger = Ledger(scales)
    kinds: dict[str, int] = {}
    last_px: dict[int, Decimal] = {}
    equity: list[tuple[int, float]] = []
    position: dict[str, list[tuple[int, float]]] = {s: [] for s in symbols}
    cids = set()
    peak = Decimal(0)
    max_dd = Decimal(0)
    for r in records:
        if r.kind >= 100:
            continue
        name = KIND_NAMES.get(r.kind, str(r.kind))
        kinds[name] = kinds.get(name, 0) + 1
        if r.cid:
            cids.add(r.cid)
        if r.kind in FILL_KINDS and r.last_qty and r.symbol_id in scales:
            ledger.fill(r.symbol_id, r.side, r.last_px, r.last_qty, r.fee_e8)
            last_px[r.symbol_id] = Decimal(r.last_px) * scales[r.symbol_id][0]
            eq = ledger.realized() - ledger.fees() + ledger.unrealized(last_px)
            peak = max(peak, eq)
            max_dd = max(max_dd, peak - eq)
            equity.append((r.ts_event, float(eq)))
            p = ledger.pos[r.symbol_id]
            position[symbols[r.symbol_id]].append((r.ts_event, float(Decimal(p.qty) * scales[r.symbol_id][1])))
    marks = dict(last_px)
    for sid, s in enumerate(symbols):
        bid, ask = books.get(s, (0, 0))
        if bid and ask:
            marks[sid] = Decimal(bid + ask) / 2 * scales[sid][0]
    realized, fees = ledger.realized(), ledger.fees()
    unrealized = ledger.unrealized(marks)
    final = realized - fees + unrealized
    peak = max(peak, final)
    max_dd = max(max_dd, peak - final)
    q = Decimal("0.00000001")
    out = {
        "orders": len(cids),
        "orders_sent": kinds.get("sent", 0),
        "fills": kinds.get("partially_filled", 0) + kinds.get("filled", 0),
        "events_by_kind": dict(sorted(kinds.items())),
        "fees": float(fees.quantize(q)),
        "volume": float(sum((p.volume for p in ledger.pos.values()), Decimal(0)).quantize(q)),
        "realized_pnl": float(realized.quantize(q)),
        "unrealized_pnl": float(unrealized.quantize(q)),
        "net_pnl": float(final.quantize(q)),
        "max_drawdown": float(max_dd.quantize(q)),
        "position": {symbols[sid]: float(Decimal(p.qty) * scales[sid][1]) for sid, p in ledger.pos.items()},
    }
    series = {"equity": equity, "position": position}
    return out, series


def latency_summary(latency: dict[str, dict[str, dict[str, float]]], hists: dict[str, dict[str, list[int]]]
                    ) -> dict[str, dict[str, Any]]:
    """p50/p99/p99.9 (us) and sample count per pipeline stage, from the shm histograms."""
    out: dict[str, dict[str, Any]] = {}
    for (proc, h), stage in STAGES.items():
        counts = hists.get(proc, {}).get(h)
        if counts is None:
            continue
        row = dict(latency.get(proc, {}).get(h, {}))
        row["count"] = int(sum(counts))
        out[stage] = row
    return out
