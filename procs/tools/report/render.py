"""The report as text (``b25 report``, the end of ``b25 replay``), as plots, and as one HTML page.

The page is self-contained: its plots are PNGs inlined as ``data:`` URIs and its style is inline,
so it opens from a mail attachment or an archive with no network and no other file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from pathlib import Path
from typing import Any

ROW_FIELDS = (  # (heading, field, format) of the text and HTML tables
    ("net P&L", "net_pnl", "{:.4f}"), ("realized", "realized_pnl", "{:.4f}"), ("fees", "fees", "{:.4f}"),
    ("unrealized", "unrealized_pnl", "{:.4f}"), ("max DD", "max_drawdown", "{:.4f}"),
    ("max DD %", "max_drawdown_pct", "{:.4f}"), ("Sharpe", "sharpe", "{:.2f}"), ("Sortino", "sortino", "{:.2f}"),
    ("volume", "volume", "{:.2f}"), ("turnover", "turnover", "{:.4f}"), ("fills", "fills", "{}"),
    ("maker %", "maker_share", "{:.1%}"), ("orders", "orders_sent", "{}"), ("fill ratio", "fill_ratio", "{:.1%}"),
)
TRIP_FIELDS = (("trips", "count", "{}"), ("win rate", "win_rate", "{:.1%}"), ("profit factor", "profit_factor", "{:.2f}"),
               ("avg win", "avg_win", "{:.4f}"), ("avg loss", "avg_loss", "{:.4f}"),
               ("expectancy", "expectancy", "{:.4f}"), ("avg hold s", "avg_holding_s", "{:.1f}"), ("open", "open", "{}"))
ACK_FIELDS = (("acks", "ack_count", "{}"), ("p50 us", "ack_p50", "{:.0f}"), ("p90 us", "ack_p90", "{:.0f}"),
              ("p99 us", "ack_p99", "{:.0f}"), ("max us", "ack_max", "{:.0f}"))


def _trips_and_acks(g: dict[str, Any]) -> dict[str, Any]:
    return {**g["round_trips"], **{f"ack_{k}": v for k, v in g["order_to_ack_us"].items()}}


def _fmt(fmt: str, v: Any) -> str:
    return "-" if v is None else fmt.format(v)


def _rows(rep: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [("total", rep["total"])]
    out += [(f"strategy {k}", v) for k, v in rep["strategies"].items()]
    out += [(f"symbol {k}", v) for k, v in rep["symbols"].items()]
    out += [(f"day {k}", v) for k, v in rep["days"].items()]
    return out


def text(rep: dict[str, Any]) -> str:
    """The report as fixed-width tables."""
    lines = [f"report {rep['from']} .. {rep['to']}  source={rep['source'] or '-'}  capital={rep['capital']:g}  "
             f"marks={rep['marks']} ({rep['mark_source']})"]
    rows = _rows(rep)
    width = max(len(name) for name, _ in rows)

    def table(fields: tuple, pick: Any) -> None:
        cells = [[_fmt(f, pick(g).get(k)) for _, k, f in fields] for _, g in rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _, _) in enumerate(fields)]
        lines.append(" " * width + "  " + "  ".join(h.rjust(w) for (h, _, _), w in zip(fields, widths, strict=True)))
        for (name, _), c in zip(rows, cells, strict=True):
            lines.append(name.ljust(width) + "  " + "  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))

    table(ROW_FIELDS, lambda g: g)
    lines.append("round trips (flat to flat) and order-to-ack latency")
    table(TRIP_FIELDS + ACK_FIELDS, _trips_and_acks)
    t = rep["total"]
    for what in ("rejections", "denials", "cancel_rejections"):
        if t[what]:
            lines.append(f"{what}: " + ", ".join(f"{k} x{n}" for k, n in t[what].items()))
    return "\n".join(lines)


# -- plots ------------------------------------------------------------------------------------
def figures(rep: dict[str, Any], series: dict[str, Any], stage_hists: dict[str, list[int]] | None = None
            ) -> dict[str, Any]:
    """name -> matplotlib Figure: equity, drawdown, daily P&L, position, latency."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    def utc(ts: list[int]) -> list[dt.datetime]:
        return [dt.datetime.fromtimestamp(t / 1e9, dt.UTC) for t in ts]

    figs: dict[str, Any] = {}
    eq = series.get("equity", [])
    fig, ax = plt.subplots(figsize=(9, 3.4))
    if eq:
        ax.step(utc([t for t, _ in eq]), [v for _, v in eq], where="post", label="total", lw=1.6)
    for name, pts in series.get("strategies", {}).items():
        if pts and len(series.get("strategies", {})) > 1:
            ax.step(utc([t for t, _ in pts]), [v for _, v in pts], where="post", label=name, lw=0.9)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title("equity: net P&L (quote) after each fill")
    ax.legend(fontsize=8)
    figs["equity"] = fig

    fig, ax = plt.subplots(figsize=(9, 2.6))
    if eq:
        peak, dd = float("-inf"), []
        for _, v in eq:
            peak = max(peak, v, 0.0)
            dd.append(v - peak)
        ax.fill_between(utc([t for t, _ in eq]), dd, 0, step="post", color="tab:red", alpha=0.4)
    ax.set_title(f"drawdown from the running peak (max {rep['total']['max_drawdown']:.4f})")
    figs["drawdown"] = fig

    fig, ax = plt.subplots(figsize=(9, 2.6))
    days = rep["days"]
    values = [d["net_pnl"] for d in days.values()]
    ax.bar(list(days), values, color=["tab:green" if v >= 0 else "tab:red" for v in values])
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title("net P&L per UTC day")
    figs["daily_pnl"] = fig

    fig, ax = plt.subplots(figsize=(9, 2.6))
    for sym, pts in series.get("position", {}).items():
        ax.step(utc([t for t, _ in pts]), [v for _, v in pts], where="post", label=sym)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title("net position (base quantity) per symbol")
    if series.get("position"):
        ax.legend(fontsize=8)
    figs["position"] = fig

    fig, ax = plt.subplots(figsize=(9, 2.6))
    acks = series.get("acks_us", [])
    if acks:
        import numpy as np

        lo, hi = max(min(acks), 1.0), max(max(acks), 2.0)
        ax.hist(acks, bins=np.geomspace(lo, hi * 1.01, 40), color="tab:blue")
        ax.set_xscale("log")
    ax.set_title(f"order-to-ack latency (us), n={len(acks)}")
    figs["latency"] = fig
    for name in ("equity", "drawdown", "position"):  # time on the x axis
        figs[name].autofmt_xdate()
    for f in figs.values():
        f.tight_layout()
    return figs


def save_pngs(figs: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib.pyplot as plt

    names = []
    for name, f in figs.items():
        f.savefig(folder / f"{name}.png", dpi=100)
        names.append(f"{name}.png")
        plt.close(f)
    return names


def _inline(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1280px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}.wide{overflow-x:auto}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{padding:3px 7px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}tr.total td{font-weight:600}.neg{color:#b00}.pos{color:#070}
img{display:block;max-width:100%;margin:6px 0}.note{color:#666;font-size:12px}code{font-size:12px}"""


def _table(rows: list[tuple[str, dict[str, Any]]], fields: tuple) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in fields) + "</tr>"
    body = []
    for name, g in rows:
        cells = []
        for _, k, f in fields:
            v = g.get(k)
            cls = ' class="neg"' if isinstance(v, float) and v < 0 and k.endswith("pnl") else \
                ' class="pos"' if isinstance(v, float) and v > 0 and k.endswith("pnl") else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(f, v))}</td>")
        tr = ' class="total"' if name == "total" else ""
        body.append(f"<tr{tr}><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    return f"<div class='wide'><table>{head}{''.join(body)}</table></div>"


def html_page(rep: dict[str, Any], figs: dict[str, Any], title: str = "b25 report") -> str:
    """One self-contained page: the plots and the tables."""
    import matplotlib.pyplot as plt

    rows = _rows(rep)
    imgs = {k: _inline(f) for k, f in figs.items()}
    for f in figs.values():
        plt.close(f)
    t = rep["total"]
    counts = "".join(f"<tr><td>{html.escape(what)}</td><td>{html.escape(k)}</td><td>{n}</td></tr>"
                     for what in ("rejections", "denials", "cancel_rejections") for k, n in t[what].items())
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(rep['from'])} .. {html.escape(rep['to'])} (session time, UTC) · source "
        f"{html.escape(rep['source'] or '-')} · capital {rep['capital']:g} · final marks "
        f"{html.escape(json.dumps(rep['marks']))} ({html.escape(rep['mark_source'])})</p>",
        "<h2>P&amp;L, drawdown, risk-adjusted return, activity</h2>", _table(rows, ROW_FIELDS),
        f"<img alt='equity' src='{imgs['equity']}'><img alt='drawdown' src='{imgs['drawdown']}'>",
        f"<img alt='daily P&amp;L' src='{imgs['daily_pnl']}'><img alt='position' src='{imgs['position']}'>",
        "<h2>Round trips (flat to flat) and order-to-ack latency</h2>",
        _table([(n, _trips_and_acks(g)) for n, g in rows], TRIP_FIELDS + ACK_FIELDS),
        f"<img alt='latency' src='{imgs['latency']}'>",
        "<h2>Rejections, denials, cancel rejections</h2>",
        f"<table><tr><th>what</th><th>reason</th><th>count</th></tr>{counts}</table>" if counts
        else "<p>none</p>",
        "<p class='note'>Sharpe = mean(r) / std(r) &middot; &radic;525600 and Sortino = mean(r) / "
        "&radic;mean(min(r,0)&sup2;) &middot; &radic;525600, on per-minute returns r = &Delta;V / (capital + V), "
        "minutes without fills included. Max DD % of capital + the peak. Fill ratio: orders with a fill / "
        "orders sent. All figures: <code>b25 report --json</code>.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_html(rep: dict[str, Any], series: dict[str, Any], folder: Path, title: str = "b25 report") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "report.html"
    out.write_text(html_page(rep, figures(rep, series), title))
    return out
