"""Every figure of ``b25 report``, from execution's journal records and the session's facts.

The figures come per strategy, per symbol, per UTC day and in total (``build_report``):

* **P&L**: average-cost positions per (strategy, symbol) cell, exact decimals (the replay summary's
  ``Ledger``); realized, fees, unrealized at the mark, net = realized - fees + unrealized. A
  strategy's figures are the sum of its cells, a symbol's the sum over strategies, so the total
  equals both sums (netting two strategies' positions would move P&L between realized and
  unrealized, never the net). The final mark is the session's (the recorded book's mid in a
  replay, risk's mark live); within the session, and at the end of a day that is not the last,
  a symbol is marked at its last fill price.
* **Equity curve**: net P&L after every fill, and at the end; per minute (UTC, the value at the
  end of each minute, carried through minutes without fills) for the returns and the JSON.
* **Drawdown**: the largest fall from a running peak of the curve, in quote units, and in % of
  that peak of capital + net P&L.
* **Sharpe, Sortino** on per-minute returns ``r = dV / (capital + V_prev)``, minutes without a
  fill included (they are 0 returns), annualised over 525600 minutes (a 24/7 market):
  ``Sharpe = mean(r) / std(r, ddof=1) * sqrt(525600)``,
  ``Sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(525600)`` (empyrical's definitions).
* **Round trips**: a (strategy, symbol) position from flat back to flat; a fill that flips it
  closes one trip and opens the next at its price, its fee split by quantity. A trip's P&L is its
  realized P&L net of its fills' fees; holding time from the opening to the closing fill.
* **Orders**: orders sent (journaled before the request went out), orders with at least one fill
  (fill ratio = filled / sent), fills per order, maker/taker share (by fills and by notional),
  turnover (notional traded / capital), order-to-ack latency (the ``sent`` record's host clock to
  the ``accepted`` one's), rejections by b25's reject reason (``REJECT_*``) and denials by
  pre-trade reason.

Time: each record's *session time* is the exchange's event time when it has one (fills, acks,
cancels), else the last exchange time before it in the journal (sent, denied: a replay's host
clock is years from its recording's), else its host time. ``--from``/``--to`` and the UTC days use it.

Library use: empyrical (``sharpe_ratio``, ``sortino_ratio``, ``max_drawdown``) computes Sharpe,
Sortino and the drawdown in %. Written here, for want of a maintained library that works on fills
rather than on a returns series: the ledger (already b25's, exact decimals), round trips, the
order statistics and the drawdown in quote units.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from procs.core import messages as M
from procs.execution.journal import JournalRecord
from procs.tools.replay.summary import FILL_KINDS, Ledger, instrument_scales

MINUTES_PER_YEAR = 525_600  # 365 days of 1440 minutes: crypto trades every minute of the year
MINUTE_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000
Q = Decimal("0.00000001")


@dataclass
class Session:
    """What the journal does not say: names, units, capital and the final marks."""

    symbols: list[str]  # symbol_id -> name
    instruments: dict[str, dict]  # symbol -> {price_scale, qty_scale, contract_size}
    strategies: dict[int, str] = field(default_factory=dict)  # strategy_id -> id string
    capital: Decimal = Decimal(0)  # quote; 0 = unknown (returns and % figures are then null)
    marks: dict[str, Decimal] = field(default_factory=dict)  # symbol -> final mark price
    mark_source: str = "last fill price"
    source: str = ""  # "replay" | "live" | "backtest"

    def to_json(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "instruments": self.instruments,
                "strategies": {str(k): v for k, v in self.strategies.items()}, "capital": str(self.capital),
                "marks": {k: str(v) for k, v in self.marks.items()}, "mark_source": self.mark_source,
                "source": self.source}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Session:
        return cls(list(d["symbols"]), dict(d.get("instruments", {})),
                   {int(k): v for k, v in d.get("strategies", {}).items()}, Decimal(str(d.get("capital", "0"))),
                   {k: Decimal(str(v)) for k, v in d.get("marks", {}).items()}, d.get("mark_source", "last fill price"),
                   d.get("source", ""))

    def strategy_name(self, strategy_id: int) -> str:
        if strategy_id in self.strategies:
            return self.strategies[strategy_id]
        return {-1: "manual", -2: "seed"}.get(strategy_id, f"strategy-{strategy_id}")

    def symbol_name(self, symbol_id: int) -> str:
        return self.symbols[symbol_id] if 0 <= symbol_id < len(self.symbols) else f"symbol-{symbol_id}"


def session_times(records: list[JournalRecord]) -> list[int]:
    """Each record's session time (ns): its exchange time, else the last one before it, else the
    first one after it, else its host time (see the module docstring)."""
    out: list[int] = []
    last = 0
    for r in records:
        if r.ts_event > 0:
            last = r.ts_event
        out.append(last)
    first = next((t for t in out if t), 0)
    return [t or first or r.wall_ns for t, r in zip(out, records, strict=True)]


def day_of(t_ns: int) -> str:
    return dt.datetime.fromtimestamp(t_ns / 1e9, dt.UTC).strftime("%Y-%m-%d")


def reason_name(kind: int, reason: int) -> str:
    if kind == M.ORDER_DENIED:
        return M.DENY_NAMES.get(reason, f"deny_{reason}")
    return M.REJECT_NAMES.get(reason, f"reject_{reason}")  # b25's name for the venue's refusal


@dataclass
class Trip:
    strategy: str
    symbol: str
    side: str  # "long" | "short"
    open_ns: int
    close_ns: int = 0
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)

    @property
    def pnl(self) -> Decimal:
        return self.realized - self.fees


@dataclass
class Group:
    """One row of the report (the total, a strategy, a symbol or a day): what falls in it."""

    cells: Any  # predicate (strategy_id, symbol_id) -> bool
    start_ns: int = 0  # the group's time window (a day's; the report's otherwise)
    end_ns: int = 0
    base: Decimal | None = None  # equity of its cells when its window opened
    points: list[tuple[int, Decimal]] = field(default_factory=list)
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    maker_notional: Decimal = Decimal(0)
    fills: int = 0
    maker_fills: int = 0
    sent: set = field(default_factory=set)
    filled: set = field(default_factory=set)
    acks_ns: list[int] = field(default_factory=list)
    rejections: Counter = field(default_factory=Counter)
    denials: Counter = field(default_factory=Counter)
    cancel_rejections: Counter = field(default_factory=Counter)
    cancels: int = 0
    trips: list[Trip] = field(default_factory=list)
    open_trips: int = 0
    last_unrealized: Decimal = Decimal(0)  # at its last point


class _Book:
    """Every (strategy, symbol) cell's average-cost position, and the symbols' current marks."""

    def __init__(self, session: Session) -> None:
        self.scales = instrument_scales(session.symbols, session.instruments)
        self.ledgers: dict[int, Ledger] = {}
        self.marks: dict[int, Decimal] = {}  # symbol_id -> price

    def ledger(self, strategy_id: int) -> Ledger:
        led = self.ledgers.get(strategy_id)
        if led is None:
            led = self.ledgers[strategy_id] = Ledger(self.scales)
        return led

    def value(self, cells: Any, marks: dict[int, Decimal] | None = None) -> tuple[Decimal, Decimal]:
        """(realized - fees + unrealized, unrealized) of the cells the predicate selects."""
        marks = self.marks if marks is None else marks
        equity = unrealized = Decimal(0)
        for st, led in self.ledgers.items():
            for sid, p in led.pos.items():
                if cells(st, sid):
                    equity += p.realized - p.fees
                    if p.qty and sid in marks:
                        unrealized += marks[sid] * Decimal(p.qty) * self.scales[sid][1] - p.cost
        return equity + unrealized, unrealized


def build_report(records: Iterable[JournalRecord], session: Session, start_ns: int | None = None,
                 end_ns: int | None = None, series: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report (see the module docstring) of the records whose session time is in [start, end).

    ``series``, when given, receives the full-resolution curves for plots: ``equity`` (total, after
    every fill and at the end), ``strategies`` (the same per strategy), ``position`` (net base
    quantity per symbol after every fill) and ``acks_us`` (every order-to-ack latency)."""
    recs = [r for r in records if r.kind < 100]
    times = session_times(recs)
    last_t = max(times) if times else 0
    lo = start_ns if start_ns is not None else (min(times) if times else 0)
    hi = end_ns if end_ns is not None else last_t + 1
    # what happens after the window does not change the figures in it
    kept = [(r, t) for r, t in zip(recs, times, strict=True) if t < hi]
    book = _Book(session)
    sid_of = {s: i for i, s in enumerate(session.symbols)}
    total = Group(lambda st, sid: True, lo, hi)
    strategies: dict[str, Group] = {}
    symbols: dict[str, Group] = {}
    days: dict[str, Group] = {}
    trips: dict[tuple[int, int], Trip] = {}
    sent_wall: dict[str, int] = {}

    def groups_of(r: JournalRecord, t: int) -> list[Group]:
        sname, yname, day = session.strategy_name(r.strategy_id), session.symbol_name(r.symbol_id), day_of(t)
        st, sid = r.strategy_id, r.symbol_id
        if sname not in strategies:
            strategies[sname] = Group(lambda a, b, st=st: a == st, lo, hi)
        if yname not in symbols:
            symbols[yname] = Group(lambda a, b, sid=sid: b == sid, lo, hi)
        if day not in days:
            d0 = int(dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()) * 10**9
            days[day] = Group(lambda a, b: True, max(lo, d0), min(hi, d0 + DAY_NS))
        return [total, strategies[sname], symbols[yname], days[day]]

    for r, t in kept:
        inside = lo <= t
        if r.kind in FILL_KINDS and r.last_qty and r.symbol_id in book.scales:
            gs = groups_of(r, t) if inside else []
            for g in gs:
                if g.base is None:
                    g.base = book.value(g.cells)[0]
            led = book.ledger(r.strategy_id)
            before = led.pos[r.symbol_id].qty if r.symbol_id in led.pos else 0
            realized_before = led.pos[r.symbol_id].realized if r.symbol_id in led.pos else Decimal(0)
            led.fill(r.symbol_id, r.side, r.last_px, r.last_qty, r.fee_e8)
            p = led.pos[r.symbol_id]
            pu, qu = book.scales[r.symbol_id]
            px = Decimal(r.last_px) * pu
            book.marks[r.symbol_id] = px
            fee = Decimal(r.fee_e8) / Decimal(10**8)
            notional = px * Decimal(r.last_qty) * qu
            realized = p.realized - realized_before
            maker = bool(r.flags & M.FLAG_MAKER)
            _trip(trips, r, t, before, p.qty, realized, fee, qu, session, gs)
            for g in gs:
                g.realized += realized
                g.fees += fee
                g.notional += notional
                g.fills += 1
                g.filled.add(r.cid)
                if maker:
                    g.maker_fills += 1
                    g.maker_notional += notional
            if inside and series is not None:
                net = sum((led2.pos[r.symbol_id].qty for led2 in book.ledgers.values() if r.symbol_id in led2.pos), 0)
                series.setdefault("position", {}).setdefault(session.symbol_name(r.symbol_id), []).append(
                    (t, float(Decimal(net) * qu)))
            if inside:  # every group's curve that moved (a new mark moves other strategies' cells too)
                for g in [total, *strategies.values(), *symbols.values(), days[day_of(t)]]:
                    v, g.last_unrealized = book.value(g.cells)
                    if g.base is None:
                        g.base = v
                    if not g.points or g.points[-1][1] != v:
                        g.points.append((t, v))
            continue
        if not inside:
            if r.kind == M.ORDER_SENT:
                sent_wall[r.cid] = r.wall_ns
            continue
        gs = groups_of(r, t)
        if r.kind == M.ORDER_SENT:
            sent_wall[r.cid] = r.wall_ns
            for g in gs:
                g.sent.add(r.cid)
        elif r.kind == M.ORDER_ACCEPTED and r.cid in sent_wall and not r.flags & M.FLAG_RECOVERED:
            lat = r.wall_ns - sent_wall.pop(r.cid)
            for g in gs:
                g.acks_ns.append(lat)
        elif r.kind in (M.ORDER_REJECTED, M.ORDER_DENIED, M.ORDER_CANCEL_REJECTED):
            name = reason_name(r.kind, r.reason)
            for g in gs:
                {M.ORDER_REJECTED: g.rejections, M.ORDER_DENIED: g.denials,
                 M.ORDER_CANCEL_REJECTED: g.cancel_rejections}[r.kind][name] += 1
        elif r.kind == M.ORDER_CANCELED:
            for g in gs:
                g.cancels += 1
    last_day = max(days) if days else None
    for tr in trips.values():
        if tr is not None:
            for g in (total, strategies.get(tr.strategy), symbols.get(tr.symbol), days.get(last_day or "")):
                if g is not None:
                    g.open_trips += 1
    final_marks = dict(book.marks)
    if hi > last_t:  # the window runs to the journal's end: the session's own final marks
        for s, px in session.marks.items():
            if s in sid_of:
                final_marks[sid_of[s]] = px

    def figures(g: Group, at_end: bool) -> dict[str, Any]:
        if at_end:
            return _figures(g, *book.value(g.cells, final_marks), session.capital)
        last = g.points[-1][1] if g.points else (g.base or Decimal(0))
        return _figures(g, last, g.last_unrealized, session.capital)

    if series is not None:
        end = figures(total, True)["equity_end"]
        series["equity"] = [(t, float(v - (total.base or 0))) for t, v in total.points] + (
            [(hi - 1, end - float(total.base or 0))] if total.base is not None else [])
        series["strategies"] = {k: [(t, float(v - (g.base or 0))) for t, v in g.points]
                                for k, g in sorted(strategies.items())}
        series["acks_us"] = [a / 1000 for a in total.acks_ns]
    out = {
        "source": session.source, "capital": float(session.capital), "mark_source": session.mark_source,
        "marks": {session.symbol_name(k): float(v) for k, v in sorted(final_marks.items())},
        "from": _iso(lo), "to": _iso(hi), "annualization_minutes": MINUTES_PER_YEAR,
        "total": figures(total, True),
        "strategies": {k: figures(g, True) for k, g in sorted(strategies.items())},
        "symbols": {k: figures(g, True) for k, g in sorted(symbols.items())},
        "days": {k: figures(g, k == last_day) for k, g in sorted(days.items())},
    }
    return out


def _trip(trips: dict[tuple[int, int], Trip | None], r: JournalRecord, t: int, before: int, after: int,
          realized: Decimal, fee: Decimal, qu: Decimal, session: Session, groups: list[Group]) -> None:
    """Round-trip bookkeeping of one fill (``before``/``after``: the cell's position in lots)."""
    key = (r.strategy_id, r.symbol_id)
    tr = trips.get(key)
    sname, yname = session.strategy_name(r.strategy_id), session.symbol_name(r.symbol_id)

    def opened(qty_lots: int, fee_part: Decimal) -> Trip:
        return Trip(sname, yname, "long" if qty_lots > 0 else "short", t, fees=fee_part,
                    max_qty=Decimal(abs(qty_lots)) * qu)

    if before == 0:
        trips[key] = opened(after, fee) if after else None
        return
    assert tr is not None
    flipped = after != 0 and (after > 0) != (before > 0)
    closing_fee = fee * Decimal(abs(before)) / Decimal(r.last_qty) if flipped else fee
    tr.realized += realized
    tr.fees += closing_fee
    tr.max_qty = max(tr.max_qty, Decimal(abs(after)) * qu)
    if after == 0 or flipped:
        tr.close_ns = t
        for g in groups:  # a trip counts where (and when) it closes
            g.trips.append(tr)
        trips[key] = opened(after, fee - closing_fee) if flipped else None


def _figures(g: Group, end_value: Decimal, unrealized: Decimal, capital: Decimal) -> dict[str, Any]:
    """One group's figures; ``end_value``/``unrealized``: its equity and unrealized P&L at its end."""
    base = g.base if g.base is not None else Decimal(0)
    if g.base is None:
        end_value, unrealized = base, Decimal(0)  # no fill in the window
    points = [*g.points]
    if g.base is not None and (not points or points[-1][1] != end_value):
        points.append((max(g.end_ns - 1, points[-1][0] if points else g.start_ns), end_value))
    net = end_value - base
    minutes = _minute_curve(points, base, g.start_ns, g.end_ns)
    returns = _returns(minutes, base, capital)
    dd_abs, dd_pct = _drawdown([base, *(v for _, v in points)], capital)
    sent = len(g.sent)
    return {
        "net_pnl": _f(net), "realized_pnl": _f(g.realized), "fees": _f(g.fees),
        "unrealized_pnl": _f(unrealized), "equity_end": _f(end_value),
        "max_drawdown": _f(dd_abs), "max_drawdown_pct": dd_pct,
        "sharpe": _ratio(returns, "sharpe"), "sortino": _ratio(returns, "sortino"), "minutes": len(minutes),
        "equity_curve": [[t // 1_000_000, _f(v - base)] for t, v in minutes],
        "round_trips": trip_stats(g.trips) | {"open": g.open_trips},
        "volume": _f(g.notional), "turnover": _f(g.notional / capital) if capital > 0 else None,
        "fills": g.fills, "maker_fills": g.maker_fills, "taker_fills": g.fills - g.maker_fills,
        "maker_share": round(g.maker_fills / g.fills, 6) if g.fills else None,
        "maker_share_notional": _f(g.maker_notional / g.notional) if g.notional else None,
        "orders_sent": sent, "orders_filled": len(g.filled & g.sent),
        "fill_ratio": round(len(g.filled & g.sent) / sent, 6) if sent else None,
        "fills_per_order": round(g.fills / sent, 6) if sent else None,
        "cancels": g.cancels,
        "order_to_ack_us": latency_stats(g.acks_ns),
        "rejections": dict(sorted(g.rejections.items())), "denials": dict(sorted(g.denials.items())),
        "cancel_rejections": dict(sorted(g.cancel_rejections.items())),
    }


def _minute_curve(points: list[tuple[int, Decimal]], base: Decimal, start_ns: int, end_ns: int
                  ) -> list[tuple[int, Decimal]]:
    """(minute end, value at that time) for every UTC minute of [start, end)."""
    if end_ns <= start_ns:
        return []
    first = start_ns - start_ns % MINUTE_NS
    out = []
    i = 0
    v = base
    m = first + MINUTE_NS
    while m - MINUTE_NS < end_ns:
        while i < len(points) and points[i][0] < m:
            v = points[i][1]
            i += 1
        out.append((m, v))
        m += MINUTE_NS
    return out


def _returns(minutes: list[tuple[int, Decimal]], base: Decimal, capital: Decimal) -> list[float] | None:
    if capital <= 0:
        return None
    out = []
    prev = base
    for _, v in minutes:
        out.append(float((v - prev) / (capital + prev)))
        prev = v
    return out


def _ratio(returns: list[float] | None, which: str) -> float | None:
    """Annualised Sharpe or Sortino (empyrical); None without capital, 2 returns, or any spread."""
    if returns is None or len(returns) < 2:
        return None
    import empyrical

    r = np.asarray(returns, dtype=float)
    if which == "sharpe":
        v = empyrical.sharpe_ratio(r, risk_free=0.0, annualization=MINUTES_PER_YEAR)
    else:
        v = empyrical.sortino_ratio(r, required_return=0.0, annualization=MINUTES_PER_YEAR)
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def _drawdown(values: list[Decimal], capital: Decimal) -> tuple[Decimal, float | None]:
    """(largest peak-to-trough fall in quote units, in % of capital + peak via empyrical)."""
    peak = values[0]
    worst = Decimal(0)
    for v in values:
        peak = max(peak, v)
        worst = max(worst, peak - v)
    if capital <= 0:
        return worst, None
    import empyrical

    levels = np.asarray([float(capital + v) for v in values], dtype=float)
    if len(levels) < 2:
        return worst, 0.0
    rets = levels[1:] / levels[:-1] - 1.0
    return worst, round(-float(empyrical.max_drawdown(rets)) * 100.0, 6)


def trip_stats(trips: list[Trip]) -> dict[str, Any]:
    """Count, win rate, profit factor, average win/loss, expectancy and holding time of closed trips."""
    pnls = [t.pnl for t in trips]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    hold = [(t.close_ns - t.open_ns) / 1e9 for t in trips]
    gross_win, gross_loss = sum(wins, Decimal(0)), -sum(losses, Decimal(0))
    return {
        "count": len(trips), "wins": len(wins), "losses": len(losses),
        "win_rate": round(len(wins) / len(trips), 6) if trips else None,
        "profit_factor": _f(gross_win / gross_loss) if gross_loss else None,
        "avg_win": _f(gross_win / len(wins)) if wins else None,
        "avg_loss": _f(-gross_loss / len(losses)) if losses else None,
        "expectancy": _f(sum(pnls, Decimal(0)) / len(pnls)) if pnls else None,
        "net_pnl": _f(sum(pnls, Decimal(0))),
        "avg_holding_s": round(float(np.mean(hold)), 3) if hold else None,
        "median_holding_s": round(float(np.median(hold)), 3) if hold else None,
    }


def latency_stats(samples_ns: list[int]) -> dict[str, Any]:
    """Order-to-ack percentiles in microseconds (numpy's linear interpolation)."""
    if not samples_ns:
        return {"count": 0}
    a = np.asarray(samples_ns, dtype=float) / 1000.0
    p = np.percentile(a, [50, 90, 99, 99.9])
    return {"count": len(a), "p50": round(float(p[0]), 3), "p90": round(float(p[1]), 3),
            "p99": round(float(p[2]), 3), "p99_9": round(float(p[3]), 3), "max": round(float(a.max()), 3),
            "mean": round(float(a.mean()), 3)}


def _f(d: Decimal) -> float:
    return float(d.quantize(Q))


def _iso(t_ns: int) -> str:
    return dt.datetime.fromtimestamp(t_ns / 1e9, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
