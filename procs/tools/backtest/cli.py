"""``b25 backtest``: a strategy on recordings in one process, the same code as live, with a report.

    b25 backtest --data FILE... --strategy MODULE:CLASS [--config F] [--params JSON] [--latency MODEL]
                 [--limit-events N] [--sweep 'param=v1,v2,...']... [--workers N] [--json] [--report DIR]

Several files play as one stream, in the order given. ``--sweep`` runs every combination of the
listed parameter values (over ``--params``), in parallel worker processes (one per core by
default), and prints one row per point; each point's report goes under ``--report``.

Exit status: 0 done, 1 the backtest failed, 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from procs.tools.backtest.run import BacktestOptions, backtest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="recordings, played in order")
    parser.add_argument("--strategy", required=True, metavar="MODULE:CLASS",
                        help="e.g. strategies.market_maker:MarketMaker")
    parser.add_argument("--config", default=None,
                        help="base TOML (default: the repo's b25.toml); its entry of this class gives the params")
    parser.add_argument("--params", default=None, metavar="JSON", help="strategy params (over --config's)")
    parser.add_argument("--latency", default="default", metavar="MODEL",
                        help="the latency model, as b25 replay's (default, 'constant 0', a model file, ...)")
    parser.add_argument("--limit-events", type=int, default=0, metavar="N", help="only the first N recorded frames")
    parser.add_argument("--sweep", action="append", default=[], metavar="PARAM=V1,V2,...",
                        help="run each value of a strategy param (repeat for a grid); values are JSON or text")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="sweep: worker processes (default: one per core)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (no progress bar)")
    parser.add_argument("--report", default=None, metavar="DIR",
                        help="report folder (default: reports/backtest-<UTC timestamp>/)")
    parser.add_argument("--no-report", action="store_true", help="write no report folder")
    parser.add_argument("--no-cache", action="store_true",
                        help="decode the recordings again instead of reading run/cache/backtest/")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def sweep_points(specs: list[str]) -> list[dict[str, Any]]:
    """``["a=1,2", "b=x,y"]`` -> every combination, as params dicts (in the order given)."""
    if not specs:
        return []
    axes = []
    for spec in specs:
        name, eq, values = spec.partition("=")
        name = name.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not eq or not name or not items:
            raise ValueError(f"--sweep must be PARAM=V1,V2,...: sweep={spec!r}")
        axes.append([(name, _value(v)) for v in items])
    return [dict(combo) for combo in itertools.product(*axes)]


def options_from_args(args: argparse.Namespace) -> BacktestOptions:
    from procs.tools.replay.run import progress_bar

    params = json.loads(args.params) if args.params else {}
    if not isinstance(params, dict):
        raise ValueError(f"--params must be a JSON object: params={args.params}")
    if args.limit_events < 0:
        raise ValueError(f"--limit-events must be >= 0: limit_events={args.limit_events}")
    return BacktestOptions(data=list(args.data), strategy=args.strategy, params=params, config=args.config,
                           latency=args.latency, limit_events=args.limit_events, use_cache=not args.no_cache,
                           progress=None if args.json or args.sweep or not sys.stderr.isatty()
                           else progress_bar(sys.stderr))


def default_report_dir() -> Path:
    return Path("reports") / f"backtest-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"


def run_one(opts: BacktestOptions, report_dir: str | None) -> tuple[dict, dict]:
    """One backtest -> (its summary, ``b25 report`` of its journal); the report folder if asked."""
    from procs.tools.replay.report import build_summary, replay_report, write_report

    res = backtest(opts)
    summary, _ = build_summary(res)
    if report_dir is not None:
        summary["report_dir"] = str(write_report(report_dir, res, summary))
    rep, _ = replay_report(res)
    return summary, rep


def _point(args: tuple[BacktestOptions, str | None]) -> tuple[dict, dict]:
    return run_one(*args)


def run_sweep(base: BacktestOptions, points: list[dict[str, Any]], report_root: Path | None,
              workers: int) -> list[dict]:
    """Every point in worker processes; summaries in the points' order."""
    jobs = []
    for k, p in enumerate(points):
        opts = BacktestOptions(**{**base.__dict__, "params": {**base.params, **p}, "progress": None})
        jobs.append((opts, None if report_root is None else str(report_root / f"point-{k:03d}")))
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for (summary, _rep), p in zip(pool.map(_point, jobs), points, strict=True):
            rows.append(summary | {"point": p})
    return rows


def print_sweep(rows: list[dict]) -> None:
    names = list(rows[0]["point"]) if rows else []
    head = [*names, "orders", "fills", "fees", "realized", "net", "max_dd", "events/s"]
    table = [[json.dumps(r["point"][n]) for n in names]
             + [str(r["orders"]), str(r["fills"]), f"{r['fees']:.4f}", f"{r['realized_pnl']:.4f}",
                f"{r['net_pnl']:.4f}", f"{r['max_drawdown']:.4f}", f"{r['events_per_s']:,.0f}"] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for t in table:
        print("  ".join(c.rjust(w) for c, w in zip(t, widths, strict=True)))


def run(args: argparse.Namespace) -> int:
    from procs.tools.replay.cli import print_result

    try:
        opts = options_from_args(args)
        points = sweep_points(args.sweep)
        from procs.exchange_sim.latency import LatencyModel

        LatencyModel.parse(opts.latency)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"b25 backtest: {exc}", file=sys.stderr)
        return 2
    report_dir = None if args.no_report else Path(args.report) if args.report else default_report_dir()
    try:
        if points:
            rows = run_sweep(opts, points, report_dir, args.workers)
        else:
            summary, rep = run_one(opts, None if report_dir is None else str(report_dir))
    except KeyboardInterrupt:
        print("b25 backtest: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"b25 backtest: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a strategy that cannot load, a bug: say what, exit 1
        print(f"b25 backtest: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if points:
        if args.json:
            print(json.dumps(rows))
        else:
            print_sweep(rows)
            if report_dir is not None:
                print(f"reports {report_dir}/point-NNN (b25 report --run DIR)")
        return 0
    print_result(summary, rep, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="b25 backtest", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
