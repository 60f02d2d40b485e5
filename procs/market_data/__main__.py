"""market_data: the live order book per symbol from the exchange's WebSocket + REST snapshots.

``python -m procs.market_data [--config F] [--instance NAME]`` — publishes ``BookUpdate`` to
``md.book``, ``Trade`` to ``md.trade`` and the latest book to ``book.<symbol>``. The logic is
``procs.market_data.handler`` (no I/O) and the network side ``procs.market_data.feed``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

import aiohttp
import uvloop

from procs.core import log
from procs.core.agent import HEARTBEAT_NS, apply_sched, freeze_gc, hold_cpu_latency, pin_cpu
from procs.core.config import ConfigError, config_hash, load_section
from procs.core.instruments import Instrument, load_exchange_info
from procs.core.registry import build_registry
from procs.core.status import State, StatusWriter
from procs.market_data.config import MarketDataConfig
from procs.market_data.feed import Feed
from procs.market_data.handler import FeedHandler
from procs.market_data.publisher import Counter, Hist, Publisher
from procs.market_data.recorder import Recorder
from shm.counters import Counters
from shm.segment import DEFAULT_INSTANCE

_INFO_PATH = {"usdm": "/fapi/v1/exchangeInfo", "coinm": "/dapi/v1/exchangeInfo", "spot": "/api/v3/exchangeInfo"}


async def fetch_instruments(cfg: MarketDataConfig) -> dict[str, Instrument]:
    if cfg.exchange_info:
        return load_exchange_info(cfg.exchange_info)
    url = cfg.rest_url.rstrip("/") + _INFO_PATH[cfg.kind]
    delay = cfg.reconnect_min_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return load_exchange_info(await r.json(content_type=None))
                    log.warn("exchange_info_failed", url=url, status=r.status)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.once("exchange_info_err", "warn", "exchange_info_failed", url=url, reason=repr(exc))
            await asyncio.sleep(delay)
            delay = min(cfg.reconnect_max_s, delay * 2)


async def amain(cfg: MarketDataConfig, instance: str, chash: str) -> int:
    # the recorder child starts before we pin, so gzip and the disk never share the hot CPU
    recorder = Recorder(cfg.recorder, f"{instance}_md") if cfg.recorder.enabled else None
    cpu = pin_cpu(cfg.cpu)
    status = StatusWriter(instance, "market_data", cpu, chash)
    counters = Counters.create(instance, "market_data", Counter, Hist)
    instruments = await fetch_instruments(cfg)
    publisher = Publisher(build_registry(cfg.depth), instance, cfg.symbols)
    fast = cfg.book_engine == "numba"
    if fast:
        from procs.book.fastbook import warm_up

        log.info("book_kernel_compiled", seconds=round(warm_up(), 3))  # not on the first live diff
    log.info("gc_frozen", objects=freeze_gc())  # start-up objects: never walked again
    apply_sched(cfg.sched)  # after the compile: seconds of real-time CPU would starve the rest
    qos_fd = hold_cpu_latency(cfg.cpu_latency_us)
    handler = FeedHandler(cfg.symbols, instruments, cfg.kind, publisher, counters, recorder, fast=fast)
    feed = Feed(cfg, handler)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, feed.stop)

    def beat() -> None:
        status.beat(counters.get(Counter.MESSAGES))
        publisher.heartbeat()
        counters.heartbeat()
        if recorder is not None:
            recorder.flush()
            counters.set(Counter.RECORDER_DROPPED, recorder.dropped_batches)
        if not feed.stopping:
            loop.call_later(HEARTBEAT_NS / 1e9, beat)

    warm_ns = int(cfg.keep_warm_ms * 1e6)

    def keep_warm() -> None:
        handler.keep_warm(time.monotonic_ns(), warm_ns)
        if not feed.stopping:
            loop.call_later(cfg.keep_warm_ms / 1000, keep_warm)

    status.set_state(State.RUNNING)
    beat()
    if warm_ns > 0:
        keep_warm()
    log.info("market_data_started", instance=instance, symbols=cfg.symbols, ws_url=cfg.ws_url, depth=cfg.depth)
    try:
        await feed.run()
    finally:
        status.set_state(State.STOPPING)
        if recorder is not None:
            recorder.close()
        publisher.close()
        status.set_state(State.STOPPED)
        if qos_fd is not None:
            os.close(qos_fd)  # the request ends with the descriptor
        counters.close()
        status.close()
    log.info("market_data_stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="market_data", description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--ws-url", default=None)
    ap.add_argument("--rest-url", default=None)
    a = ap.parse_args(argv)
    log.set_process("market_data")
    try:
        cfg = load_section(a.config, "market_data", MarketDataConfig)
    except ConfigError as exc:
        print(f"market_data: {exc}", file=sys.stderr)
        return 2
    if a.ws_url or a.rest_url:
        import msgspec
        cfg = msgspec.structs.replace(cfg, ws_url=a.ws_url or cfg.ws_url, rest_url=a.rest_url or cfg.rest_url)
    return uvloop.run(amain(cfg, a.instance, config_hash(a.config)))


if __name__ == "__main__":
    sys.exit(main())
