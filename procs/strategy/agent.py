"""The strategy agent: the engine plus the process's edges (SIGHUP, the control inbox, the status
block), and ``start`` that builds it once the venue's instruments are in
(``procs.core.agent.run_process`` runs it).

Hot reload: SIGHUP (``supervisorctl signal HUP strategy``) or the control command ``Reload``
re-reads ``[strategy]`` and reloads changed strategy code; positions and open orders stay.
``CancelAll`` cancels the open orders of every strategy (of one symbol if given).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procs.core import control, deploy, log
from procs.core.agent import NoStatus, StartFailed, Startup
from procs.core.config import load_section
from procs.core.registry import RingCapacities
from procs.core.reload import Hangup, Reloader
from procs.core.status import StatusWriter
from procs.venue.adapters import open_venue, venue_config
from procs.venue.config import VenueConfig
from shm.counters import Counters
from shm.idle import BackoffIdle, BlockIdle, IdleStrategy, Waiter, make_idle

from .config import StrategyEngineConfig
from .engine import Counter, Engine, Hist

PROC = "strategy"
CONTROL_POLL_NS = 20_000_000


@dataclass(frozen=True)
class StrategySettings:
    """What the strategy process reads from the config file, checked before it starts."""

    config_path: str | None
    engine: StrategyEngineConfig
    venue: VenueConfig
    symbols: list[str]
    depth: int
    rings: RingCapacities

    @classmethod
    def load(cls, config_path: str | None) -> StrategySettings:
        """Raises ConfigError naming the file, section, field and reason."""
        return cls(config_path, load_section(config_path, PROC, StrategyEngineConfig),
                   venue_config(config_path),
                   *deploy.load(config_path).shared())

    def read_engine_config(self) -> StrategyEngineConfig:
        """``[strategy]`` as the file says now (a reload reads it again)."""
        return load_section(self.config_path, PROC, StrategyEngineConfig)


class StrategyAgent:
    """The engine plus the process's edges: SIGHUP, the control inbox, the status block."""

    name = PROC

    def __init__(self, engine: Engine, inbox: control.ControlInbox, status: StatusWriter | NoStatus, counters: Counters,
                 waiter: Waiter, hangup: Hangup, idle: IdleStrategy, config_path: str | None = None,
                 reloader: Reloader | None = None) -> None:
        self.engine = engine
        self.inbox = inbox
        self.status = status
        self.counters = counters
        self.waiter = waiter
        self.hangup = hangup
        self.idle = idle
        self.config_path = config_path
        # [strategy] from the file on SIGHUP or Reload, checked (restart-only fields) and kept as a version
        self.reloader = reloader or Reloader(config_path, None, PROC, PROC, StrategyEngineConfig, engine.cfg)
        self._next_ctl = 0

    def on_start(self) -> None:
        """Load the strategies (a bad one: ConfigError/LoadError, the runner exits 2)."""
        self.engine.open()
        log.info("strategy_started", instance=self.engine.instance, strategies=sorted(self.engine.slots),
                 symbols=self.engine.symbols, idle=self.engine.cfg.runtime.idle,
                 config=str(Path(self.config_path).resolve()) if self.config_path else "defaults")

    def do_work(self) -> int:
        n = self.engine.do_work()
        if self.hangup.take():
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
            case control.Reload(target=target, source=source, operator=operator, reason=reason):
                self._reload(target, "control", source, operator, reason)
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

    def _reload(self, target: str, trigger: str, source: str = "", operator: str = "", reason: str = "") -> None:
        got = self.reloader.read()
        if isinstance(got, str):
            self.counters.inc(Counter.RELOAD_FAILURES)
            log.error("reload_failed", target=target or "*", reason=got, kept="previous version")
            return
        cfg, data = got
        self.engine.read_config = lambda: cfg  # the engine applies exactly what was checked and is kept
        if self.engine.reload(target, trigger):
            # the status block shows the file version now running (procs.core.versions)
            self.status.set_config_hash(self.reloader.applied(cfg, data, source, operator, reason or trigger))

    def on_heartbeat(self) -> None:
        self.engine.heartbeat()
        self.counters.heartbeat()

    def on_close(self) -> None:
        self.engine.close()
        self.inbox.close()
        self.waiter.close()
        self.counters.close()


def make_engine_idle(cfg: StrategyEngineConfig, waiter: Waiter,
                     on_wake: Callable[[], object] | None = None) -> IdleStrategy:
    """The engine's idle strategy; ``on_wake`` (``Engine.on_wake``) hears each producer's wake-up."""
    idle = make_idle(cfg.runtime.idle, waiter)
    if isinstance(idle, (BackoffIdle, BlockIdle)):
        park_ms = cfg.timer_resolution_ms  # a parked agent still fires its timers on time
        if cfg.runtime.keep_warm_ms > 0:
            park_ms = min(park_ms, cfg.runtime.keep_warm_ms)  # and keeps its hot path warm (Engine.keep_warm)
        idle.timeout_s = park_ms / 1000.0
        idle.on_wake = on_wake
    return idle


def start(settings: StrategySettings, instance: str, hangup: Hangup, startup: Startup) -> StrategyAgent | None:
    """Build the agent once the venue's instruments are in; None when a stop came first."""
    cfg = settings.engine
    try:
        # the instruments, and the venue session that answered ("" for a file or a real venue;
        # see Engine's ``venue_session``)
        info = open_venue(settings.venue).info(lambda: startup.stopping)
    except (OSError, ValueError) as exc:
        raise StartFailed(f"cannot load the instrument list: {exc}") from exc
    if info is None:
        return None
    instruments, session = info.instruments, info.session
    counters = Counters.create(instance, PROC, Counter, Hist)
    waiter = Waiter(instance, PROC)
    inbox = control.ControlInbox(instance, PROC)
    engine = Engine(cfg, instance, settings.symbols, instruments, settings.depth, counters, rings=settings.rings,
                    read_config=settings.read_engine_config, waiter=waiter, venue_session=session)
    reloader = Reloader(settings.config_path, instance, PROC, PROC, StrategyEngineConfig, cfg)
    return StrategyAgent(engine, inbox, startup.status, counters, waiter, hangup,
                         make_engine_idle(cfg, waiter, engine.on_wake), settings.config_path, reloader)
