"""``b25 replay``: a strategy on recorded data through the real processes, with a report.

    b25 replay --data FILE... --strategy MODULE:CLASS [--config F] [--params JSON]
               [--lockstep | --speed X | --max] [--latency MODEL] [--limit-events N] [--json] [--report DIR]

Exit status: 0 done, 1 the replay failed (a process died, a timeout), 2 bad arguments,
130 interrupted (Ctrl-C / SIGTERM; every process and segment is removed all the same).
"""

from __future__ import annotations

import argparse
import json
import sys

from procs.tools.replay.run import ReplayOptions, progress_bar, replay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="recordings, played in order")
    parser.add_argument("--strategy", required=True, metavar="MODULE:CLASS",
                        help="e.g. strategies.market_maker:MarketMaker")
    parser.add_argument("--config", default=None,
                        help="base TOML (default: the repo's b25.toml); its entry of this class gives the params")
    parser.add_argument("--params", default=None, metavar="JSON", help="strategy params (over --config's)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--lockstep", action="store_true", help="deterministic: one event at a time (default)")
    mode.add_argument("--speed", type=float, default=None, metavar="X", help="free-running at recorded pace times X")
    mode.add_argument("--max", action="store_true", help="free-running, as fast as the pipeline reads")
    parser.add_argument("--latency", default="default", metavar="MODEL",
                        help="lockstep's latency model: default (the recording's feed latency, 4 ms lognormal "
                             "order legs), 'constant 0' (none), 'constant 2ms', a model file (b25 latency fit), "
                             "or 'feed=recorded;entry=lognormal 4ms 0.56;response=constant 3ms'")
    parser.add_argument("--trace", default=None, metavar="FILE",
                        help="free-running: measure the session's feed/entry/response latencies into FILE "
                             "(b25 latency fit turns it into a model)")
    parser.add_argument("--limit-events", type=int, default=0, metavar="N", help="only the first N recorded frames")
    parser.add_argument("--symbols", default=None, help="comma-separated (default: the recording's)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (no progress bar)")
    parser.add_argument("--report", default=None, metavar="DIR",
                        help="report folder (default: reports/replay-<UTC timestamp>/)")
    parser.add_argument("--no-report", action="store_true", help="write no report folder")
    parser.add_argument("--keep-run-dir", default=None, metavar="DIR",
                        help="put the stack's run dir (config, logs, journal) here and keep it")


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    params = json.loads(args.params) if args.params else {}
    if not isinstance(params, dict):
        raise ValueError(f"--params must be a JSON object: params={args.params}")
    if args.speed is not None and args.speed <= 0:
        raise ValueError(f"--speed must be > 0 (use --max for as fast as possible): speed={args.speed}")
    mode = "max" if args.max else "speed" if args.speed is not None else "lockstep"
    return ReplayOptions(
        data=list(args.data), strategy=args.strategy, mode=mode, speed=args.speed or 1.0, params=params,
        config=args.config, limit_events=args.limit_events, latency=args.latency, trace=args.trace,
        symbols=[s.strip().upper() for s in args.symbols.split(",") if s.strip()] if args.symbols else None,
        work_dir=args.keep_run_dir, keep_run_dir=bool(args.keep_run_dir),
        progress=None if args.json or not sys.stderr.isatty() else progress_bar(sys.stderr),
    )


def print_summary(s: dict) -> None:
    tool = "backtest" if s["mode"] == "backtest" else "replay"
    print(f"{tool} {' '.join(s['data'])} with {s['strategy']}" + ("" if tool == "backtest" else f" ({s['mode']})"))
    if s.get("latency"):
        lat = s["latency"]
        print(f"  latency {lat['name']}: " + "  ".join(f"{k} {lat[k]['model']}" for k in ("feed", "entry", "response")))
    print(f"  events {s['events']}  ({s['events_per_s']:,.0f}/s over {s['wall_s']} s)  md messages {s['md_messages']}")
    print(f"  orders {s['orders']}  fills {s['fills']}  fees {s['fees']:.4f}  volume {s['volume']:.2f}")
    print(f"  P&L realized {s['realized_pnl']:.4f}  unrealized {s['unrealized_pnl']:.4f}  net {s['net_pnl']:.4f}"
          f"  max drawdown {s['max_drawdown']:.4f}  position {s['position']}")
    for stage, row in s["latency_us"].items():
        if row.get("count"):
            print(f"  {stage:<26} p50 {row['p50_us']:>9.1f} us  p99 {row['p99_us']:>9.1f} us  n={row['count']}")
    print(f"  journal {s['journal_records']} records sha256 {s['journal_sha256']}")


def run(args: argparse.Namespace) -> int:
    from procs.tools.replay.report import build_summary, default_report_dir, replay_report, write_report

    try:
        opts = options_from_args(args)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"b25 replay: {exc}", file=sys.stderr)
        return 2
    try:
        res = replay(opts)
    except KeyboardInterrupt:
        print("b25 replay: interrupted; every process stopped", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"b25 replay: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a process died, a timeout: say what, exit 1
        print(f"b25 replay: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    summary, _ = build_summary(res)
    if not args.no_report:
        folder = write_report(args.report or default_report_dir(), res, summary)
        summary["report_dir"] = str(folder)
    rep, _ = replay_report(res)  # what `b25 report --run <report dir>` prints
    print_result(summary, rep, args.json)
    return 0


def print_result(summary: dict, rep: dict, as_json: bool) -> None:
    """A run's summary and report (replay and backtest print the same), as JSON or as text."""
    from procs.tools.report.render import text

    if as_json:
        print(json.dumps(summary | {"report": rep}))
        return
    print_summary(summary)
    print(text(rep))
    if "report_dir" in summary:
        print(f"report {summary['report_dir']} (b25 report --run {summary['report_dir']} --html DIR)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="b25 replay", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
