"""The TUI's panels: one widget per panel, each subclassing the closest Textual built-in and
drawing itself from the read-only ``ShmSource`` in ``refresh_from`` (called by the app's
100 ms timer for the panels on screen)."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, ProgressBar, Sparkline, Static

from procs.core import messages as M
from procs.core.instruments import Instrument, int_to_decimal
from procs.monitor.orders import order_key
from shm.counters import SUB

from .source import ShmSource

BID = "green"
ASK = "red"


def hms(ts_ns: int) -> str:
    """Wall-clock ns -> HH:MM:SS.mmm (UTC); a CLOCK_MONOTONIC stamp is moved onto the wall clock."""
    if ts_ns <= 0:
        return "-"
    if ts_ns < 10**17:  # monotonic (every process shares the clock): now - age
        ts_ns = time.time_ns() - (time.monotonic_ns() - ts_ns)
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]


def px(inst: Instrument | None, ticks: int) -> str:
    return inst.ticks_to_price(ticks) if inst else str(ticks)


def qty(inst: Instrument | None, lots: int) -> str:
    return inst.lots_to_qty(lots) if inst else str(lots)


def money(ticks_lots: float, inst: Instrument | None) -> float:
    """P&L kept in ticks*lots -> quote currency."""
    if inst is None:
        return ticks_lots
    return ticks_lots / 10 ** (inst.price_scale + inst.qty_scale)


def _sig3(x: float) -> str:
    return f"{x:.0f}" if x >= 99.95 else f"{x:.3g}"


def us(v: float) -> str:
    """A latency given in us, in at most 5 characters: "98.3" (us), "1.31m" (ms), "17.2s"; "-" when empty."""
    if v != v:  # nan: no samples
        return "-"
    if v < 999.5:
        return _sig3(v)
    if v < 999_500:
        return _sig3(v / 1e3) + "m"
    return _sig3(v / 1e6) + "s"


def age(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


class Panel:
    """Mixin: a panel draws itself from the source; ``symbol`` is the app's selected symbol."""

    def refresh_from(self, src: ShmSource, symbol: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _Table(DataTable, Panel):
    COLUMNS: tuple[str, ...] = ()

    def __init__(self, title: str, **kw: Any) -> None:
        super().__init__(cursor_type="none", zebra_stripes=False, **kw)
        self.border_title = title

    def on_mount(self) -> None:
        self.add_columns(*self.COLUMNS)

    _last: list[tuple] | None = None

    def set_rows(self, rows: list[tuple]) -> None:
        if rows == self._last:  # unchanged: no clear, no re-render (the screen stays idle)
            return
        self._last = rows
        keep = self.cursor_row
        self.clear()
        self.add_rows(rows)
        if self.cursor_type == "row" and rows:
            self.move_cursor(row=min(keep, len(rows) - 1), animate=False)


class TextTable(Static, Panel):
    """A table drawn as one block of styled text: for panels that change every tick.

    Textual's DataTable renders cell by cell; fixed-width columns in one Text cost a fraction of
    that, at the price of having no cursor (docs/decisions/029-tui-text-block-panels.md). ``COLUMNS`` is
    (title, width, justify) per column; rows beyond the panel's height are not drawn.
    """

    COLUMNS: tuple[tuple[str, int, str], ...] = ()

    def __init__(self, title: str, **kw: Any) -> None:
        super().__init__("", **kw)
        self.border_title = title
        self._last: list[tuple] | None = None
        self._plain: list[list[str]] = []

    @property
    def row_count(self) -> int:
        return len(self._plain)

    def plain_rows(self) -> list[list[str]]:
        """The rows as their cells' text (what tests compare)."""
        return [list(r) for r in self._plain]

    def visible_rows(self) -> int:
        h = self.size.height
        return max(1, h - 1) if h else 40

    def set_rows(self, rows: list[tuple]) -> None:
        if rows == self._last:
            return
        self._last = rows
        self._plain = [[c.plain if isinstance(c, Text) else str(c) for c in r] for r in rows]
        out = Text(no_wrap=True, overflow="crop")
        for i, (name, width, just) in enumerate(self.COLUMNS):
            out.append((name.rjust(width) if just == "right" else name.ljust(width)) + (" " if i < len(self.COLUMNS) - 1 else ""),
                       style="bold")
        for r in rows:
            out.append("\n")
            for i, ((_name, width, just), cell) in enumerate(zip(self.COLUMNS, r, strict=False)):
                txt = cell.plain if isinstance(cell, Text) else str(cell)
                txt = txt[:width]
                txt = txt.rjust(width) if just == "right" else txt.ljust(width)
                sep = " " if i < len(self.COLUMNS) - 1 else ""
                out.append(txt + sep, style=cell.style if isinstance(cell, Text) else "")
        self.update(out, layout=False)  # fixed-size panel: no screen re-layout per tick


class BookLadder(TextTable):
    """Order book ladder of the selected symbol (``book.<symbol>``), own open orders marked."""

    COLUMNS = (("own", 8, "left"), ("bid qty", 8, "right"), ("price", 9, "right"), ("ask qty", 8, "left"))

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        inst = src.instrument(symbol)
        b = src.book(symbol)
        if b is None:
            self.border_title = f"book {symbol}: no book (market_data not running?)"
            self.set_rows([])
            return
        flags = int(b["flags"])
        self.border_title = f"book {symbol}" + ("  RESYNCING" if flags & M.BOOK_RESYNCING else "")
        sid = src.symbols.index(symbol) if symbol in src.symbols else -1
        own: dict[int, list[str]] = {}
        for o in src.tracker.open_orders(sid):
            left = int(o["qty"]) - int(o["cum_qty"])
            own.setdefault(int(o["price"]), []).append(("B " if int(o["side"]) == M.BUY else "S ") + qty(inst, left))
        levels = max(3, (self.visible_rows() - 1) // 2)
        na, nb = min(int(b["n_asks"]), levels), min(int(b["n_bids"]), levels)
        rows = []
        for i in range(na - 1, -1, -1):
            p = int(b["ask_px"][i])
            rows.append((Text(" ".join(own.get(p, [])), style="bold yellow"), "",
                         Text(px(inst, p), style=ASK), Text(qty(inst, int(b["ask_qty"][i])), style=ASK)))
        for i in range(nb):
            p = int(b["bid_px"][i])
            rows.append((Text(" ".join(own.get(p, [])), style="bold yellow"),
                         Text(qty(inst, int(b["bid_qty"][i])), style=BID), Text(px(inst, p), style=BID), ""))
        self.set_rows(rows)


class TradesTape(TextTable):
    """Trades of the selected symbol, newest first (``md.trade`` as an observer)."""

    COLUMNS = (("time", 12, "left"), ("price", 9, "right"), ("qty", 7, "right"), ("side", 4, "left"))

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        inst = src.instrument(symbol)
        sid = src.symbols.index(symbol) if symbol in src.symbols else -1
        rows = []
        for t in reversed(src.trades):
            if int(t["symbol_id"]) != sid:
                continue
            sell = int(t["flags"]) & M.TRADE_BUYER_MAKER
            style = ASK if sell else BID
            rows.append((hms(int(t["ts_event"])), Text(px(inst, int(t["price"])), style=style),
                         qty(inst, int(t["qty"])), Text("sell" if sell else "buy", style=style)))
            if len(rows) >= self.visible_rows():
                break
        self.set_rows(rows)


_CONDITIONAL_STATUS = {M.STOP_MARKET: "STOP", M.TAKE_PROFIT_MARKET: "TAKEPROF", M.TRAILING_STOP_MARKET: "TRAILING"}


class OrdersPanel(TextTable):
    """Open orders, then the most recent order events (``exec`` as an observer).

    One open order is selected (shown reversed; the first until another is chosen with up/down
    while the panel has focus); ``d`` cancels it after a confirmation (``B25App.action_cancel_order``)."""

    COLUMNS = (("status", 9, "left"), ("side", 4, "left"), ("price", 9, "right"), ("qty", 7, "right"),
               ("symbol", 8, "left"), ("filled", 7, "right"), ("reason", 14, "left"), ("order", 24, "left"))
    can_focus = True
    BINDINGS = [Binding("up", "move(-1)", "Prev order", show=False), Binding("down", "move(1)", "Next order", show=False)]

    def __init__(self, title: str, **kw: Any) -> None:
        super().__init__(title, **kw)
        self.selected_key: tuple | None = None  # procs.monitor.orders.order_key of the selected open order
        self._open: list[Any] = []
        self._src: ShmSource | None = None

    def selected(self) -> Any | None:
        """The selected open order (its newest OrderEvent), None when nothing is open."""
        for e in self._open:
            if order_key(e) == self.selected_key:
                return e
        return self._open[0] if self._open else None

    def action_move(self, step: int) -> None:
        if not self._open:
            return
        keys = [order_key(e) for e in self._open]
        at = keys.index(self.selected_key) if self.selected_key in keys else 0
        self.selected_key = keys[(at + step) % len(keys)]
        if self._src is not None:
            self.refresh_from(self._src, "")

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        self._src = src
        rows = []
        self._open = opened = src.tracker.open_orders()
        chosen = self.selected()
        self.selected_key = order_key(chosen) if chosen is not None else None
        for e in opened:
            rows.append(self._row(src, e, "OPEN", selected=e is chosen))
        for e in list(src.tracker.recent)[::-1][: max(0, self.visible_rows() - len(rows))]:
            kind = int(e["kind"])
            rows.append(self._row(src, e, M.EVENT_NAMES.get(kind, str(kind))))
        self.border_title = f"orders: {len(opened)} open, {src.tracker.events} events"
        self.set_rows(rows)

    @staticmethod
    def _row(src: ShmSource, e: Any, status: str, selected: bool = False) -> tuple:
        sym = src.symbol_name(int(e["symbol_id"]))
        inst = src.instrument(sym)
        side = "BUY" if int(e["side"]) == M.BUY else "SELL"
        otype = int(e["order_type"])
        price = "MKT" if otype == M.MARKET else px(inst, int(e["price"]))
        if otype in M.CONDITIONAL_TYPES:  # what it waits for: its trigger, the kind in the status column
            trigger = int(e["trigger_price"])
            price = px(inst, trigger) if trigger else "-"
            if status == "OPEN":
                status = _CONDITIONAL_STATUS[otype]
        coid = bytes(e["client_order_id"]).rstrip(b"\0").decode(errors="replace") or str(int(e["client_tag"]))
        style = ("bold" if status in ("OPEN", "STOP", "TAKEPROF", "TRAILING") else "red" if status in ("denied", "rejected", "modify_rejected")
                 else "yellow" if status in ("modify_sent", "modified") else "")
        kind, code = int(e["kind"]), int(e["reason"])
        reason = ""
        if kind == M.ORDER_DENIED or (kind == M.ORDER_MODIFY_REJECTED and code in M.DENY_NAMES):
            reason = M.DENY_NAMES.get(code, str(code))
        elif kind in (M.ORDER_REJECTED, M.ORDER_CANCEL_REJECTED, M.ORDER_MODIFY_REJECTED):
            reason = f"exchange {M.REJECT_NAMES.get(code, code)}"
        row = (Text(status, style=style), side, price, qty(inst, int(e["qty"])), sym,
               qty(inst, int(e["cum_qty"])), reason, coid)
        if selected:
            return tuple(Text(c.plain if isinstance(c, Text) else c, style="bold reverse") for c in row)
        return row


class PositionsPanel(Vertical, Panel):
    """Positions and P&L from exec fills (realized, unrealized at the mark), equity sparkline."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.border_title = "positions & P&L"
        self.equity: deque[float] = deque([0.0], maxlen=120)
        self._sampled = 0.0
        self._rows: list[tuple] = []

    def compose(self) -> ComposeResult:
        t = DataTable(cursor_type="none", id="positions-table")
        t.add_columns("symbol", "position", "avg", "mark", "unrealized", "realized", "fees")
        yield t
        yield Label("equity (P&L)", id="equity-label")
        yield Sparkline(list(self.equity), id="equity")

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        t = self.query_one("#positions-table", DataTable)
        total = 0.0
        rows = []
        for sid, pos in sorted(src.tracker.positions.items()):
            sym = src.symbol_name(sid)
            inst = src.instrument(sym)
            mark = src.mark(sid)
            unreal = money(pos.unrealized(mark), inst)
            real = money(pos.realized, inst)
            fees = pos.fees_e8 / 1e8
            total += real + unreal - fees
            rows.append((sym, qty(inst, pos.lots), px(inst, round(pos.avg_ticks)) if pos.lots else "-",
                         px(inst, mark) if mark else "-", Text(f"{unreal:,.2f}", style=BID if unreal >= 0 else ASK),
                         Text(f"{real:,.2f}", style=BID if real >= 0 else ASK), f"{fees:,.4f}"))
        if rows != self._rows:
            self._rows = rows
            t.clear()
            t.add_rows(rows)
        now = time.monotonic()
        if now - self._sampled >= 1.0:
            self.equity.append(total)
            self._sampled = now
            self.query_one("#equity", Sparkline).data = list(self.equity)
        self.query_one("#equity-label", Label).update(f"equity (P&L) {total:,.2f}")


class RiskPanel(Vertical, Panel):
    """risk.state: trading state, kill switch, equity/drawdown, limit utilisation bars."""

    def __init__(self, symbols: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.symbols = symbols[: M.MAX_SYMBOLS]
        self.border_title = "risk"

    def compose(self) -> ComposeResult:
        yield Static("risk.state: not published (risk not running?)", id="risk-state")
        for i, s in enumerate(self.symbols):
            yield Label(f"{s} position / max", id=f"risk-pos-label-{i}")
            yield ProgressBar(total=1, show_eta=False, id=f"risk-pos-{i}")
        yield Label("open orders / max", id="risk-open-label")
        yield ProgressBar(total=1, show_eta=False, id="risk-open")

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        r = src.risk()
        state = self.query_one("#risk-state", Static)
        if r is None:
            state.update("risk.state: not published (risk not running?)")
            return
        ts = int(r["trading_state"])
        name = M.TRADING_STATE_NAMES.get(ts, str(ts))
        kill = Text("KILL SWITCH ON", style="bold white on red") if ts == M.HALTED else Text("kill switch off", style="green")
        line = Text.assemble(("state ", "dim"), (name, "bold"), "  ", kill,
                             f"\nequity {int(r['equity_e8']) / 1e8:,.2f}  drawdown {int(r['drawdown_e8']) / 1e8:,.2f}"
                             f"  v{int(r['version'])}")
        state.update(line)
        for i, s in enumerate(self.symbols):
            inst = src.instrument(s)
            mx, pos = int(r["max_position"][i]), int(r["position"][i])
            bar = self.query_one(f"#risk-pos-{i}", ProgressBar)
            bar.update(total=mx or 1, progress=min(abs(pos), mx) if mx else 0)
            self.query_one(f"#risk-pos-label-{i}", Label).update(
                f"{s} position {qty(inst, pos)} / {qty(inst, mx) if mx else 'no limit'}")
        mo = int(r["max_open_orders"])
        n_open = len(src.tracker.open)
        self.query_one("#risk-open", ProgressBar).update(total=mo or 1, progress=min(n_open, mo) if mo else 0)
        self.query_one("#risk-open-label", Label).update(f"open orders {n_open} / {mo or 'no limit'}")


DECISIONS = {0: "-", 1: "buy", -1: "sell", 2: "quote", 3: "cancel"}


class StrategiesPanel(TextTable):
    """Strategy signals and decisions (``strategy.signals`` as an observer), newest first."""

    COLUMNS = (("time", 12, "left"), ("strategy", 12, "left"), ("symbol", 8, "left"), ("signal", 8, "right"),
               ("decision", 8, "left"), ("position", 8, "right"))

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        rows = []
        for s in list(src.signals)[::-1][: self.visible_rows()]:
            sym = src.symbol_name(int(s["symbol_id"]))
            rows.append((hms(int(s["ts"])), src.strategy_name(int(s["strategy_id"])), sym, f"{float(s['value']):+.4f}",
                         DECISIONS.get(int(s["decision"]), str(int(s["decision"]))),
                         qty(src.instrument(sym), int(s["position"]))))
        self.set_rows(rows)


class StrategyConfigPanel(TextTable):
    """The configured strategies (``[strategy]`` of the config file): id, class, symbols, params.

    Re-read when the file changes, so an edit followed by a reload (``R``) shows here."""

    COLUMNS = (("id", 12, "left"), ("on", 3, "left"), ("class", 14, "left"), ("symbols", 16, "left"),
               ("params", 120, "left"))

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        roster = src.roster
        if roster is None:
            self.border_title = "strategy config: no config file"
            self.set_rows([])
            return
        self.border_title = ("strategy config" if not roster.error else
                             f"strategy config (last good; file error: {roster.error[:60]})")
        self.set_rows(roster.rows())


class LatencyPanel(Vertical, Panel):
    """Per-stage latency p50/p95/p99/p99.9 from every process's shm histograms, and one histogram."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.border_title = "latency (us; m = ms, s = s)"
        self._cells: list[tuple] = []
        self._at = -1e9

    def compose(self) -> ComposeResult:
        t = DataTable(cursor_type="row", id="latency-table")
        t.add_columns("proc", "stage", "count", "p50", "p95", "p99", "p99.9")
        yield t
        yield Label("histogram: -", id="latency-label")
        yield Sparkline([0], id="latency-hist")

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        now = time.monotonic()
        if now - self._at < 0.5:  # percentiles move slowly; 2 Hz spares the CPU
            return
        self._at = now
        t = self.query_one("#latency-table", DataTable)
        rows = src.latency()
        keep = t.cursor_row
        cells = [(r.proc, r.stage, str(r.count), us(r.p50_us), us(r.p95_us), us(r.p99_us), us(r.p999_us))
                 for r in rows]
        if cells != self._cells:
            self._cells = cells
            t.clear()
            t.add_rows(cells)
            if rows:
                t.move_cursor(row=min(max(keep, 0), len(rows) - 1), animate=False)
        if not rows:
            return
        sel = rows[min(max(t.cursor_row, 0), len(rows) - 1)]
        per_row = sel.counts.reshape(-1, SUB).sum(axis=1)  # one bar per power of two
        nz = per_row.nonzero()[0]
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 1)
        self.query_one("#latency-hist", Sparkline).data = [float(x) for x in per_row[lo:hi]]
        self.query_one("#latency-label", Label).update(
            f"histogram {sel.proc}/{sel.stage}: {2 ** (lo + 6) / 1000:g}us .. {2 ** (hi + 6) / 1000:g}us")


class ProcessesPanel(_Table):
    """Processes: supervisord state and uptime, shm heartbeat (fresh or STALE and why), CPU%, affinity."""

    COLUMNS = ("process", "supervisor", "health", "state", "beat", "uptime", "pid", "cpu%", "cpus", "why")
    BINDINGS = [
        Binding("t", "program('start')", "Start"),
        Binding("x", "program('stop')", "Stop"),
        Binding("r", "program('restart')", "Restart"),
    ]

    def __init__(self, title: str, **kw: Any) -> None:
        super().__init__(title, **kw)
        self.cursor_type = "row"
        self.names: list[str] = []

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        rows = []
        self.names = []
        for p in src.processes():
            self.names.append(p["name"])
            if p["fresh"]:
                health = Text("OK", style="bold green")
            elif p["state"] == "ABSENT":
                health = Text("DOWN", style="bold red")  # never started (no status block)
            else:
                health = Text("STALE", style="bold white on red")
            cpu = "-" if p["cpu_pct"] is None else f"{p['cpu_pct']:.0f}"
            rows.append((p["name"], p["supervisor"], health, p["state"], age(p["age_s"]), age(p["uptime_s"]),
                         str(p["pid"] or "-"), cpu, p["affinity"] or "-", p["why"]))
        self.set_rows(rows)

    def selected(self) -> str | None:
        if not self.names or self.cursor_row < 0:
            return None
        return self.names[min(self.cursor_row, len(self.names) - 1)]

    def action_program(self, action: str) -> None:
        name = self.selected()
        if name is not None:
            self.app.program_action(action, name)  # type: ignore[attr-defined]


LEVELS = {M.ALERT_INFO: ("info", ""), M.ALERT_WARN: ("warn", "yellow"), M.ALERT_CRITICAL: ("CRIT", "bold red")}


class AlertsPanel(_Table):
    """Recent alerts of every producer (``alerts.*`` rings as an observer), newest first."""

    COLUMNS = ("time", "from", "level", "symbol", "alert", "value")

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        rows = []
        for proc, a in src.alerts(50):
            name, style = LEVELS.get(int(a["level"]), (str(int(a["level"])), ""))
            rows.append((hms(int(a["ts"])), proc, Text(name, style=style), src.symbol_name(int(a["symbol_id"])),
                         bytes(a["text"]).rstrip(b"\0").decode(errors="replace"), f"{float(a['value']):g}"))
        self.border_title = f"alerts ({len(rows)})"
        self.set_rows(rows)


__all__ = ["BookLadder", "TradesTape", "OrdersPanel", "PositionsPanel", "RiskPanel", "StrategiesPanel",
           "LatencyPanel", "ProcessesPanel", "AlertsPanel", "int_to_decimal"]
