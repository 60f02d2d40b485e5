"""execution: order intents in, exchange orders out, OrderEvents (journaled first) back.

``python -m procs.execution [--config F] [--instance NAME]`` — consumes ``orders.strategy`` and
``orders.manual`` (as consumer ``execution``), checks each new order against ``risk.state``,
sends it over the exchange's WebSocket API (REST as fallback), follows it through the
user-data stream and publishes ``OrderEvent`` records to ``exec``. On start it rebuilds its
orders from the journal and reconciles them with the exchange before it reads any intent.
The logic lives in ``procs.execution``; this module wires it to the loop, the rings and the signals.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from procs.core import deploy, log
from procs.core import messages as M
from procs.core.agent import apply_sched, freeze_gc, pin_cpu
from procs.core.config import ConfigError, config_hash, load_section
from procs.core.control import CancelAll, ControlInbox, Ping, Shutdown
from procs.core.instruments import Instrument, load_exchange_info
from procs.core.registry import EXEC, alerts_name, build_registry
from procs.core.status import State, StatusWriter
from procs.execution import recovery
from procs.execution.config import ExecutionConfig
from procs.execution.counters import Counter, Hist
from procs.execution.credentials import load_credentials
from procs.execution.engine import Engine, EventSink
from procs.execution.intake import Intake
from procs.execution.journal import Journal, default_path, read_journal
from procs.execution.limiter import RateLimiter
from procs.execution.risksource import RiskSource, risk_alert
from procs.execution.transport import RestTransport, WsApiTransport
from procs.execution.userstream import UserStream
from shm.counters import Counters
from shm.ring import Consumer
from shm.segment import DEFAULT_INSTANCE

TICK_S = 0.02  # housekeeping: heartbeat, batch fsync, control inbox, lazy attaches


async def fetch_exchange_info(rest: RestTransport, cfg: ExecutionConfig) -> dict:
    delay = cfg.reconnect_min_s
    while True:
        r = await rest.call("GET", "/fapi/v1/exchangeInfo", signed=False)
        if r.outcome == 0 and isinstance(r.data, dict):
            return r.data
        log.once("exchange_info_failed", "warn", "exchange_info_failed", http=r.http, msg=r.msg)
        await asyncio.sleep(delay)
        delay = min(cfg.reconnect_max_s, delay * 2)


class _Stopped(Exception):
    """SIGTERM/Shutdown arrived while start-up was still waiting on the exchange."""


async def until_stop(stop: asyncio.Event, coro: Any) -> Any:
    """Await ``coro`` unless ``stop`` is set first (then cancel it and raise _Stopped)."""
    task = asyncio.ensure_future(coro)
    waiter = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        return task.result()
    task.cancel()
    raise _Stopped


async def amain(cfg: ExecutionConfig, instance: str, symbols: list[str], depth: int, chash: str) -> int:
    cpu = pin_cpu(cfg.cpu)
    status = StatusWriter(instance, "execution", cpu, chash)
    counters = Counters.create(instance, "execution", Counter, Hist)
    registry = build_registry(depth)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    creds = load_credentials(cfg)
    rest = RestTransport(cfg.rest_url, creds, cfg.recv_window_ms, cfg.request_timeout_s)
    try:
        info = await until_stop(stop, fetch_exchange_info(rest, cfg))
    except _Stopped:
        await rest.close()
        status.set_state(State.STOPPED)
        counters.close()
        status.close()
        return 0
    by_symbol = load_exchange_info(info)
    instruments: list[Instrument | None] = [by_symbol.get(s) for s in symbols]
    for s, i in zip(symbols, instruments, strict=True):
        if i is None:
            log.warn("symbol_not_listed", symbol=s)
    limiter = RateLimiter(info.get("rateLimits", []), cfg.limiter_safety, cfg.backoff_429_s, cfg.backoff_429_max_s)
    jpath = Path(cfg.journal or default_path(instance))
    records, good = read_journal(jpath)
    journal = Journal(jpath, cfg.fsync, cfg.fsync_interval_ms)
    producer = registry.producer(instance, EXEC)
    sink = EventSink(producer, lambda: counters.inc(Counter.EXEC_FULL_WAITS))
    alerts = registry.producer(instance, alerts_name("execution"))

    def risk_changed(up: bool, why: str) -> None:
        level, code, text = risk_alert(up, why, cfg.risk_required)
        alerts.try_publish(time.time_ns(), level, code, -1, 0.0, text.encode()[:88])

    risk = RiskSource(registry, instance, cfg.risk_required, cfg.risk_stale_s, risk_changed)
    ws = None
    if cfg.transport == "ws":
        ws = WsApiTransport(cfg.ws_api_url, creds, cfg.reconnect_min_s, cfg.reconnect_max_s,
                            on_state=lambda up: counters.inc(Counter.WS_RECONNECTS) if up else None)
    engine = Engine(cfg, instruments, journal, sink, counters, risk, rest, ws, limiter)
    recovery.rebuild(engine, records)
    if good > cfg.journal_rotate_mb * 1e6:
        journal.close()
        recovery.compact(engine, jpath)
        journal = engine.journal = Journal(jpath, cfg.fsync, cfg.fsync_interval_ms)
    recovery.start_epoch(engine)
    journal.start_syncer()  # batch fsync off the loop
    log.info("gc_frozen", objects=freeze_gc())  # start-up objects: never walked again
    apply_sched(cfg.sched)  # after recovery: the rebuild and compaction do not run real-time
    log.info("journal_rebuilt", path=str(jpath), records=len(records), epoch=engine.epoch,
             open_orders=len(engine.store.open), processed_seq=engine.processed_seq)

    def fix_seq(ring: int, consumer: Consumer) -> None:
        # a ring re-created since the journal was written starts again at 0 (recovery.attach_ring)
        recovery.attach_ring(engine, ring, consumer.position, consumer.created_ns)

    failed: list[BaseException] = []

    def fail(exc: BaseException) -> None:  # a broken invariant: exit 1 so supervisord restarts us
        failed.append(exc)
        stop.set()

    intake = Intake(registry, instance, engine.on_intent, lambda: engine.ready, cfg.intent_wait, fix_seq, cfg.idle,
                    fail, on_prewake=engine.warm if cfg.warm_on_prewake else None)
    inbox = ControlInbox(instance, "execution")
    stream = UserStream(rest, cfg.ws_stream_url, engine.on_stream_event, engine.on_stream_connected,
                        cfg.listen_key_keepalive_s, cfg.reconnect_min_s, cfg.reconnect_max_s)
    if ws is not None:
        ws.start()
    stream.start()
    next_attach = next_prune = 0.0
    halted = False
    warm_seen = -1

    def keep_warm() -> None:
        nonlocal warm_seen
        if stop.is_set():
            return  # shutting down: the journal may be closed already
        if engine.work == warm_seen and not intake.spinning():
            # quiet for a whole period, and no wake-up just now (a prewake's intent would wait
            # behind the scratch run): run the intent -> request path on scratch data
            engine.warm()
        warm_seen = engine.work
        loop.call_later(cfg.keep_warm_ms / 1000, keep_warm)

    if cfg.keep_warm_ms > 0:
        loop.call_later(cfg.keep_warm_ms / 1000, keep_warm)

    def tick() -> None:
        nonlocal next_attach, next_prune, halted
        if stop.is_set():
            return  # shutting down: the segments and the journal close under a tick still scheduled
        now = time.monotonic()
        risk.check()  # a dead or silent risk: new orders denied until it is back (procs.execution.risksource)
        if engine.ready:
            # Entering HALTED cancels everything here too, not only when risk's CancelAll
            # arrives: a lost or late command must not leave an order working (risk writes the
            # state before it sends the command; this covers the command never coming).
            was, halted = halted, risk().trading_state == M.HALTED
            if halted and not was:
                n = engine.cancel_all()
                log.info("cancel_all", operator="risk.state", symbol="", orders=n, trading_state=M.HALTED)
        status.beat(engine.work)
        counters.heartbeat()
        producer.heartbeat()
        alerts.heartbeat()
        journal.maybe_sync()
        intake.poke()
        engine.sweep_timeouts()
        counters.set(Counter.OPEN_ORDERS, len(engine.store.open))
        if now >= next_prune:
            engine.prune(time.monotonic_ns(), cfg.forget_closed_s)
            next_prune = now + 5.0
        for cmd in inbox.poll():
            if isinstance(cmd, CancelAll):
                sid = engine.sym_id.get(cmd.symbol) if cmd.symbol else None
                n = engine.cancel_all(None, sid)
                log.info("cancel_all", operator=cmd.operator, symbol=cmd.symbol, orders=n,
                         trading_state=risk().trading_state)
            elif isinstance(cmd, Shutdown):
                log.info("shutdown_requested", operator=cmd.operator)
                stop.set()
            elif not isinstance(cmd, Ping):
                log.once(f"control_ignored:{type(cmd).__name__}", "info", "control_ignored", command=type(cmd).__name__)
        if inbox.bad:
            counters.set(Counter.BAD_CONTROL, inbox.bad)
        if now >= next_attach:
            intake.attach_missing()
            next_attach = now + 0.2
        if not stop.is_set():
            loop.call_later(TICK_S, tick)

    tick()
    intake.start()
    try:
        if ws is not None:
            try:
                await asyncio.wait_for(ws.up.wait(), 2)
            except TimeoutError:
                log.warn("ws_api_not_up", url=cfg.ws_api_url, detail="reconciling over REST")
        try:
            await asyncio.wait_for(stream.up.wait(), 5)
        except TimeoutError:
            log.warn("user_stream_not_up", url=cfg.ws_stream_url)
        stats = await until_stop(stop, engine.reconcile())
        log.info("reconciled", **stats)
        engine.ready = True
        counters.set(Counter.RECOVERED, 1)
        status.set_state(State.RUNNING)
        intake.kick()
        log.info("execution_started", instance=instance, symbols=symbols, transport=cfg.transport,
                 intent_wait=cfg.intent_wait, journal=str(jpath), fsync=cfg.fsync, epoch=engine.epoch)
        await stop.wait()
    except _Stopped:
        log.info("stopped_before_ready")
    finally:
        status.set_state(State.STOPPING)
        intake.close()
        deadline = time.monotonic() + 1.0
        while engine.pending() and time.monotonic() < deadline:  # let in-flight answers land in the journal
            await asyncio.sleep(0.01)
        await engine.close()
        sink.drain(1.0)
        journal.close()
        await stream.close()
        if ws is not None:
            await ws.close()
        await rest.close()
        risk.close()
        alerts.close()
        inbox.close()
        producer.close()
        status.set_state(State.FAILED if failed else State.STOPPED)
        counters.close()
        status.close()
    log.info("execution_stopped", work=engine.work, failed=bool(failed))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="execution", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process("execution")
    try:
        cfg = load_section(a.config, "execution", ExecutionConfig)
        symbols = deploy.symbols(a.config)
        depth = deploy.depth(a.config)
    except ConfigError as exc:
        print(f"execution: {exc}", file=sys.stderr)
        return 2
    try:
        return uvloop.run(amain(cfg, a.instance, symbols, depth, config_hash(a.config)))
    except (ValueError, aiohttp.ClientError) as exc:
        log.error("execution_failed", reason=str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
