"""``b25 bench <name> [--json]``: benchmarks, each printing the peer baseline beside b25's figure."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

BENCHES = {
    "ipc": ("procs.tools.bench.ipc", "rings vs faster-fifo, multiprocessing.Queue and os.pipe"),
    "book": ("procs.tools.bench.book", "order-book path per depth message vs naive and nautilus_trader"),
    "exec": ("procs.tools.bench.exec", "order path: intent-to-wire, wire-to-ack, orders/s without 429 vs a bare WS client"),
    "e2e": ("procs.tools.bench.e2e", "tick-to-order per stage through the real processes on exchange_sim"),
    "bridge": ("procs.tools.bench.bridge", "NATS bridge: msgs/s at 50k events/s, ring->subscriber lag, e2e with it on/off, remote intent->wire"),
    "dashboard": ("procs.tools.bench.dashboard", "the monitor's /ws feed under N dashboard clients, with tick-to-order beside it"),
    "backtest": ("procs.tools.bench.backtest", "events/s of b25 backtest (do-nothing, market maker) beside lockstep and hftbacktest"),
    "replay": ("procs.tools.bench.replay", "events/s of a recording through the full pipeline, free-running and lockstep, vs hftbacktest"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHES), help="which benchmark")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--quick", action="store_true", help="fewer messages (a smoke run, not a figure)")
    parser.add_argument("--clients", type=int, default=None, help="dashboard: WebSocket clients (100)")
    parser.add_argument("--seconds", type=float, default=None, help="dashboard: seconds per phase (60)")


def run(args: argparse.Namespace) -> int:
    module, _ = BENCHES[args.name]
    mod = importlib.import_module(module)
    names = mod.run.__code__.co_varnames
    kwargs = {k: v for k, v in (("quick", args.quick), ("clients", args.clients), ("seconds", args.seconds))
              if k in names and v is not None}
    result = mod.run(**kwargs)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
