"""The market_data agent: the feed (``feed``) driving the handler (``handler``) into the rings
(``publisher``), with the recorder beside it; ``start`` fetches the instruments and compiles the
book kernel (``procs.core.async_agent.run_async_process`` runs it)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import msgspec

from procs.core import log
from procs.core.async_agent import AsyncRun
from procs.core.config import load_section
from procs.core.instruments import Instrument, load_exchange_info
from procs.core.registry import build_registry
from shm.counters import Counters

from .config import MarketDataConfig
from .feed import Feed
from .handler import FeedHandler
from .publisher import Counter, Hist, Publisher
from .recorder import Recorder

PROC = "market_data"
_INFO_PATH = {"usdm": "/fapi/v1/exchangeInfo", "coinm": "/dapi/v1/exchangeInfo", "spot": "/api/v3/exchangeInfo"}


def load_config(config_path: str | None, ws_url: str | None = None, rest_url: str | None = None) -> MarketDataConfig:
    """``[market_data]`` with the command-line overrides applied; raises ConfigError naming the
    file, section, field and reason."""
    cfg = load_section(config_path, PROC, MarketDataConfig)
    if ws_url or rest_url:
        cfg = msgspec.structs.replace(cfg, ws_url=ws_url or cfg.ws_url, rest_url=rest_url or cfg.rest_url)
    return cfg


async def fetch_instruments(cfg: MarketDataConfig) -> dict[str, Instrument]:
    """The instruments from ``exchange_info`` (a file) or the venue's REST, retried until it answers."""
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


class MarketDataAgent:
    """The feed in service until the stop; the heartbeat also flushes the recorder."""

    name = PROC

    def __init__(self, cfg: MarketDataConfig, instance: str, feed: Feed, handler: FeedHandler,
                 publisher: Publisher, counters: Counters, recorder: Recorder | None) -> None:
        self.cfg = cfg
        self.instance = instance
        self.feed = feed
        self.handler = handler
        self.publisher = publisher
        self.counters = counters
        self.recorder = recorder

    async def serve(self, run: AsyncRun) -> None:
        cfg = self.cfg
        run.on_stop(self.feed.stop)
        warm_ns = int(cfg.keep_warm_ms * 1e6)
        if warm_ns > 0:
            run.every(cfg.keep_warm_ms / 1000, lambda: self.handler.keep_warm(time.monotonic_ns(), warm_ns),
                      first_after=0)
        run.running()
        log.info("market_data_started", instance=self.instance, symbols=cfg.symbols, ws_url=cfg.ws_url,
                 depth=cfg.depth)
        await self.feed.run()

    def work(self) -> int:
        return self.counters.get(Counter.MESSAGES)

    def on_heartbeat(self) -> None:
        self.publisher.heartbeat()
        self.counters.heartbeat()
        if self.recorder is not None:
            self.recorder.flush()
            self.counters.set(Counter.RECORDER_DROPPED, self.recorder.dropped_batches)

    async def on_close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        self.publisher.close()
        self.counters.close()


async def start(cfg: MarketDataConfig, instance: str, recorder: Recorder | None, _run: AsyncRun) -> MarketDataAgent:
    """The instruments, the rings, the compiled book kernel (not on the first live diff)."""
    counters = Counters.create(instance, PROC, Counter, Hist)
    try:
        instruments = await fetch_instruments(cfg)
        publisher = Publisher(build_registry(cfg.depth), instance, cfg.symbols)
    except BaseException:
        counters.close()
        if recorder is not None:
            recorder.close()
        raise
    fast = cfg.book_engine == "numba"
    if fast:
        from procs.book.fastbook import warm_up

        log.info("book_kernel_compiled", seconds=round(warm_up(), 3))
    handler = FeedHandler(cfg.symbols, instruments, cfg.kind, publisher, counters, recorder, fast=fast)
    return MarketDataAgent(cfg, instance, Feed(cfg, handler), handler, publisher, counters, recorder)
