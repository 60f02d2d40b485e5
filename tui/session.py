"""The portfolio tab's session view: risk's P&L history (procs/risk/history.py) as a chart, and
the latest sample per strategy and symbol (P&L, position, open orders).

The files are read at most every ``HistoryView.every_s`` (the app redraws every 100 ms; the
history moves once a second), only when a file changed, and over the last ``hours``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual_plotext import PlotextPlot

from .panels import ASK, BID, Panel, TextTable
from .source import ShmSource

ACCOUNT = "*"  # procs.risk.history.ACCOUNT (not imported: the TUI must start without pyarrow loaded)


class HistoryView:
    """The last ``hours`` of the instance's P&L history, re-read when a file changed."""

    def __init__(self, folder: Path | None, hours: float = 24.0, every_s: float = 2.0) -> None:
        self.folder = folder
        self.hours = hours
        self.every_s = every_s
        self.rows: list[dict[str, Any]] = []
        self.error = ""
        self._at = -1e9
        self._stamp: tuple = ()
        self.version = 0  # bumped when the rows changed

    def poll(self) -> None:
        now = time.monotonic()
        if self.folder is None or now - self._at < self.every_s:
            return
        self._at = now
        files = sorted(self.folder.glob("pnl-*.parquet")) if self.folder.is_dir() else []
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in files if p.exists())
        if stamp == self._stamp:
            return
        self._stamp = stamp
        from procs.risk.history import read_history

        start = int((time.time() - self.hours * 3600) * 1000)
        try:
            rows = read_history(self.folder, start).to_pylist()
        except (OSError, ValueError) as exc:
            self.error = str(exc)
            return
        for r in rows:
            r["ts"] = int(r["ts"].timestamp() * 1000)
        self.rows, self.error = rows, ""
        self.version += 1

    def latest(self) -> list[dict[str, Any]]:
        """The rows of the newest sample."""
        if not self.rows:
            return []
        t = self.rows[-1]["ts"]
        return [r for r in self.rows if r["ts"] == t]


def _history(src: ShmSource) -> HistoryView:
    view = getattr(src, "history", None)
    if view is None:
        view = src.history = HistoryView(None)  # type: ignore[attr-defined]
    return view


class SessionChart(PlotextPlot, Panel):
    """Net P&L of the account and of each strategy over the session (risk's history, 1 s samples)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.border_title = "session P&L (risk history)"
        self._drawn = -1

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        hist = _history(src)
        hist.poll()
        if hist.version == self._drawn:
            return
        self._drawn = hist.version
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.date_form("H:M:S")
        by: dict[str, tuple[list[str], list[float]]] = {}
        for r in hist.rows:
            if r["symbol"] != ACCOUNT and r["strategy"] != ACCOUNT:
                key = r["strategy"]
            elif r["strategy"] == ACCOUNT:
                key = "account"
            else:
                continue
            xs, ys = by.setdefault(key, ([], []))
            stamp = dt.datetime.fromtimestamp(r["ts"] / 1000, dt.UTC).strftime("%H:%M:%S")
            if key != "account" and xs and xs[-1] == stamp:
                ys[-1] += r["net_pnl"]  # a strategy's symbols summed per sample
                continue
            xs.append(stamp)
            ys.append(r["net_pnl"])
        for key, (xs, ys) in sorted(by.items(), key=lambda kv: kv[0] != "account"):
            if len(xs) >= 1:
                plt.plot(xs, ys, label=key, marker="braille")
        if not by:
            plt.title("no P&L history yet" if not hist.error else f"history unreadable: {hist.error[:60]}")
        else:
            span = f"{by[next(iter(by))][0][0]}..{by[next(iter(by))][0][-1]} UTC"
            plt.title(f"net P&L (quote), {span}")
        self.refresh()


class StrategyPnlPanel(TextTable):
    """The newest history sample: each strategy and symbol's P&L, position and open orders."""

    COLUMNS = (("strategy", 9, "left"), ("symbol", 8, "left"), ("net P&L", 9, "right"), ("realized", 9, "right"),
               ("unreal.", 8, "right"), ("fees", 7, "right"), ("position", 8, "right"), ("open", 4, "right"))

    def __init__(self, title: str = "strategies (risk history, last sample)", **kw: Any) -> None:
        super().__init__(title, **kw)

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        hist = _history(src)
        hist.poll()
        rows = []
        for r in sorted(hist.latest(), key=lambda r: (r["strategy"] == ACCOUNT, r["strategy"], r["symbol"])):
            net = r["net_pnl"]
            name = "account" if r["strategy"] == ACCOUNT else r["strategy"]
            rows.append((name, "all" if r["symbol"] == ACCOUNT else r["symbol"],
                         Text(f"{net:,.2f}", style=BID if net >= 0 else ASK), f"{r['realized']:,.2f}",
                         f"{r['unrealized']:,.2f}", f"{r['fees']:,.4f}",
                         "" if r["position"] is None else f"{r['position']:g}", str(r["open_orders"])))
        self.set_rows(rows)
