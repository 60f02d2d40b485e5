"""The market_data agent: the feed (``feed``) driving the handler (``handler``) into the rings
(``publisher``), with the recorder beside it; ``start`` fetches the instruments and compiles the
book kernel (``procs.core.async_agent.run_async_process`` runs it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from procs.core import deploy, log
from procs.core.agent import NoStatus
from procs.core.async_agent import AsyncRun
from procs.core.config import load_section
from procs.core.deploy import DeployConfig
from procs.core.registry import build_registry
from procs.core.reload import Reloader
from procs.core.status import StatusWriter
from procs.venue.adapters import info_in_thread, open_venue, venue_config
from procs.venue.config import VenueConfig
from shm.counters import Counters

from .config import MarketDataConfig
from .feed import Feed
from .handler import FeedHandler
from .publisher import Counter, Hist, Publisher
from .recorder import Recorder

PROC = "market_data"


@dataclass(frozen=True)
class MarketDataSettings:
    """What market_data reads from the config file, checked before it starts."""

    market_data: MarketDataConfig
    deploy: DeployConfig  # the symbols, the depth, the rings' capacities
    venue: VenueConfig
    config_path: str | None = None  # what a reload reads


def load_config(config_path: str | None, ws_url: str | None = None,
                rest_url: str | None = None) -> MarketDataSettings:
    """``[market_data]``, ``[deploy]`` and ``[venue]`` (the command line's URLs override the venue's);
    raises ConfigError naming the file, section, field and reason."""
    cfg = load_section(config_path, PROC, MarketDataConfig)
    vcfg = venue_config(config_path)
    if ws_url or rest_url:
        vcfg = msgspec.structs.replace(vcfg, ws_stream_url=ws_url or vcfg.ws_stream_url,
                                       rest_url=rest_url or vcfg.rest_url)
    return MarketDataSettings(cfg, deploy.load(config_path), vcfg, config_path)


class MarketDataAgent:
    """The feed in service until the stop; the heartbeat also flushes the recorder."""

    name = PROC

    def __init__(self, cfg: MarketDataConfig, instance: str, feed: Feed, handler: FeedHandler,
                 publisher: Publisher, counters: Counters, recorder: Recorder | None, depth: int,
                 config_path: str | None = None) -> None:
        self.cfg = cfg
        self.depth = depth
        # SIGHUP: the watchdog and reconnect timings reload (the feed reads them where it uses
        # them); a change to any other field is refused naming it (MarketDataConfig.restart_only)
        self.reloader = Reloader(config_path, instance, PROC, PROC, MarketDataConfig, cfg)
        self.status: StatusWriter | NoStatus = NoStatus()
        self.instance = instance
        self.feed = feed
        self.handler = handler
        self.publisher = publisher
        self.counters = counters
        self.recorder = recorder

    async def serve(self, run: AsyncRun) -> None:
        cfg = self.cfg
        run.on_stop(self.feed.stop)
        warm_ns = int(cfg.runtime.keep_warm_ms * 1e6)
        if warm_ns > 0:
            run.every(cfg.runtime.keep_warm_ms / 1000, lambda: self.handler.keep_warm(time.monotonic_ns(), warm_ns),
                      first_after=0)
        self.status = run.status
        run.on_hangup(self.reload)
        run.running()
        log.info("market_data_started", instance=self.instance, symbols=self.handler.symbols, ws_url=self.feed.where,
                 depth=self.depth)
        await self.feed.run()

    def reload(self) -> None:
        got = self.reloader.take()
        if got is None:
            return
        cfg, data = got
        self.cfg = self.feed.cfg = cfg
        self.status.set_config_hash(self.reloader.applied(cfg, data))

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


async def start(settings: MarketDataSettings, instance: str, recorder: Recorder | None,
                run: AsyncRun) -> MarketDataAgent:
    """The instruments, the rings, the compiled book kernels (not on the first live diff)."""
    cfg, shared, vcfg = settings.market_data, settings.deploy, settings.venue
    counters = Counters.create(instance, PROC, Counter, Hist)
    venue = open_venue(vcfg)
    try:
        info = await info_in_thread(venue, run.stop.is_set)
        assert info is not None  # retried until it answers; a stop meanwhile cancels this await
        instruments = info.instruments
        publisher = Publisher(build_registry(shared.depth, shared.rings), instance, shared.symbols)
    except BaseException:
        counters.close()
        if recorder is not None:
            recorder.close()
        raise
    fast = cfg.book_engine == "numba"
    codec = venue.market_codec(raw_levels=fast)
    if fast:
        from procs.book.fastbook import warm_up

        t0 = time.perf_counter()
        warm_up()
        codec.depth_rule.warm_up()  # the venue's frame kernels
        log.info("book_kernel_compiled", seconds=round(time.perf_counter() - t0, 3))
    handler = FeedHandler(shared.symbols, instruments, codec, publisher, counters, recorder, fast=fast)
    return MarketDataAgent(cfg, instance, Feed(cfg, venue.market_streams(), handler), handler, publisher, counters,
                           recorder, shared.depth, settings.config_path)
