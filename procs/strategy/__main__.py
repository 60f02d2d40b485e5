"""strategy: runs strategy plugins on market data and writes their order intents.

``python -m procs.strategy [--config F] [--instance NAME]`` — consumes ``md.book``, ``md.trade``
(broadcast) and ``exec`` (gating, drained every cycle) as consumer "strategy", writes
``orders.strategy`` and ``strategy.signals``. The logic is ``procs.strategy.engine``; plugins live
in ``strategies/`` and are listed in ``[[strategy.strategies]]``.

Hot reload: SIGHUP (``supervisorctl signal HUP strategy``) or the control command ``Reload``
re-reads ``[strategy]`` and reloads changed strategy code; positions and open orders stay.
``CancelAll`` cancels the open orders of every strategy (of one symbol if given).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from procs.core import control, deploy, log
from procs.core.agent import apply_sched, freeze_gc, pin_cpu, run_agent
from procs.core.config import ConfigError, load_section
from procs.core.instruments import SIM_SESSION_FIELD, Instrument, load_exchange_info
from procs.core.status import State, StatusWriter
from procs.market_data.config import MarketDataConfig
from procs.strategy.config import StrategyEngineConfig
from procs.strategy.engine import Counter, Engine, Hist
from procs.strategy.loader import LoadError
from shm.counters import Counters
from shm.idle import BackoffIdle, BlockIdle, IdleStrategy, Waiter, make_idle
from shm.segment import DEFAULT_INSTANCE

PROC = "strategy"
CONTROL_POLL_NS = 20_000_000
_INFO_PATH = {"usdm": "/fapi/v1/exchangeInfo", "coinm": "/dapi/v1/exchangeInfo", "spot": "/api/v3/exchangeInfo"}


class StrategyAgent:
    """The engine plus the process's edges: SIGHUP, the control inbox, the status block."""

    name = PROC

    def __init__(self, engine: Engine, inbox: control.ControlInbox, status: StatusWriter, counters: Counters) -> None:
        self.engine = engine
        self.inbox = inbox
        self.status = status
        self.counters = counters
        self.hup = False
        self._next_ctl = 0

    def on_hup(self, _signum: int, _frame: object = None) -> None:
        self.hup = True

    def on_start(self) -> None:
        self._set_config_hash()

    def do_work(self) -> int:
        n = self.engine.do_work()
        if self.hup:
            self.hup = False
            self._reload("", "sighup")
        now = time.monotonic_ns()
        if now >= self._next_ctl:
            self._next_ctl = now + CONTROL_POLL_NS
            for cmd in self.inbox.poll():
                self.counters.inc(Counter.CONTROL_COMMANDS)
                self._command(cmd)
        return n

    def _command(self, cmd: control.Command) -> None:
        log.info("control_command", command=type(cmd).__name__, operator=cmd.operator)
        match cmd:
            case control.Reload(target=target):
                self._reload(target, "control")
            case control.CancelAll(symbol=symbol):
                sid = self.engine.symbols.index(symbol) if symbol in self.engine.symbols else -1
                if symbol and sid < 0:
                    log.warn("cancel_all_unknown_symbol", symbol=symbol)
                    return
                n = self.engine.cancel_everything(sid)
                log.info("open_orders_cancelled", count=n, symbol=symbol or "*", reason="control")
            case control.Shutdown():
                os.kill(os.getpid(), signal.SIGTERM)  # the runner's stop flag: finish the batch, stop cleanly
            case control.Ping():
                log.info("pong", versions=len(self.engine.versions))
            case _:
                log.info("control_ignored", command=type(cmd).__name__, reason="not a strategy command")

    def _reload(self, target: str, source: str) -> None:
        if self.engine.reload(target, source):
            self._set_config_hash()

    def _set_config_hash(self) -> None:
        v = self.engine.versions[-1]["config_hash"] if self.engine.versions else ""
        w = self.status.w  # the status block shows the applied [strategy] version, not the file's
        w.begin()
        self.status.rec["config_hash"][0] = v.encode()[:16]
        w.end()

    def on_close(self) -> None:
        self.engine.close()


def load_instruments(cfg: StrategyEngineConfig, md: MarketDataConfig,
                     stop: list[bool]) -> tuple[dict[str, Instrument], str]:
    """exchangeInfo from [strategy].exchange_info, [market_data].exchange_info or the venue's
    REST: the instruments, and the simulator session that answered ("" for a file or a real
    venue; see Engine's ``venue_session``)."""
    path = cfg.exchange_info or md.exchange_info
    if path:
        return load_exchange_info(path), ""
    url = md.rest_url.rstrip("/") + _INFO_PATH[md.kind]
    delay = 0.2
    while not stop[0]:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                info = json.loads(r.read())
                return load_exchange_info(info), str(info.get(SIM_SESSION_FIELD, ""))
        except (OSError, ValueError) as exc:
            log.once("exchange_info_err", "warn", "exchange_info_failed", url=url, reason=repr(exc),
                      action="retrying")
        time.sleep(delay)
        delay = min(5.0, delay * 2)
    raise InterruptedError("stopped while waiting for exchangeInfo")


def make_engine_idle(cfg: StrategyEngineConfig, waiter: Waiter,
                     on_wake: Callable[[], object] | None = None) -> IdleStrategy:
    """The engine's idle strategy; ``on_wake`` (``Engine.on_wake``) hears each producer's wake-up."""
    idle = make_idle(cfg.idle, waiter)
    if isinstance(idle, (BackoffIdle, BlockIdle)):
        park_ms = cfg.timer_resolution_ms  # a parked agent still fires its timers on time
        if cfg.keep_warm_ms > 0:
            park_ms = min(park_ms, cfg.keep_warm_ms)  # and keeps its hot path warm (Engine.keep_warm)
        idle.timeout_s = park_ms / 1000.0
        idle.on_wake = on_wake
    return idle


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="strategy", description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    config_path = a.config
    early_hup = [False]  # a SIGHUP before the agent runs must not kill us (its default action)
    signal.signal(signal.SIGHUP, lambda *_: early_hup.__setitem__(0, True))

    def read_config() -> StrategyEngineConfig:
        return load_section(config_path, PROC, StrategyEngineConfig)

    try:
        cfg = read_config()
        md = load_section(config_path, "market_data", MarketDataConfig)
        symbols, depth = deploy.symbols(config_path), deploy.depth(config_path)
    except ConfigError as exc:
        print(f"strategy: {exc}", file=sys.stderr)
        return 2
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    try:
        instruments, session = load_instruments(cfg, md, stop)
    except InterruptedError:
        return 0
    except (OSError, ValueError) as exc:
        print(f"strategy: cannot load exchangeInfo: {exc}", file=sys.stderr)
        return 2
    cpu = pin_cpu(cfg.cpu)
    status = StatusWriter(a.instance, PROC, cpu, "")
    counters = Counters.create(a.instance, PROC, Counter, Hist)
    waiter = Waiter(a.instance, PROC)
    inbox = control.ControlInbox(a.instance, PROC)
    engine = Engine(cfg, a.instance, symbols, instruments, depth, counters, read_config=read_config, waiter=waiter,
                    venue_session=session)
    agent = StrategyAgent(engine, inbox, status, counters)
    signal.signal(signal.SIGHUP, agent.on_hup)
    agent.hup = early_hup[0]  # the config may have changed while we waited for exchangeInfo
    try:
        try:
            engine.open()
        except (ConfigError, LoadError, ValueError) as exc:
            log.error("strategy_start_failed", reason=str(exc))
            print(f"strategy: {exc}", file=sys.stderr)
            engine.close()
            status.set_state(State.FAILED)
            return 2
        log.info("gc_frozen", objects=freeze_gc())  # start-up objects: never walked again
        apply_sched(cfg.sched)  # after loading the strategies: imports do not run real-time
        log.info("strategy_started", instance=a.instance, strategies=sorted(engine.slots), symbols=symbols,
                 config=str(Path(config_path).resolve()) if config_path else "defaults", idle=cfg.idle)
        return run_agent(agent, make_engine_idle(cfg, waiter, engine.on_wake), status, on_heartbeat=lambda: _beat(engine, counters))
    finally:
        inbox.close()
        waiter.close()
        counters.close()
        status.close()


def _beat(engine: Engine, counters: Counters) -> None:
    engine.heartbeat()
    counters.heartbeat()


if __name__ == "__main__":
    sys.exit(main())
