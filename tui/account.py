"""The portfolio tab's account panel: risk's margin view of the account (``risk.state``, the same
figures as the monitor's GET /api/account): wallet, margin balance and ratio, leverage, available
balance, and per symbol the position, where its mark comes from, leverage and the distance to
its liquidation price; crisis mode when it holds."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from procs.monitor.account import account_view

from .panels import ASK, BID, Panel
from .source import ShmSource

COLUMNS = (("symbol", 8), ("position", 9), ("mark", 10), ("src", 4), ("lev", 6), ("liq. price", 10), ("dist %", 7))
SOURCE = {"mark_price": "mark", "mid": "mid", "unknown": "-"}


def _money(text: str | None) -> str:
    return "-" if text is None else f"{float(text):,.2f}"


def _ratio_style(ratio: float | None, limit: float | None) -> str:
    if ratio is None:
        return "dim"
    if limit and ratio > limit:
        return "bold white on red"
    return ASK if ratio > 0.5 else BID


class AccountPanel(Static, Panel):
    """One block of text, redrawn only when the figures changed."""

    def __init__(self, **kw: Any) -> None:
        super().__init__("account: risk.state not published (risk not running?)", **kw)
        self.border_title = "account (margin)"
        self._last: dict[str, Any] | None = None

    def refresh_from(self, src: ShmSource, symbol: str) -> None:
        r = src.risk()
        if r is None:
            return
        a = account_view(r, src.symbols, src.instruments)
        a.pop("updated_age_s", None)
        if a == self._last:
            return
        self._last = a
        ratio, limit = a["margin_ratio"], a["max_margin_ratio"]
        out = Text(no_wrap=True, overflow="crop")
        out.append("wallet ", "dim").append(_money(a["wallet_balance"]))
        out.append("  margin bal. ", "dim").append(_money(a["margin_balance"]))
        out.append("  available ", "dim").append(_money(a["available_balance"]))
        out.append("\nmargin ratio ", "dim")
        out.append("unknown" if ratio is None else f"{ratio * 100:.2f}%", _ratio_style(ratio, limit))
        out.append(f" / {limit * 100:g}%" if limit else " / no limit", "dim")
        out.append("  maint. ", "dim").append(_money(a["maint_margin"]))
        out.append("  leverage ", "dim").append(f"{a['leverage']:.2f}x")
        crisis = a["crisis"]
        if crisis["entered"] != "-":
            out.append("\nCRISIS MODE: " + crisis["entered"], "bold white on red")
            out.append("  (an operator clears it: trading state ACTIVE)", "dim")
        elif crisis["triggers"] != "-":
            out.append("\ncrisis triggers true: " + crisis["triggers"], ASK)
        out.append("\n" + " ".join(name.rjust(w) if i else name.ljust(w) for i, (name, w) in enumerate(COLUMNS)),
                   "bold")
        for sym, p in a["positions"].items():
            lev, mx = p["leverage"], p["max_leverage"]
            cells = [(sym, ""), (p["position"], ""), (p["mark_price"] or "-", ""),
                     (SOURCE.get(p["mark_source"], "?"), "" if p["mark_source"] == "mark_price" else ASK),
                     (f"{lev:.2f}x" if lev else "-", "bold white on red" if mx and lev > mx else ""),
                     (p["liquidation_price"] or "-", ""),
                     ("-" if p["distance_pct"] is None else f"{p['distance_pct']:.1f}",
                      ASK if p["distance_pct"] is not None and p["distance_pct"] < 10 else "")]
            out.append("\n")
            for i, ((_name, w), (txt, style)) in enumerate(zip(COLUMNS, cells, strict=True)):
                txt = str(txt)[:w]
                out.append((txt.ljust(w) if i == 0 else txt.rjust(w)) + (" " if i < len(COLUMNS) - 1 else ""), style)
        self.update(out)
