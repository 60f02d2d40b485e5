"""exchange_sim: the embedded Binance USD-M exchange (market side + trading side when present).

``python -m procs.exchange_sim [--config F] [--port P] [--ws-port P2] [--replay FILE... --speed X]``
runs it in the foreground, exactly as the supervisord program does; SIGTERM/SIGINT stop it
cleanly with exit status 0. ``b25 sim`` uses ``add_arguments`` and ``run``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import msgspec
import uvloop

from procs.core import log
from procs.core.config import ConfigError, read_toml
from procs.core.status import State, StatusWriter
from procs.exchange_sim.config import SimConfig, load_sim_config
from procs.exchange_sim.server import SimServer


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


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The [sim] section with the command-line overrides applied."""
    cfg = load_sim_config(args.config)
    over: dict = {}
    if args.port is not None:
        over["rest_port"] = args.port
    if args.ws_port is not None:
        over["ws_port"] = args.ws_port
    if args.host is not None:
        over["host"] = args.host
    if args.replay:
        over["source"] = "replay"
        over["replay"] = list(args.replay)
    if args.speed is not None:
        over["speed"] = args.speed
    if args.symbols:
        over["symbols"] = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    gen = {}
    if args.seed is not None:
        gen["seed"] = args.seed
    if args.rate is not None:
        gen["msg_rate"] = args.rate
    if gen:
        over["generator"] = msgspec.structs.replace(cfg.generator, **gen)
    return msgspec.structs.replace(cfg, **over) if over else cfg


def _wire_trading(server: SimServer, args: argparse.Namespace) -> None:
    """Plug in the trading side when its modules exist (they are built in parallel)."""
    try:
        from procs.exchange_sim.trading.config import AccountConfig, TradingConfig
        from procs.exchange_sim.trading.orderapi import build_trading
    except ImportError as exc:
        log.warn("trading_side_missing", reason=str(exc))
        return
    from procs.core.config import convert

    tcfg = convert(read_toml(args.config).get("sim_trading", {}), TradingConfig, f"{args.config} [sim_trading]")
    if args.api_key:
        if len(args.api_key) != len(args.api_secret):
            raise ConfigError("--api-key and --api-secret must be given in pairs")
        accounts = [AccountConfig(name=f"cli{i}", api_key=k, api_secret=s)
                    for i, (k, s) in enumerate(zip(args.api_key, args.api_secret, strict=True))]
        tcfg = msgspec.structs.replace(tcfg, accounts=list(tcfg.accounts) + accounts)
    rest_handler, ws_handler = build_trading(server.market, tcfg)
    server.set_handlers(rest_handler, ws_handler)


async def _serve(server: SimServer, instance: str | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    # a status block like every b25 process, so /health and the TUI show a dead simulator as stale
    status = StatusWriter(instance, "exchange_sim") if instance else None

    def beat() -> None:
        if status is not None and not stop.is_set():
            status.beat(int(server.stats().get("frames_sent", 0)))
            loop.call_later(0.1, beat)

    if status is not None:
        status.set_state(State.RUNNING)
        beat()
    waits = [loop.create_task(stop.wait()), loop.create_task(server.failed.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    log.info("stopping", failure=server.failure)
    if status is not None:
        status.set_state(State.STOPPING)
    await server.stop()
    if status is not None:
        status.set_state(State.FAILED if server.failure else State.STOPPED)
        status.close()
    return 1 if server.failure else 0


def run(args: argparse.Namespace) -> int:
    log.set_process("exchange_sim")
    try:
        cfg = config_from_args(args)
        server = SimServer(cfg)
        _wire_trading(server, args)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("config_error", reason=str(exc))
        return 2
    try:
        rc = uvloop.run(_serve(server, args.instance))
    except OSError as exc:  # e.g. port in use
        log.error("start_failed", reason=str(exc))
        return 1
    log.info("stopped", rc=rc)
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exchange_sim", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
