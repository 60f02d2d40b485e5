"""``SimServer``: the exchange simulator's market side on one asyncio (uvloop) loop.

Owns the true book (``Market``), the faults, the stream hub and feed, the aiohttp REST site
and the picows WebSocket server, and drives one market source (generator or replay). The
trading side plugs in with ``rest_handler`` / ``ws_handler`` (see ``procs.exchange_sim.api``), which it
builds from ``server.market`` before ``start()``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import picows
from aiohttp import web

from procs.core import log
from procs.exchange_sim.api import RestHandler, WsHandler
from procs.exchange_sim.config import FaultSpec, SimConfig
from procs.exchange_sim.faults import Faults
from procs.exchange_sim.market.feed import Feed, Hub, stream_symbol
from procs.exchange_sim.market.gate import SourceGate
from procs.exchange_sim.market.generator import Generator, GenEvent
from procs.exchange_sim.market.true_book import Market
from procs.exchange_sim.rest import RestApp
from procs.exchange_sim.trace import Trace
from procs.exchange_sim.wsserver import Router
from procs.venue.binance.exchange_info import instruments, read_body

if TYPE_CHECKING:
    from procs.exchange_sim.market.replay import Replay

# the generator publishes at most this many events before it lets the loop serve requests: 10 ms
# of a 20 k events/s market
GENERATOR_SLICE = 200


class SimServer:
    """The market side of exchange_sim. ``await start()``, read ``rest_port`` / ``ws_port``,
    ``await stop()``."""

    def __init__(
        self, config: SimConfig, rest_handler: RestHandler | None = None, ws_handler: WsHandler | None = None,
        clock_instance: str = "",
    ) -> None:
        self.config = config
        self.clock_instance = clock_instance  # [sim] sim_clock: the shm instance whose sim.clock the replay writes
        self.exchange_info = read_body(config.exchange_info)
        self.market = Market(instruments(self.exchange_info))
        self.faults = Faults()
        self.hub = Hub(self.faults)
        self.feed = Feed(self.market, self.hub, self.faults)
        self.trace = Trace(config.trace_capacity)
        self.trace.bind(self.hub)
        self.trace.set_enabled(config.trace)
        self.rest_handler, self.ws_handler = rest_handler, ws_handler
        self.rest_port = 0
        self.ws_port = 0
        self.generator: Generator | None = None
        self.replay: Replay | None = None
        self.done = asyncio.Event()  # set when a (non-looping) replay has sent everything
        self.gate = SourceGate()  # pause / resume / step the market source
        if config.start_paused:  # the replay harness resumes once every process is RUNNING
            self.gate.pause()
        self.failed = asyncio.Event()  # a source or timer task died: the process exits non-zero
        self.failure: str | None = None
        self.latency_model = None  # lockstep: the LatencyModel in force
        self.lockstep_gate = None  # lockstep: the trading side's sockets behind the clock
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self._ws_server: asyncio.Server | None = None
        self._router: Router | None = None
        self.started_at = 0.0
        if config.source == "generator":
            missing = [s for s in config.symbols if s not in self.market.instruments]
            if missing:
                raise ValueError(f"symbols not in exchangeInfo: symbols={missing} exchange_info={config.exchange_info}")
            self.generator = Generator(self.market, config.generator, list(config.symbols))
            self.generator.seed_books()
        else:
            from procs.exchange_sim.market.replay import Replay  # needs the recording readers

            if not config.replay:
                raise ValueError("source is replay but no replay files are configured: replay=[]")
            self.replay = Replay(self.market, self.feed, self.hub, config)
            self.replay.gate = self.gate
        self.faults.on_disconnect = self._disconnect
        self.faults.on_malformed = self._malformed
        self.faults.on_market = self._market_fault

    def set_handlers(self, rest_handler: RestHandler | None, ws_handler: WsHandler | None) -> None:
        """Plug in the trading side (before ``start()``)."""
        self.rest_handler, self.ws_handler = rest_handler, ws_handler

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        self.started_at = time.monotonic()
        attach = getattr(self.rest_handler, "attach_trace", None)
        if attach is not None:  # the trading side stamps the orders it receives
            attach(self.trace)
        rest = RestApp(self.market, self.faults, self.exchange_info, cfg.weight_limit_1m,
                       self.rest_handler, self.stats, self.gate, self.trace)
        self._runner = web.AppRunner(rest.build(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.rest_port)
        await site.start()
        server = site._server  # aiohttp has no public accessor for the bound socket
        assert server is not None and server.sockets
        self.rest_port = server.sockets[0].getsockname()[1]
        if self.replay is not None and self.clock_instance:
            self._wire_replay_harness()  # before the router: lockstep puts the trading side's sockets behind the clock
        self._router = Router(self.hub, self.ws_handler, cfg.max_ws_buffer, cfg.ws_max_msgs_per_s)
        # No server pings (the exchange sends one every 3 min): picows 2.3.1's server-side
        # auto-ping made every upgrade fail here, so it stays off; clients' pings are answered.
        self._ws_server = await picows.ws_create_server(
            self._router, cfg.host, cfg.ws_port, enable_auto_pong=True,
        )
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        if self.generator is not None:
            self._tasks.append(loop.create_task(self._run_generator()))
        else:
            self._tasks.append(loop.create_task(self._run_replay()))
        self._tasks.append(loop.create_task(self._timers()))
        for spec in cfg.faults:
            self._tasks.append(loop.create_task(self._scheduled_fault(spec)))
        for t in self._tasks:
            t.add_done_callback(self._task_done)
        log.info("listening", host=cfg.host, rest_port=self.rest_port, ws_port=self.ws_port,
                 source=cfg.source, symbols=self.replay.symbols if self.replay is not None else cfg.symbols)

    def _wire_replay_harness(self) -> None:
        """The simulated clock and, in lockstep, the event queue behind the latency model and the
        pipeline barrier (``b25 replay`` only; procs/exchange_sim/eventclock.py)."""
        from procs.core.simclock import SimClockWriter

        replay = self.replay
        assert replay is not None
        replay.clock = SimClockWriter(self.clock_instance)
        if replay.frames:  # readers that start before the first event see the recording's start
            replay.clock.set(replay.frames[0].ts_recv_ns, 0)
        if self.config.lockstep:
            import numpy as np

            from procs.exchange_sim.eventclock import EventQueue, Links, LockstepGate
            from procs.exchange_sim.latency import schedule
            from procs.tools.replay.lockstep import Barrier

            model = self.config.latency.model()
            replay.queue = EventQueue()
            replay.links = Links(model)
            replay.times = schedule(model, np.array([f.ts_recv_ns for f in replay.frames], np.int64), replay.exch_ns)
            self.latency_model = model
            gate = None
            if self.ws_handler is not None:
                from procs.exchange_sim.trading.wsapi import WS_API_PATH

                def is_api(path: str) -> bool:
                    return path.split("?", 1)[0].rstrip("/") == WS_API_PATH

                clock = replay.clock
                gate = self.ws_handler = LockstepGate(self.ws_handler, replay.queue, replay.links,
                                                      lambda: clock.now_ns, is_api)
            self.lockstep_gate = gate
            replay.barrier = Barrier(self.clock_instance, lambda: self.hub.frames_sent,
                                     (lambda: gate.stream_delivered) if gate is not None else (lambda: 0),
                                     held=(lambda: gate.held) if gate is not None else (lambda: 0))

    def _task_done(self, task: asyncio.Task) -> None:
        # error policy: a dead market source is a broken invariant, never a silent stall;
        # the process exits non-zero and supervisord restarts it
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.failure = f"{type(exc).__name__}: {exc}"
        log.error("sim_task_failed", task=task.get_coro().__qualname__, reason=self.failure)
        self.failed.set()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.replay is not None and self.replay.clock is not None:
            self.replay.clock.close()  # we created sim.clock: we remove it
            self.replay.clock = None
        if self.replay is not None and self.replay.barrier is not None:
            self.replay.barrier.close()
        for s in list(self.hub.sessions):
            s.close()
        if self._router is not None:
            for h in list(self._router.handler_conns):
                h.close()
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
            self._ws_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- market sources -------------------------------------------------------------------------
    def publish_event(self, ev: GenEvent) -> None:
        """Send one generated event (already applied to the true book) to the streams."""
        ts = self.market.now_ms()
        feed = self.feed
        for tid, px, qty, bim in ev.trades:
            feed.trade(ev.symbol, tid, px, qty, bim, ts)
        feed.depth_event(ev.symbol, ev.first_u, ev.last_u, ev.prev_u, ev.bids, ev.asks, ts, ts)

    async def _run_generator(self) -> None:
        gen = self.generator
        assert gen is not None
        step, publish = gen.step, self.publish_event
        if self.config.generator.msg_rate <= 0:
            await self._run_generator_flat_out()
            return
        rate = self.config.generator.msg_rate
        t0 = time.monotonic()
        produced = 0
        while True:
            if not self.gate.running:
                await self.gate.wait()
                publish(step())
                produced += 1
                t0 = time.monotonic() - produced / rate  # resume without a burst
                continue
            due = int((time.monotonic() - t0) * rate) - produced
            if due <= 0:
                await asyncio.sleep(min(0.005, 1.0 / rate))
                continue
            if due > rate:
                # more than a second behind (paused loop, slow host): skip ahead, never burst
                t0 = time.monotonic() - produced / rate
                due = int(rate / 100) + 1
            # a slice, then the loop: order requests wait at most one slice behind a backlog
            # (4096 at a time held acks ~200 ms at 20 k events/s, the soak's wire_to_ack p99)
            n = min(due, GENERATOR_SLICE)
            for _ in range(n):
                publish(step())
            produced += n
            await asyncio.sleep(0)

    async def _run_generator_flat_out(self) -> None:
        """msg_rate <= 0: as fast as the slowest subscriber reads (throughput benchmarks)."""
        gen, hub = self.generator, self.hub
        assert gen is not None
        await hub.any_subscriber.wait()
        while True:
            if not self.gate.running:
                await self.gate.wait()
            elif hub.paused:
                await hub.wait_writable()
            for _ in range(256):
                self.publish_event(gen.step())
            await asyncio.sleep(0)

    async def _run_replay(self) -> None:
        assert self.replay is not None
        try:
            await self.replay.run()
        finally:
            self.done.set()

    async def _timers(self) -> None:
        """Interval depth streams, the mark-price model and the trading side's timers (listen-key
        expiry, dead-man countdowns), on a 10 ms tick (the exchange checks countdowns about every
        10 ms [D:Auto-Cancel-All-Open-Orders])."""
        next_mark = time.monotonic()
        interval = self.config.mark_interval_ms / 1000.0
        # generated market: a smoothed mid; replay: the recorded mark, else the mid (1.0)
        smoothing = self.config.generator.mark_smoothing if self.generator is not None else 1.0
        trading_timer = getattr(self.rest_handler, "on_timer", None)
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            e_ms = self.market.now_ms()
            self.feed.flush_aggregates(now, e_ms)
            self.feed.flush_partials(now, e_ms)
            if now >= next_mark:
                next_mark = now + interval
                self.market.update_marks(smoothing)
                self.feed.mark_tick(e_ms)
            if trading_timer is not None:
                trading_timer()

    async def _scheduled_fault(self, spec: FaultSpec) -> None:
        await asyncio.sleep(spec.after_s)
        while True:
            self.faults.arm(spec)
            if spec.every_s <= 0:
                return
            await asyncio.sleep(spec.every_s)

    # -- faults acting on sessions ----------------------------------------------------------------
    def _sessions_for(self, symbol: str) -> list:
        if not symbol:
            return list(self.hub.sessions)
        return [s for s in self.hub.sessions if any(stream_symbol(x) == symbol for x in s.streams)]

    def _disconnect(self, symbol: str) -> int:
        sessions = self._sessions_for(symbol)
        # market-stream connections only: the trading side has its own order-connection fault
        for s in sessions:
            s.close()
        return len(sessions)

    def _market_fault(self, fault: str, symbol: str, bps: float, seconds: float) -> int:
        """price_jump / wide_spread on the generated market (a replay plays what was recorded: 0)."""
        gen = self.generator
        if gen is None:
            return 0
        events = gen.jump(symbol, bps) if fault == "price_jump" else gen.widen(symbol, bps, seconds)
        for ev in events:
            self.publish_event(ev)
        return len(events)

    def _malformed(self, symbol: str, count: int) -> int:
        sessions = self._sessions_for(symbol)
        for s in sessions:
            stream = next(iter(s.streams), "btcusdt@depth@0ms")
            body = b'{"e":"depthUpdate","E":' if not s.combined else (
                b'{"stream":"' + stream.encode() + b'","data":{"e":"depthUpdate","E":')
            for _ in range(count):
                s.send_bytes(body)
        return len(sessions)

    def set_running(self, running: bool) -> None:
        """Pause or resume the market source; while paused the book and the streams stand still."""
        if running:
            self.gate.resume()
        else:
            self.gate.pause()
        log.info("source_resumed" if running else "source_paused")

    def stats(self) -> dict:
        out = self.faults.stats()
        out.update({
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "running": self.gate.running,
            "step_budget": self.gate.budget,
            "stepped": self.gate.stepped,
            "frames_sent": self.hub.frames_sent,
            "depth_events": self.feed.depth_events,
            "sessions": len(self.hub.sessions),
            "subscriptions": {k: len(v) for k, v in self.hub.subs.items()},
            "trace": self.trace.status(),
            "books": {s: {"last_u": b.last_u, "bids": len(b.bids), "asks": len(b.asks)}
                      for s, b in self.market.books.items() if b.bids or b.asks},
        })
        streams = getattr(self.rest_handler, "streams", None)
        if streams is not None:
            out["user_events_sent"] = streams.sent
        if self.replay is not None:
            out["replay"] = self.replay.stats()
            if self.replay.barrier is not None:
                out["replay"]["lockstep"] = self.replay.barrier.stats()
                if self.lockstep_gate is not None:
                    out["replay"]["lockstep"]["requests"] = self.lockstep_gate.requests
            if self.latency_model is not None:
                out["replay"]["latency"] = self.latency_model.describe()
        return out
