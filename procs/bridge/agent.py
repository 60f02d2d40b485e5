"""The bridge agent: every ``poll_ms`` the new ring records go out through the link; every
``HOUSEKEEPING_S`` unacknowledged durable messages are sent again, the cursor file is written and
remote strategies' liveness is checked. ``start`` builds it (``run_async_process`` runs it)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs.core import deploy, log
from procs.core.async_agent import AsyncRun
from procs.core.config import ConfigError, load_section
from procs.core.deploy import DeployConfig
from procs.core.instruments import Instrument
from procs.core.registry import ORDERS_REMOTE, alerts_name, build_registry
from procs.strategy.config import StrategyEngineConfig, strategy_number
from procs.venue.adapters import info_in_thread, open_venue, venue_config
from procs.venue.config import VenueConfig
from shm.counters import Counters

from .config import BridgeConfig
from .counters import Counter, Hist
from .inbound import Inbound
from .link import Link, load_cursors
from .outbound import Outbound, Outgoing

PROC = "bridge"
HOUSEKEEPING_S = 0.5  # resends, the cursor file, remote liveness, gauges


@dataclass(frozen=True)
class BridgeSettings:
    """What the bridge reads from the config file, checked before it starts."""

    bridge: BridgeConfig
    deploy: DeployConfig  # symbols, depth, ring capacities
    venue: VenueConfig
    names: dict[int, str]  # ring strategy numbers -> ids, local and remote
    config: str | None

    @classmethod
    def load(cls, config: str | None) -> BridgeSettings:
        """ConfigError names the file, section, field and reason (a remote id that is also a
        local strategy's, or whose number collides with one, included)."""
        cfg = load_section(config, PROC, BridgeConfig)
        names = {e.number: e.id for e in load_section(config, "strategy", StrategyEngineConfig).strategies}
        for s in cfg.remote_strategies:
            n = strategy_number(s)
            if n in names:
                raise ConfigError(f"invalid config {config} section [bridge]: remote strategy {s!r} has the number "
                                  f"{n} of strategy {names[n]!r} (ids and their crc32 numbers must differ)")
            names[n] = s
        return cls(cfg, deploy.load(config), venue_config(config), names, config)


async def fetch_instruments(settings: BridgeSettings, run: AsyncRun) -> list[Instrument]:
    """The configured symbols' instruments from the venue (``[venue] exchange_info`` or asked,
    retried with backoff until it answers)."""
    info = await info_in_thread(open_venue(settings.venue), run.stop.is_set)
    assert info is not None  # retried until it answers; a stop meanwhile cancels this await
    return [info.instruments.get(s) or Instrument(symbol=s, price_scale=8, qty_scale=8)
            for s in settings.deploy.symbols]


class BridgeAgent:
    name = PROC

    def __init__(self, cfg: BridgeConfig, counters: Counters, alerts: Any, remote: Any, outbound: Outbound,
                 inbound: Inbound, link: Link) -> None:
        self.cfg = cfg
        self.c = counters
        self.alerts = alerts
        self.remote = remote
        self.outbound = outbound
        self.inbound = inbound
        self.link = link
        self.polled = 0
        self._was_up = False

    async def serve(self, run: AsyncRun) -> None:
        self.link.start()
        run.running()
        log.info("bridge_started", servers=self.cfg.servers, encoding=self.cfg.encoding, jetstream=self.cfg.jetstream,
                 intents=self.cfg.intents, commands=self.cfg.commands, book_max_hz=self.cfg.book_max_hz)
        run.every(HOUSEKEEPING_S, self.housekeeping)
        out: list[Outgoing] = []
        poll_s = self.cfg.poll_ms / 1000
        while not run.stopping:
            self.step(out)
            await run.sleep(poll_s)
        self.step(out)  # what reached the rings before the stop goes out (or into the cursor file)
        deadline = time.monotonic() + 2.0
        while self.link.up and self.link.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def step(self, out: list[Outgoing]) -> int:
        """One read of the rings and one hand-over to the link; returns the messages made."""
        up = self.link.up
        if up != self._was_up:
            self._was_up = up
            text = (f"NATS connected {','.join(self.cfg.servers)}" if up else
                    "NATS down: market data dropped, exec/alerts held")
            self.alerts.try_publish(time.time_ns(), 1 if up else 2, 1 if up else 2, -1, 0.0, text.encode()[:88])
        out.clear()
        n = self.outbound.poll(out, md=up)
        if self.outbound.dropped:
            self.c.inc(Counter.DROPPED_OUTAGE, self.outbound.dropped)
        if out:
            self.link.send(out)
        self.polled += n
        return n

    def housekeeping(self) -> None:
        self.link.resend()
        self.link.save_cursors(self.outbound.durable_rings)
        self.inbound.check_dead()
        self.c.set(Counter.LAPPED, self.outbound.lapped)
        self.c.set(Counter.CONFLATED, self.outbound.conflated)
        self.c.set(Counter.LAG_US, self.link.lag_ns() // 1000)

    def work(self) -> int:
        return self.polled

    def on_heartbeat(self) -> None:
        self.c.heartbeat()
        self.alerts.heartbeat()
        if self.remote is not None:
            self.remote.heartbeat()

    async def on_close(self) -> None:
        self.link.save_cursors(self.outbound.durable_rings)
        await self.link.close()
        self.outbound.close()
        self.alerts.close()
        if self.remote is not None:
            self.remote.close()
        self.c.close()


async def start(settings: BridgeSettings, instance: str, run: AsyncRun) -> BridgeAgent:
    cfg, md = settings.bridge, settings.deploy
    registry = build_registry(md.depth, md.rings)
    counters = Counters.create(instance, PROC, Counter, Hist)
    alerts = registry.producer(instance, alerts_name(PROC))
    remote = registry.producer(instance, ORDERS_REMOTE) if cfg.intents else None
    try:
        instruments = await fetch_instruments(settings, run)
        scales = [(i.price_scale, i.qty_scale) for i in instruments]
        outbound = Outbound(cfg, instance, list(md.symbols), scales, settings.names, md.depth)
        cursor_file = Path(cfg.cursor_file or f"run/bridge/{instance}.cursors.json")
        saved = load_cursors(cursor_file)
        for ring in outbound.durable_rings:
            if ring.name in saved:
                ring.resume(*saved[ring.name])
        inbound = Inbound(cfg, instance, list(md.symbols), scales, remote, counters)
        link = Link(cfg, instance, counters, on_connect=inbound.subscribe, cursor_file=cursor_file)
    except BaseException:  # stopped or failed during start-up: close what was opened
        for ring in (alerts, remote):
            if ring is not None:
                ring.close()
        counters.close()
        raise
    return BridgeAgent(cfg, counters, alerts, remote, outbound, inbound, link)
