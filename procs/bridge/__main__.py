"""bridge: the instance's rings out to NATS (and JetStream), remote intents and commands in.

``python -m procs.bridge [--config F] [--instance NAME]`` — an observer of md.book, md.trade,
exec, alerts.*, risk.state and strategy.signals (it never gates a producer); publishes to
``b25.<instance>.*`` (procs/bridge/schema.py); with ``[bridge] intents`` writes remote order
intents to ``orders.remote``. The logic lives in procs.bridge; this module wires it to the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import aiohttp
import uvloop

from procs.core import deploy, log
from procs.core.agent import apply_sched, freeze_gc, pin_cpu
from procs.core.config import ConfigError, config_hash, load_section
from procs.core.instruments import Instrument, load_exchange_info
from procs.core.registry import ORDERS_REMOTE, alerts_name, build_registry
from procs.core.status import State, StatusWriter
from procs.market_data.config import MarketDataConfig
from procs.strategy.config import StrategyEngineConfig
from shm.counters import Counters
from shm.segment import DEFAULT_INSTANCE

from .config import BridgeConfig
from .counters import Counter, Hist
from .inbound import Inbound
from .link import Link, load_cursors
from .outbound import Outbound, Outgoing

PROC = "bridge"
HOUSEKEEPING_S = 0.5  # resends, cursor file, remote liveness, heartbeat


async def fetch_instruments(md: MarketDataConfig, symbols: list[str], stop: asyncio.Event) -> list[Instrument] | None:
    """The configured symbols' instruments from [market_data]'s exchangeInfo (file or REST); None if stopped."""
    if md.exchange_info:
        info = load_exchange_info(md.exchange_info)
    else:
        url = md.rest_url.rstrip("/") + ("/api/v3/exchangeInfo" if md.kind == "spot" else
                                          "/dapi/v1/exchangeInfo" if md.kind == "coinm" else "/fapi/v1/exchangeInfo")
        delay = 0.2
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                        info = load_exchange_info(json.loads(await r.read()))
                    break
                except (OSError, ValueError, aiohttp.ClientError, TimeoutError) as exc:
                    log.once("exchange_info_err", "warn", "exchange_info_failed", url=url, reason=repr(exc))
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return None
                except TimeoutError:
                    delay = min(5.0, delay * 2)
    return [info.get(s) or Instrument(symbol=s, price_scale=8, qty_scale=8) for s in symbols]


def strategy_names(config: str | None, cfg: BridgeConfig) -> dict[int, str]:
    """Ring strategy numbers -> ids: the local strategies and the remote ones. ConfigError when
    a remote id is also a local one or their numbers collide."""
    from procs.strategy.config import strategy_number

    local = {e.number: e.id for e in load_section(config, "strategy", StrategyEngineConfig).strategies}
    names = dict(local)
    for s in cfg.remote_strategies:
        n = strategy_number(s)
        if n in names:
            raise ConfigError(f"invalid config {config} section [bridge]: remote strategy {s!r} has the number "
                              f"{n} of strategy {names[n]!r} (ids must differ and their crc32 numbers too)")
        names[n] = s
    return names


async def amain(cfg: BridgeConfig, config: str | None, instance: str) -> int:
    cpu = pin_cpu(cfg.cpu)
    status = StatusWriter(instance, PROC, cpu, config_hash(config))
    counters = Counters.create(instance, PROC, Counter, Hist)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    md = load_section(config, "market_data", MarketDataConfig)
    symbols, depth = list(md.symbols), md.depth
    names = strategy_names(config, cfg)
    registry = build_registry(depth)
    alerts = registry.producer(instance, alerts_name(PROC))
    remote = registry.producer(instance, ORDERS_REMOTE) if cfg.intents else None
    instruments = await fetch_instruments(md, symbols, stop)
    link: Link | None = None
    outbound: Outbound | None = None
    try:
        if instruments is None:
            return 0
        scales = [(i.price_scale, i.qty_scale) for i in instruments]
        outbound = Outbound(cfg, instance, symbols, scales, names, depth)
        cursor_file = Path(cfg.cursor_file or f"run/bridge/{instance}.cursors.json")
        saved = load_cursors(cursor_file)
        for ring in outbound.durable_rings:
            if ring.name in saved:
                ring.resume(*saved[ring.name])
        inbound = Inbound(cfg, instance, symbols, scales, remote, counters)
        link = Link(cfg, instance, counters, on_connect=inbound.subscribe, cursor_file=cursor_file)
        was_up = [False]

        def link_changed(up: bool) -> None:
            text = (f"NATS connected {','.join(cfg.servers)}" if up else "NATS down: market data dropped, exec/alerts held")
            alerts.try_publish(time.time_ns(), 1 if up else 2, 1 if up else 2, -1, 0.0, text.encode()[:88])

        link.start()
        log.info("gc_frozen", objects=freeze_gc())
        apply_sched(cfg.sched)
        status.set_state(State.RUNNING)
        log.info("bridge_started", instance=instance, servers=cfg.servers, encoding=cfg.encoding,
                 jetstream=cfg.jetstream, intents=cfg.intents, commands=cfg.commands, book_max_hz=cfg.book_max_hz)
        poll_s = cfg.poll_ms / 1000
        next_house = 0.0
        out: list[Outgoing] = []
        work = 0
        while not stop.is_set():
            up = link.up
            if up != was_up[0]:
                was_up[0] = up
                link_changed(up)
            out.clear()
            work += outbound.poll(out, md=up)
            if outbound.dropped:
                counters.inc(Counter.DROPPED_OUTAGE, outbound.dropped)
            if out:
                link.send(out)
            now = time.monotonic()
            if now >= next_house:
                next_house = now + HOUSEKEEPING_S
                link.resend()
                link.save_cursors(outbound.durable_rings)
                inbound.check_dead()
                counters.set(Counter.LAPPED, outbound.lapped)
                counters.set(Counter.CONFLATED, outbound.conflated)
                counters.set(Counter.LAG_US, link.lag_ns() // 1000)
                status.beat(work)
                counters.heartbeat()
                alerts.heartbeat()
                if remote is not None:
                    remote.heartbeat()
            try:
                await asyncio.wait_for(stop.wait(), poll_s)
            except TimeoutError:
                pass
        status.set_state(State.STOPPING)
        # a last read, so what reached the rings before the stop goes out (or into the cursor file)
        out.clear()
        outbound.poll(out, md=link.up)
        link.send(out)
        deadline = time.monotonic() + 2.0
        while link.up and link.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        link.save_cursors(outbound.durable_rings)
        return 0
    finally:
        if link is not None:
            await link.close()
        if outbound is not None:
            outbound.close()
        alerts.close()
        if remote is not None:
            remote.close()
        status.set_state(State.STOPPED)
        counters.close()
        status.close()
        log.info("bridge_stopped")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    try:
        cfg = load_section(a.config, PROC, BridgeConfig)
        deploy.symbols(a.config)
        strategy_names(a.config, cfg)
    except ConfigError as exc:
        print(f"{PROC}: {exc}", file=sys.stderr)
        return 2
    try:
        return uvloop.run(amain(cfg, a.config, a.instance))
    except ValueError as exc:
        log.error("bridge_failed", reason=str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
