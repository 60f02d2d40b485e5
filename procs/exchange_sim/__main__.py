"""exchange_sim: the embedded Binance USD-M exchange (market side + trading side).

``python -m procs.exchange_sim [--config F] [--port P] [--ws-port P2] [--replay FILE... --speed X]``
runs it in the foreground, exactly as the supervisord program does; SIGTERM/SIGINT stop it
cleanly with exit status 0. ``b25 sim`` uses ``add_arguments`` and ``run``.
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.core import log, versions
from procs.core.agent import exit_bad_config
from procs.core.async_agent import run_async_process
from procs.exchange_sim.agent import PROC, SimSettings, build_server, start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML file; its [sim] section (and [sim_trading])")
    parser.add_argument("--instance", default=None,
                        help="write a status block (status.exchange_sim) in this shm instance, as supervisord runs it")
    parser.add_argument("--port", type=int, default=None, help="REST port (0 = ephemeral)")
    parser.add_argument("--ws-port", type=int, default=None, help="WebSocket port (0 = ephemeral)")
    parser.add_argument("--host", default=None)
    parser.add_argument("--replay", nargs="+", default=None, metavar="FILE",
                        help="replay these recordings in order instead of generating a market")
    parser.add_argument("--speed", type=float, default=None, help="replay pace multiplier; 0 = as fast as read")
    parser.add_argument("--seed", type=int, default=None, help="generator seed")
    parser.add_argument("--rate", type=float, default=None, help="generator depth events per second")
    parser.add_argument("--symbols", default=None, help="comma-separated generator symbols")
    parser.add_argument("--api-key", action="append", default=[], help="trading account key (repeatable)")
    parser.add_argument("--api-secret", action="append", default=[], help="secret for the --api-key at the same position")


def run(args: argparse.Namespace) -> int:
    log.set_process(PROC)
    try:
        settings = SimSettings.from_args(args)
        server = build_server(settings)
    except (ValueError, OSError) as exc:
        return exit_bad_config(PROC, exc)
    return run_async_process(PROC, args.instance, settings.sim.runtime, functools.partial(start, server),
                             versions.on_start(args.config, args.instance, PROC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROC, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
