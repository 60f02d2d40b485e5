"""The summary of a replay (``b25 replay --json`` prints it) and its report folder.

Folder (default ``reports/replay-<UTC timestamp>/``, git-ignored)::

    summary.json          the summary below
    execution.journal     execution's journal as it was at the end of the replay (msgpack frames)
    journal.jsonl         the same records as JSON lines (one per record, field names kept)
    session.json          what ``b25 report --run DIR`` needs beside the journal (symbols, instruments,
                          strategy names, capital, the recorded book's final mid as the mark)
    report.json           ``b25 report --json`` of the replay; report.html the same as one page
    equity.png, drawdown.png, daily_pnl.png, position.png, latency.png: the report's plots
    stages.png            per-stage latency histograms from the processes' shm histograms
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import msgspec

from procs.tools.replay.run import Result
from procs.tools.replay.summary import STAGES, journal_sha256, latency_summary, parse_journal, summarize
from procs.tools.report.metrics import Session, build_report

# the fields that must be identical on every lockstep replay of the same inputs (golden files)
DETERMINISTIC = ("data", "strategy", "params", "mode", "latency", "limit_events", "symbols", "events", "md_messages",
                 "orders", "orders_sent", "fills", "events_by_kind", "fees", "volume", "realized_pnl",
                 "unrealized_pnl", "net_pnl", "max_drawdown", "position", "journal_records", "journal_sha256")


def build_summary(res: Result) -> tuple[dict[str, Any], dict]:
    """(summary, plot series) of a replay result."""
    opts = res.options
    symbols = list(res.books)
    records = parse_journal(res.journal)
    pnl, series = summarize(records, symbols, res.instruments, res.books)
    events = int(res.sim_stats.get("replay", {}).get("sent", res.frames))
    summary: dict[str, Any] = {
        "data": [Path(f).name for f in opts.data],
        "strategy": opts.strategy,
        "params": opts.params,
        "mode": opts.mode,
        "speed": opts.speed if opts.mode == "speed" else (0.0 if opts.mode == "max" else None),
        "limit_events": opts.limit_events,
        "latency": res.sim_stats.get("replay", {}).get("latency"),
        "symbols": symbols,
        "events": events,
        "md_messages": int(res.counters.get("market_data", {}).get("messages", 0)),
        "wall_s": round(res.wall_s, 3),
        "events_per_s": round(events / res.wall_s, 1) if res.wall_s > 0 else 0.0,
        **pnl,
        "latency_us": latency_summary(res.latency, res.hists),
        # host-time effects worth seeing next to events_per_s (the client-side rate limiter runs on
        # host time: a replay faster than the recording may be throttled; it never changes the journal)
        "execution": {k: int(res.counters.get("execution", {}).get(k, 0))
                      for k in ("orders_sent", "cancels_sent", "denied", "rejected", "throttled", "rate_limited")},
        "journal_records": len(records),
        "journal_sha256": journal_sha256(records),
        "lockstep": res.lockstep,
        "exit_codes": res.exit_codes,
        "instance": res.instance,
    }
    return summary, series


def replay_session(res: Result) -> Session:
    """The report's session facts of a replay: marks are the recorded book's final mid."""
    from decimal import Decimal

    from procs.strategy.config import strategy_number
    from procs.tools.replay.run import _base_config

    marks = {}
    for s, (bid, ask) in res.books.items():
        if bid and ask and s in res.instruments:
            marks[s] = (Decimal(bid + ask) / 2).scaleb(-int(res.instruments[s]["price_scale"]))
    capital = Decimal(str(_base_config(res.options.config).get("risk", {}).get("capital", "0")))
    return Session(list(res.books), res.instruments, {strategy_number(res.options.strategy_id): res.options.strategy_id},
                   capital, marks, "recorded book mid", "backtest" if res.options.mode == "backtest" else "replay")


def replay_report(res: Result) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``b25 report`` of the replay's journal, its plot series)."""
    series: dict[str, Any] = {}
    rep = build_report(parse_journal(res.journal), replay_session(res), series=series)
    return rep, series


def deterministic_part(summary: dict) -> dict:
    return {k: summary[k] for k in DETERMINISTIC if k in summary}


def default_report_dir() -> Path:
    return Path("reports") / f"replay-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"


def write_report(folder: str | Path, res: Result, summary: dict) -> Path:
    from procs.tools.report.render import figures, html_page, save_pngs

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "execution.journal").write_bytes(res.journal)
    with open(out / "journal.jsonl", "w") as f:
        for r in parse_journal(res.journal):
            f.write(json.dumps(msgspec.structs.asdict(r)) + "\n")
    (out / "session.json").write_text(json.dumps(replay_session(res).to_json(), indent=1) + "\n")
    rep, rep_series = replay_report(res)
    rep["journal"] = str(out / "execution.journal")
    (out / "report.json").write_text(json.dumps(rep) + "\n")
    tool = "backtest" if summary["mode"] == "backtest" else "replay"
    title = f"b25 {tool}: {', '.join(summary['data'])} with {summary['strategy']}"
    (out / "report.html").write_text(html_page(rep, figures(rep, rep_series), title))
    summary = dict(summary)
    # a backtest's processes keep no latency histograms (nothing measured: simulated time only)
    stages = write_stage_plot(out, res.hists) if any(any(map(sum, h.values())) for h in res.hists.values()) else []
    summary["plots"] = save_pngs(figures(rep, rep_series), out) + stages
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return out


def write_stage_plot(out: Path, hists: dict[str, dict[str, list[int]]]) -> list[str]:
    """stages.png: the per-stage latency histograms from the processes' shm histograms."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from shm.counters import N_BUCKETS, bucket_upper_ns

    fig, ax = plt.subplots(figsize=(9, 4))
    edges = [bucket_upper_ns(i) / 1000 for i in range(N_BUCKETS)]
    used = [i for (proc, h) in STAGES for i, n in enumerate(hists.get(proc, {}).get(h) or ()) if n]
    for (proc, h), stage in STAGES.items():
        counts = hists.get(proc, {}).get(h)
        if counts and sum(counts):
            total = sum(counts)  # shares, so a stage with few samples is as visible as market data
            ax.step(edges, [c / total for c in counts], where="pre", label=f"{stage} (n={total})")
    if used:
        ax.set_xlim(edges[max(0, min(used) - 2)], edges[min(N_BUCKETS - 1, max(used) + 2)])
    ax.set_xscale("log")
    ax.set_xlabel("latency (us, bucket upper edge)")
    ax.set_ylabel("share of the stage's samples")
    ax.set_title("per-stage latency (shm histograms)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(out / "stages.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return ["stages.png"]
