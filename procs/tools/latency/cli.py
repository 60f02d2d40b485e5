"""``b25 latency``: measure a session's latencies and fit the model lockstep replay and backtest use.

    b25 latency fit --trace FILE [FILE...] [--out model.toml] [--model empirical|lognormal] [--json]
    b25 latency record --seconds N --out FILE [--instance NAME] [--config F]

A trace comes from a free-running session: ``b25 replay --speed 1 --trace FILE`` (or ``--max``),
or ``b25 latency record`` next to a running ``make run``. Exit status: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from procs.tools.latency.fit import fit
from procs.tools.latency.trace import read_trace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="latency_cmd", required=True)
    f = sub.add_parser("fit", help="fit a latency model to session traces")
    f.add_argument("--trace", nargs="+", required=True, metavar="FILE", help="traces (their samples are pooled)")
    f.add_argument("--out", default="latency-model.toml", help="the model file to write (default: %(default)s)")
    f.add_argument("--model", default="empirical", choices=("empirical", "lognormal"))
    f.add_argument("--seed", type=int, default=1, help="the seed the model's draws use")
    f.add_argument("--json", action="store_true", help="print what was fitted as JSON")
    r = sub.add_parser("record", help="trace a running session's latencies (make run) for N seconds")
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--out", required=True, help="the trace file to write")
    r.add_argument("--instance", default=None, help="shm instance (default: the deployment's)")
    r.add_argument("--config", default=None, help="the deployment file (default: b25.toml)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.latency_cmd == "fit":
            return _fit(args)
        return _record(args)
    except ValueError as exc:
        print(f"b25 latency: {exc}", file=sys.stderr)
        return 2


def _fit(args: argparse.Namespace) -> int:
    traces = [read_trace(p) for p in args.trace]
    out = fit(traces, args.out, args.model, args.seed)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"wrote {out['model_file']}")
    for kind, row in out["latencies"].items():
        if row["samples"]:
            print(f"  {kind:<9} {row['model']:<40} n={row['samples']:<7} p50 {row['p50_us']:>9.1f} us"
                  f"  p99 {row['p99_us']:>9.1f} us")
        else:
            print(f"  {kind:<9} {row['model']:<40} ({row['note']})")
    return 0


def _record(args: argparse.Namespace) -> int:
    from procs.core import deploy
    from procs.core.config import load_section
    from procs.exchange_sim.config import SimConfig
    from procs.tools.latency.trace import record
    from shm.segment import DEFAULT_INSTANCE

    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0: seconds={args.seconds}")
    config = args.config or "b25.toml"
    sim = load_section(config, "sim", SimConfig)
    trace = record(args.instance or DEFAULT_INSTANCE, f"http://{sim.host}:{sim.rest_port}", deploy.symbols(config),
                   args.seconds, args.out)
    counts = trace["join"]
    print(f"wrote {args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in trace["samples_ns"].items())
          + f" samples (frames joined {counts['frames_joined']}/{counts['frames']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="b25 latency", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
