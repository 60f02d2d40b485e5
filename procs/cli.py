"""The ``b25`` command: one entry point, subcommands per area (shm, sim, book, bench, ...)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable

from shm.segment import DEFAULT_INSTANCE


def _shm_ls(args: argparse.Namespace) -> int:
    from shm.inspect import ls

    rows = ls(args.instance)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no b25 segments{' for instance ' + args.instance if args.instance else ''}")
        return 0
    for r in rows:
        alive = "alive" if r.get("producer_alive") else "dead"
        line = f"{r['segment']:<40} {r['kind']:<8} pid={r.get('producer_pid')}({alive})"
        if r["kind"] == "ring":
            line += f" {r['policy']} cap={r['capacity']} cursor={r['cursor']} full_waits={r['full_waits']}"
            for c in r["consumers"]:
                line += f"\n    consumer[{c['slot']}] cursor={c['cursor']} lag={c['lag']} lost={c['lost']} " \
                        f"pid={c['pid']}({'alive' if c['alive'] else 'dead'})"
        elif r["kind"] == "state":
            line += f" version={r['version']}"
        print(line)
    return 0


def _shm_clean(args: argparse.Namespace) -> int:
    from shm.inspect import clean

    removed, refused = clean(args.instance, args.force)
    if args.instance and not refused:
        from procs.core.control import unlink_queues
        from procs.core.registry import PROCESSES

        removed += unlink_queues(args.instance, PROCESSES)
    for r in removed:
        print(f"removed {r}")
    for r in refused:
        print(f"refused {r}: producer alive (use --force)", file=sys.stderr)
    return 1 if refused else 0


def _add_shm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shm", help="list or remove shared-memory segments")
    s = p.add_subparsers(dest="shm_cmd", required=True)
    ls = s.add_parser("ls", help="segments with producer pid, cursor and each consumer's lag")
    ls.add_argument("--instance", default=None, help="only this instance (default: all)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_shm_ls)
    cl = s.add_parser("clean", help="remove segments (refuses while their producer is alive)")
    cl.add_argument("--instance", default=None)
    cl.add_argument("--force", action="store_true", help="remove even when the producer is alive")
    cl.set_defaults(func=_shm_clean)


def _delegate(module: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    mod = importlib.import_module(module)
    return mod.add_arguments, mod.run


SUBCOMMANDS = {
    # name: (module with add_arguments/run, help)
    "sim": ("procs.exchange_sim.__main__", "run the embedded exchange simulator in the foreground"),
    "book": ("procs.book.cli", "rebuild order books from recordings, one JSON line per depth event"),
    "bench": ("procs.tools.bench.cli", "benchmarks with the peer baseline beside every figure (JSON)"),
    "affinity": ("procs.tools.affinity.cli", "propose, write or apply a CPU layout for the processes"),
    "tui": ("tui.app", "the operator's screen (Textual) over the instance's shared memory"),
    "web": ("procs.web.__main__", "the TUI in a browser (textual-serve), one TUI process per session"),
    "monitor": ("procs.monitor.__main__", "the monitor in the foreground: /metrics, /health and the ops API"),
    "services": ("procs.tools.services", "the service table: every process, its section, rings and start order"),
    "bars": ("procs.tools.bars", "OHLCV bars (VWAP, trade count, buy/sell volume) from recorded trades"),
    "convert": ("procs.tools.convert", "recordings to Parquet tables (book after each update, trades) for DuckDB/polars"),
    "nats": ("procs.bridge.cli", "what the NATS bridge publishes: tail a subject, replay a JetStream stream"),
    "report": ("procs.tools.report.cli", "what a session did, from its journal: P&L, drawdown, Sharpe, trips, fills, latency"),
    "replay": ("procs.tools.replay.cli", "a strategy on recorded data through the real processes (lockstep: deterministic)"),
    "backtest": ("procs.tools.backtest.cli", "a strategy on recordings in one process, the same code as live (fast; = lockstep)"),
    "latency": ("procs.tools.latency.cli", "measure a session's feed/entry/response latencies and fit a model"),
    "config": ("procs.tools.config_cli", "validate the config; its versions: history, show, diff, rollback"),
    "chaos": ("procs.tools.reliability.chaos", "SIGKILL/SIGSTOP campaign on a supervised stack, then the consistency checks"),
    "soak": ("procs.tools.reliability.soak", "the stack at a steady market rate for minutes: RSS, fds, CPU, lag, drops, p99 drift"),
    "fuzz": ("procs.tools.reliability.fuzz", "generated inputs for every input b25 reads from outside (hypothesis; dev extras)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="b25", description="b25 high-frequency trading system")
    parser.add_argument("--version", action="version", version="b25 0.1.0")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_shm(sub)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        try:
            add, run = _delegate(module)
        except ImportError as exc:
            p.set_defaults(func=lambda _a, m=module, e=exc: _missing(m, e))
            continue
        add(p)
        p.set_defaults(func=run)
    return parser


def _missing(module: str, exc: Exception) -> int:
    print(f"b25: this subcommand is not available: module={module} reason={exc}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main", "DEFAULT_INSTANCE"]
