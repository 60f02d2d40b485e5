"""The ``[market_data]`` config section: snapshots, watchdog, book engine, recorder (the symbols and
depth: ``[deploy]``; the venue: ``[venue]``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from procs.core.agent import Runtime, check_loop_period_ms
from procs.core.config import Section


class RecorderConfig(Section):
    """Raw frame recorder: ``<ts_recv_ns> <frame>`` gz lines, the hftbacktest line format."""

    enabled: bool = False
    dir: str = "run/record"
    rotate_mb: int = 256  # uncompressed bytes per file before a new file starts
    rotate_s: int = 3600
    queue_mb: int = 64  # faster-fifo queue size; a full queue drops a batch (counted), never blocks


class MarketDataRuntime(Runtime):
    """``[market_data.runtime]``: cpu, sched, and ``keep_warm_ms``: with no frame for this long, run
    the hot path's code over unchanged data (decode the last frame again, read the books' tops) so
    the next frame finds it in cache; 0 = off (FeedHandler.keep_warm). An asyncio process: no idle."""

    keep_warm_ms: float = 1.0
    agent_fields: ClassVar[tuple[str, ...]] = ("keep_warm_ms",)

    def __post_init__(self) -> None:
        check_loop_period_ms("keep_warm_ms", self.keep_warm_ms)
        super().__post_init__()


class MarketDataConfig(Section):
    """Where the feed comes from and how the book is kept."""

    snapshot_limit: int = 1000
    stale_after_s: float = 5.0  # a symbol silent this long is resynced
    # the venue's mark price per symbol to md.mark (risk marks at it); a replay turns it off (the
    # simulator's mark there runs on host time, so its frame count would not repeat)
    mark_prices: bool = True
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 10.0
    snapshot_retry_s: float = 0.5
    # PM QoS: while market_data runs, idle CPUs stay in states that wake within this many us
    # (0 = poll, never halt); -1 leaves the machine's idle states alone. System-wide: one
    # process holding it is enough. See procs.core.agent.hold_cpu_latency.
    cpu_latency_us: int = -1
    # wake the sleeping consumers of md.book as a frame arrives, before it is decoded and
    # applied, so their wake-up overlaps this work (shm.ring.Producer.prewake)
    prewake: bool = True
    book_engine: Literal["numba", "python"] = "numba"  # numba: FastBook; python: the reference Book
    recorder: RecorderConfig = msgspec.field(default_factory=RecorderConfig)
    # replay harness (``b25 replay --lockstep``) only: keep the counters its barrier reads
    lockstep_gauges: bool = False
    runtime: MarketDataRuntime = msgspec.field(default_factory=lambda: MarketDataRuntime())
    # a reload (procs.core.reload) takes only the watchdog and reconnect timings (the feed reads
    # them where it uses them); a change to any other field is refused, naming it
    restart_only: ClassVar[frozenset[str]] = frozenset()  # filled in below the class


MarketDataConfig.restart_only = frozenset(MarketDataConfig.__struct_fields__) - {
    "stale_after_s", "reconnect_min_s", "reconnect_max_s", "snapshot_retry_s"}
