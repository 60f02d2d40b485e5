"""The network side of market_data: one picows WebSocket (every stream on it) on uvloop, REST
snapshots over aiohttp, the stale-feed watchdog, and reconnects with backoff and jitter.

Frames go straight from picows's callback into ``FeedHandler.on_frame`` with their receive
time; nothing is awaited on that path.
"""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from procs.book.sync import SyncStatus
from procs.core import log
from procs.venue.protocols import MarketStreams

from .config import MarketDataConfig
from .handler import FeedHandler
from .publisher import Counter


class _Listener(WSListener):
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.prewake = feed.cfg.prewake
        if self.prewake:
            feed.handler.pub.book_ring.set_prewake(("strategy",))  # risk is off the hot path

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.feed.on_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            ts = time.monotonic_ns()
            if self.prewake:
                self.feed.handler.pub.book_ring.prewake()  # consumers wake while we decode and apply
            self.feed.handler.on_frame(frame.get_payload_as_bytes(), ts)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.feed.on_disconnected()


class Feed:
    """Keeps the connection, the snapshots and the watchdog going until ``stop()``."""

    def __init__(self, cfg: MarketDataConfig, streams: MarketStreams, handler: FeedHandler) -> None:
        self.cfg = cfg
        self.venue = streams
        self.where = streams.name
        self.handler = handler
        self.transport: WSTransport | None = None
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.fetching: set[str] = handler.fetching
        if cfg.lockstep_gauges:
            handler.enable_lockstep_gauges()
        self.stopping = False
        self.attempt = 0
        self.session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- connection --------------------------------------------------------------------------
    def url(self) -> str:
        return self.venue.url(self.handler.symbols, marks=self.cfg.mark_prices)

    def on_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.stopping:  # SIGTERM arrived while we were connecting
            transport.disconnect()
            return
        self.disconnected.clear()
        self.connected.set()
        self.handler.touch_all(time.monotonic_ns())

    def on_disconnected(self) -> None:
        self.transport = None
        self.connected.clear()
        self.disconnected.set()

    async def run(self) -> None:
        """Connect, serve, reconnect with exponential backoff and jitter, until stopped."""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._spawn(self._snapshots())
        self._spawn(self._watchdog())
        try:
            while not self.stopping:
                try:
                    await ws_connect(lambda: _Listener(self), self.url(), websocket_handshake_timeout=5)
                    if self.stopping:
                        break
                    log.info("feed_connected", url=self.where, attempt=self.attempt)
                    self.attempt = 0
                    await self.disconnected.wait()
                    if self.stopping:
                        break
                    log.warn("feed_disconnected", url=self.where)
                except Exception as exc:  # any connect failure: refused, handshake, timeout
                    log.once(f"connect_fail:{type(exc).__name__}", "warn", "feed_connect_failed",
                             url=self.where, reason=repr(exc))
                self.handler.c.inc(Counter.RECONNECTS)
                self.handler.reset_all()
                self.attempt += 1
                delay = min(self.cfg.reconnect_max_s, self.cfg.reconnect_min_s * 2 ** min(self.attempt - 1, 16))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # jitter: no thundering herd
        finally:
            for t in list(self._tasks):
                t.cancel()
            await self.session.close()

    def stop(self) -> None:
        self.stopping = True
        if self.transport is not None:
            self.transport.send_close()
            self.transport.disconnect()
        self.disconnected.set()

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # -- snapshots ---------------------------------------------------------------------------
    async def _snapshots(self) -> None:
        """Fetch a REST snapshot for every symbol the handler asks for, one task per symbol."""
        while True:
            await asyncio.sleep(0.01)
            if not self.connected.is_set():
                continue
            # the exchange's procedure: buffer the stream's diffs first, then get the snapshot; a
            # snapshot taken before the first diff arrived can predate it and fail the first-diff
            # rule (docs/decisions/026-snapshot-after-buffered-diffs.md)
            # (Lockstep replay is the exception: its simulator sends the first frame only once the
            # snapshots are loaded, and serves them consistent with its stream position.)
            syncs, lockstep = self.handler.syncs, self.cfg.lockstep_gauges
            want = {s for s in self.handler.want_snapshot - self.fetching if lockstep or syncs[s].buffer}
            for s in want:  # in fetching before leaving want_snapshot: the gauge never dips to 0
                self.fetching.add(s)
                self._spawn(self._fetch(s))
            self.handler.want_snapshot -= want

    async def _fetch(self, symbol: str) -> None:
        url = self.venue.snapshot_url(symbol, self.cfg.snapshot_limit)
        try:
            while not self.stopping:
                try:
                    assert self.session is not None
                    async with self.session.get(url) as r:
                        body = await r.read()
                        if r.status != 200:
                            self.handler.c.inc(Counter.SNAPSHOT_ERRORS)
                            log.once(f"snapshot_http:{symbol}:{r.status}", "warn", "snapshot_failed", symbol=symbol,
                                     status=r.status, body=body[:200].decode("utf-8", "replace"))
                            retry = float(r.headers.get("Retry-After", 0) or 0)
                            await asyncio.sleep(max(retry, self.cfg.snapshot_retry_s))
                            continue
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    self.handler.c.inc(Counter.SNAPSHOT_ERRORS)
                    log.once(f"snapshot_err:{symbol}", "warn", "snapshot_failed", symbol=symbol, reason=repr(exc))
                    await asyncio.sleep(self.cfg.snapshot_retry_s)
                    continue
                if not self.handler.syncs[symbol].needs_snapshot:
                    return  # a reconnect reset and another fetch already synced it meanwhile
                st = self.handler.on_snapshot(symbol, body, time.monotonic_ns())
                if st >= SyncStatus.GAP:
                    self.handler.want_snapshot.discard(symbol)
                    await asyncio.sleep(self.cfg.snapshot_retry_s)  # the snapshot was behind the stream
                    continue
                return
        finally:
            self.fetching.discard(symbol)
            self.handler.update_pending()

    # -- watchdog ----------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        """Resync a symbol that went silent; reconnect when every symbol did (a stalled socket)."""
        while True:
            await asyncio.sleep(min(1.0, self.cfg.stale_after_s / 4))
            stale_ns = int(self.cfg.stale_after_s * 1e9)  # read each turn: a reload may change it
            if not self.connected.is_set():
                continue
            now = time.monotonic_ns()
            stale = self.handler.stale_symbols(now, stale_ns)
            if not stale:
                continue
            if len(stale) == len(self.handler.symbols):
                log.warn("feed_stalled", symbols=stale, stale_after_s=self.cfg.stale_after_s)
                self.handler.c.inc(Counter.WATCHDOG_RESYNCS)
                self.handler.touch_all(now)
                if self.transport is not None:
                    self.transport.disconnect()  # the run loop reconnects and resyncs everything
                continue
            for s in stale:
                log.warn("symbol_stale", symbol=s, stale_after_s=self.cfg.stale_after_s)
                self.handler.c.inc(Counter.WATCHDOG_RESYNCS)
                self.handler.last_depth_ns[s] = now
                self.resubscribe(s)
                self.handler.reset_symbol(s)

    def resubscribe(self, symbol: str) -> None:
        """Drop and take again one symbol's streams on the live connection."""
        if self.transport is None:
            return
        for frame in self.venue.resubscribe([symbol], marks=self.cfg.mark_prices):
            self.transport.send(WSMsgType.TEXT, frame)
