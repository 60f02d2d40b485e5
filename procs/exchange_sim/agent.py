"""The simulator as an agent: ``SimServer`` (market side) with the trading side plugged in, kept
in service until a stop or a dead market source (``procs.core.async_agent`` runs it).

``SimSettings.from_args`` applies the command line over ``[sim]`` and ``[sim_trading]``; ``start``
binds the ports and starts the market.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

import msgspec

from procs.core import log
from procs.core.async_agent import AsyncRun
from procs.core.config import ConfigError, convert, read_toml

from .config import SimConfig, load_sim_config
from .server import SimServer
from .trading.config import AccountConfig, TradingConfig

PROC = "exchange_sim"


@dataclass(frozen=True)
class SimSettings:
    """``[sim]`` and ``[sim_trading]`` with the command-line overrides applied."""

    sim: SimConfig
    trading: TradingConfig
    instance: str | None = None  # the shm instance (--instance): [sim] sim_clock writes sim.clock there

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimSettings:
        """Raises ConfigError (a ValueError) naming the field and the reason."""
        sim = _sim_config(args)
        if sim.sim_clock and not args.instance:
            raise ConfigError(f"invalid config {args.config} section [sim] field sim_clock: the simulated clock "
                              "is written to the pipeline's shm instance: run with --instance")
        return cls(sim, _trading_config(args), args.instance)


def _sim_config(args: argparse.Namespace) -> SimConfig:
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


def _trading_config(args: argparse.Namespace) -> TradingConfig:
    tcfg = convert(read_toml(args.config).get("sim_trading", {}), TradingConfig, f"{args.config} section [sim_trading]")
    if args.api_key:
        if len(args.api_key) != len(args.api_secret):
            raise ConfigError("--api-key and --api-secret must be given in pairs")
        accounts = [AccountConfig(name=f"cli{i}", api_key=k, api_secret=s)
                    for i, (k, s) in enumerate(zip(args.api_key, args.api_secret, strict=True))]
        tcfg = msgspec.structs.replace(tcfg, accounts=list(tcfg.accounts) + accounts)
    return tcfg


def build_server(settings: SimSettings) -> SimServer:
    """The market side with the trading side plugged in (not started)."""
    from .trading.orderapi import build_trading

    server = SimServer(settings.sim, clock_instance=settings.instance if settings.sim.sim_clock else "")
    rest_handler, ws_handler = build_trading(server.market, settings.trading, server.exchange_info)
    server.set_handlers(rest_handler, ws_handler)
    return server


class SimAgent:
    """In service until a stop, or until a market source or timer task dies (exit 1)."""

    name = PROC

    def __init__(self, server: SimServer) -> None:
        self.server = server

    async def serve(self, run: AsyncRun) -> None:
        run.running()
        waits = [asyncio.ensure_future(run.stop.wait()), asyncio.ensure_future(self.server.failed.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        log.info("stopping", failure=self.server.failure)
        if self.server.failure:
            run.fail(RuntimeError(self.server.failure))

    def work(self) -> int:
        return int(self.server.stats().get("frames_sent", 0))

    def on_heartbeat(self) -> None:
        pass

    async def on_close(self) -> None:
        await self.server.stop()


async def start(server: SimServer, _run: AsyncRun) -> SimAgent:
    """Bind the REST and WebSocket ports and start the market (``listening`` says where)."""
    try:
        await server.start()
    except BaseException:
        await server.stop()
        raise
    return SimAgent(server)
