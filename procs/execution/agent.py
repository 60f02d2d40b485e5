"""The execution agent: the engine wired to the loop, the rings, the exchange and the control inbox.

``start`` is the start-up work (the venue's instruments, the journal rebuilt and compacted, a new
epoch); ``serve`` connects the venue's order gateway (requests and the account's stream), reconciles,
then lets intents in (RUNNING) until the stop; ``on_close`` lets in-flight answers land in the
journal and closes everything (``procs.core.async_agent.run_async_process`` runs it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs.core import deploy, log
from procs.core import messages as M
from procs.core.async_agent import AsyncRun
from procs.core.config import load_section
from procs.core.control import CancelAll, ControlInbox, Ping, Reload, Shutdown
from procs.core.instruments import Instrument
from procs.core.registry import EXEC, RingCapacities, alerts_name, build_registry
from procs.core.reload import Reloader
from procs.venue.adapters import info_in_thread, open_venue, venue_config
from procs.venue.config import VenueConfig
from procs.venue.protocols import OrderGateway, Venue
from shm.counters import Counters
from shm.registry import Registry
from shm.ring import Consumer, Producer

from . import recovery
from .config import ExecutionConfig
from .counters import Counter, Hist
from .engine import Engine, EventSink
from .intake import Intake
from .journal import Journal, default_path, read_journal
from .limiter import RateLimiter
from .risksource import RiskSource, risk_alert

ALERT_JOURNAL_FULL = 3  # alerts.execution codes (1, 2: risk lost/back, procs/execution/risksource.py)
ALERT_JOURNAL_BACK = 4

PROC = "execution"
TICK_S = 0.02  # housekeeping: batch fsync, control inbox, risk liveness, timeouts, lazy attaches
ATTACH_EVERY_S = 0.2
PRUNE_EVERY_S = 5.0
CLOSE_WAIT_S = 1.0  # at the stop, how long in-flight answers may take to land in the journal
CANCEL_WAIT_S = 5.0  # at the stop (cancel_on_stop), how long the cancels may take


@dataclass(frozen=True)
class ExecutionSettings:
    """What the execution process reads from the config file, checked before it starts."""

    execution: ExecutionConfig
    venue: VenueConfig
    symbols: list[str]
    depth: int
    rings: RingCapacities
    config_path: str | None = None  # what a reload reads

    @classmethod
    def load(cls, config_path: str | None) -> ExecutionSettings:
        """Raises ConfigError naming the file, section, field and reason."""
        return cls(load_section(config_path, PROC, ExecutionConfig), venue_config(config_path),
                   *deploy.load(config_path).shared(), config_path)


@dataclass
class Parts:
    """What ``start`` builds before the engine exists (closed by ``ExecutionAgent.on_close``)."""

    counters: Counters
    registry: Registry
    gateway: OrderGateway | None = None
    producer: Producer | None = None
    alerts: Producer | None = None
    risk: RiskSource | None = None


class ExecutionAgent:
    """Everything execution runs, built by ``start``."""

    name = PROC

    def __init__(self, cfg: ExecutionConfig, instance: str, symbols: list[str], parts: Parts, engine: Engine,
                 sink: EventSink, journal_path: Path, run: AsyncRun, config_path: str | None = None,
                 restarted: bool = False) -> None:
        assert parts.producer is not None and parts.alerts is not None and parts.risk is not None
        assert parts.gateway is not None
        self.cfg = cfg
        self.instance = instance
        self.symbols = symbols
        self.parts = parts
        self.counters = parts.counters
        self.gateway = parts.gateway
        self.producer = parts.producer
        self.alerts = parts.alerts
        self.risk = parts.risk
        self.engine = engine
        self.sink = sink
        self.journal_path = journal_path
        self.run = run
        self.restarted = restarted  # the journal held an earlier run's records
        self.intake = Intake(parts.registry, instance, engine.on_intent, lambda: engine.ready, cfg.intent_wait,
                             self._fix_seq, cfg.runtime.idle, run.fail, on_prewake=engine.warm if cfg.warm_on_prewake else None)
        self.inbox = ControlInbox(instance, PROC)
        # SIGHUP or Reload: every [execution] field is read once, at start; a reload that changes
        # one is refused naming it, one that changes none is kept as the version running
        self.reloader = Reloader(config_path, instance, PROC, PROC, ExecutionConfig, cfg)
        self._halted = False
        self._journal_low = False
        self._warm_seen = -1
        self._next_attach = self._next_prune = 0.0

    def _fix_seq(self, ring: int, consumer: Consumer) -> None:
        # a ring re-created since the journal was written starts again at 0 (recovery.attach_ring)
        recovery.attach_ring(self.engine, ring, consumer.position, consumer.created_ns)

    # -- in service -------------------------------------------------------------------------
    async def serve(self, run: AsyncRun) -> None:
        """Connect, reconcile with the exchange, then let intents in until the stop."""
        cfg, engine = self.cfg, self.engine
        self.gateway.start(engine.on_report, engine.on_stream_connected)
        if cfg.runtime.keep_warm_ms > 0:
            run.every(cfg.runtime.keep_warm_ms / 1000, self.keep_warm)
        run.every(TICK_S, self.tick, first_after=0)
        self.intake.start()
        await self.gateway.wait_up()
        stats = await run.until_stop(recovery.reconcile(engine))
        log.info("reconciled", **stats)
        if self.restarted:
            # a strategy that lived through our restart learns what we hold now: an order whose
            # events were lost with us is no longer managed as open by it (docs/decisions/040)
            engine.report_orders(M.SOURCE_STRATEGY)
        engine.ready = True
        self.counters.set(Counter.RECOVERED, 1)
        run.running()
        self.intake.kick()
        run.on_hangup(self.reload)
        log.info("execution_started", instance=self.instance, symbols=self.symbols, transport=cfg.transport,
                 intent_wait=cfg.intent_wait, journal=str(self.journal_path), fsync=cfg.fsync, epoch=engine.epoch)
        await run.stop.wait()

    def keep_warm(self) -> None:
        """Quiet for a whole period, and no wake-up just now (a prewake's intent would wait behind
        the scratch run): run the intent -> request path on scratch data."""
        engine = self.engine
        if engine.work == self._warm_seen and not self.intake.spinning():
            engine.warm()
        self._warm_seen = engine.work

    def tick(self) -> None:
        """Housekeeping every ``TICK_S`` on the loop."""
        engine = self.engine
        now = time.monotonic()
        self.risk.check()  # a dead or silent risk: new orders denied until it is back (risksource)
        if engine.ready:
            # Entering HALTED cancels everything here too, not only when risk's CancelAll
            # arrives: a lost or late command must not leave an order working (risk writes the
            # state before it sends the command; this covers the command never coming).
            was, self._halted = self._halted, self.risk().trading_state == M.HALTED
            if self._halted and not was:
                n = engine.cancel_all()
                log.info("cancel_all", operator="risk.state", symbol="", orders=n, trading_state=M.HALTED)
            engine.dead_man.tick(engine.open_symbols())
        engine.journal.maybe_sync()
        self._journal_room()
        self.intake.poke()
        engine.sweep_timeouts()
        self.counters.set(Counter.OPEN_ORDERS, len(engine.store.open))
        self.counters.set(Counter.RATE_LIMIT_USED_PERMILLE, int(engine.limiter.usage(int(time.time() * 1000)) * 1000))
        if now >= self._next_prune:
            engine.prune(time.monotonic_ns(), self.cfg.forget_closed_s)
            self._next_prune = now + PRUNE_EVERY_S
        for cmd in self.inbox.poll():
            self._command(cmd)
        if self.inbox.bad:
            self.counters.set(Counter.BAD_CONTROL, self.inbox.bad)
        if now >= self._next_attach:
            self.intake.attach_missing()
            self._next_attach = now + ATTACH_EVERY_S

    def _journal_room(self) -> None:
        """A full disk under the journal: new orders are denied until it has room (said once
        each way, in the log and on alerts.execution)."""
        journal = self.engine.journal
        if journal.low:
            journal.retry_room()
        if journal.low == self._journal_low:
            return
        self._journal_low = journal.low
        self.counters.set(Counter.JOURNAL_LOW, int(journal.low))
        if journal.low:
            text = f"journal disk full: new orders denied (journal_full); {journal.room} bytes kept for open orders"
            log.error("journal_full", path=str(self.journal_path), room=journal.room,
                      action="new orders denied until the disk has room")
            self.alerts.try_publish(time.time_ns(), M.ALERT_CRITICAL, ALERT_JOURNAL_FULL, -1, 0.0, text.encode()[:88])
        else:
            log.info("journal_room_back", path=str(self.journal_path), room=journal.room)
            self.alerts.try_publish(time.time_ns(), M.ALERT_INFO, ALERT_JOURNAL_BACK, -1, 0.0,
                                    b"journal has room again: new orders accepted")

    def _command(self, cmd: object) -> None:
        if isinstance(cmd, CancelAll):
            sid = self.engine.sym_id.get(cmd.symbol) if cmd.symbol else None
            n = self.engine.cancel_all(None, sid)
            log.info("cancel_all", operator=cmd.operator, symbol=cmd.symbol, orders=n,
                     trading_state=self.risk().trading_state)
        elif isinstance(cmd, Shutdown):
            log.info("shutdown_requested", operator=cmd.operator)
            self.run.request_stop()
        elif isinstance(cmd, Reload):
            self.reload(cmd.source, cmd.operator, cmd.reason)
        elif not isinstance(cmd, Ping):
            name = type(cmd).__name__
            log.once(f"control_ignored:{name}", "info", "control_ignored", command=name)

    def reload(self, source: str = "", operator: str = "", reason: str = "") -> None:
        got = self.reloader.take(operator)
        if got is None:
            return
        cfg, data = got
        self.run.status.set_config_hash(self.reloader.applied(cfg, data, source, operator, reason))

    def work(self) -> int:
        return self.engine.work

    def on_heartbeat(self) -> None:
        self.counters.heartbeat()
        self.producer.heartbeat()
        self.alerts.heartbeat()

    async def on_close(self) -> None:
        """Cancel everything (``cancel_on_stop``) and disarm the dead-man switch; let in-flight
        answers land in the journal, then close in dependency order."""
        engine = self.engine
        self.intake.close()
        if engine.ready and engine.dead_man.enabled and self.cfg.cancel_on_stop and engine.store.open:
            n = engine.cancel_all()
            deadline = time.monotonic() + CANCEL_WAIT_S
            while engine.store.open and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            log.info("cancel_on_stop", orders=n, left_open=len(engine.store.open))
        deadline = time.monotonic() + CLOSE_WAIT_S
        while engine.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if engine.ready and not engine.store.open:  # disarmed only once nothing is left for it to guard
            engine.dead_man.disarm_all()
        while engine.dead_man.busy and time.monotonic() < deadline + CLOSE_WAIT_S:
            await asyncio.sleep(0.01)
        await engine.close()
        self.sink.drain(1.0)
        engine.journal.close()
        self.inbox.close()
        await close_parts(self.parts)


async def close_parts(parts: Parts) -> None:
    if parts.gateway is not None:
        await parts.gateway.close()
    for part in (parts.risk, parts.alerts, parts.producer, parts.counters):
        if part is not None:
            part.close()


async def start(settings: ExecutionSettings, instance: str, run: AsyncRun) -> ExecutionAgent:
    """The venue's instruments, the journal rebuilt (and compacted when over
    ``journal_rotate_mb``), a new epoch. A stop meanwhile (cancelled) or a failure closes what was
    opened; credentials the venue cannot find are a ValueError naming the source (exit 2)."""
    venue = open_venue(settings.venue)
    signer = venue.signer()
    parts = Parts(Counters.create(instance, PROC, Counter, Hist), build_registry(settings.depth, settings.rings))
    try:
        return await _build(settings, instance, run, parts, venue, signer)
    except BaseException:
        await close_parts(parts)
        raise


async def _build(settings: ExecutionSettings, instance: str, run: AsyncRun, parts: Parts, venue: Venue,
                 signer: Any) -> ExecutionAgent:
    cfg = settings.execution
    counters, registry = parts.counters, parts.registry
    info = await info_in_thread(venue, run.stop.is_set)
    assert info is not None  # retried until it answers; a stop meanwhile cancels this await
    by_symbol = info.instruments
    instruments: list[Instrument | None] = [by_symbol.get(s) for s in settings.symbols]
    for s, i in zip(settings.symbols, instruments, strict=True):
        if i is None:
            log.warn("symbol_not_listed", symbol=s)
    limiter = RateLimiter(info.rate_limits, cfg.limiter_safety, cfg.backoff_429_s, cfg.backoff_429_max_s)
    journal_path = Path(cfg.journal or default_path(instance))
    records, good = read_journal(journal_path)
    producer = parts.producer = registry.producer(instance, EXEC)
    sink = EventSink(producer, lambda: counters.inc(Counter.EXEC_FULL_WAITS))
    alerts = parts.alerts = registry.producer(instance, alerts_name(PROC))

    def risk_changed(up: bool, why: str) -> None:
        level, code, text = risk_alert(up, why, cfg.risk_required)
        alerts.try_publish(time.time_ns(), level, code, -1, 0.0, text.encode()[:88])

    risk = parts.risk = RiskSource(registry, instance, cfg.risk_required, cfg.risk_stale_s, risk_changed)
    gateway = parts.gateway = venue.order_gateway(
        signer, prefer_ws=cfg.transport == "ws", request_timeout_s=cfg.request_timeout_s,
        reconnect_min_s=cfg.reconnect_min_s, reconnect_max_s=cfg.reconnect_max_s,
        on_connection=lambda up: counters.inc(Counter.WS_RECONNECTS) if up else None)
    grow = int(cfg.journal_grow_mb * (1 << 20))
    journal = Journal(journal_path, cfg.fsync, cfg.fsync_interval_ms, grow)
    engine = Engine(cfg, instruments, journal, sink, counters, risk, gateway, limiter, instance)
    try:
        recovery.rebuild(engine, records)
        recovery.republish_unpublished(engine, records, recovery.published_through(producer))
        if good > cfg.journal_rotate_mb * 1e6:
            journal.close()
            recovery.compact(engine, journal_path)
            journal = engine.journal = Journal(journal_path, cfg.fsync, cfg.fsync_interval_ms, grow)
        recovery.start_epoch(engine)
        journal.start_syncer()  # batch fsync off the loop
    except BaseException:
        engine.journal.close()
        raise
    log.info("journal_rebuilt", path=str(journal_path), records=len(records), epoch=engine.epoch,
             open_orders=len(engine.store.open), processed_seq=engine.processed_seq)
    return ExecutionAgent(cfg, instance, settings.symbols, parts, engine, sink, journal_path, run, settings.config_path,
                          restarted=bool(records))
