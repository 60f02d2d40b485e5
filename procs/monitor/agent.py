"""The monitor agent: the HTTP server over the instance's shared memory (``procs.monitor.ops``)
and the loop that keeps the exec observer caught up; ``start`` builds it
(``procs.core.async_agent.run_async_process`` runs it)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import msgspec
from aiohttp import web

from procs.core import deploy, log
from procs.core.agent import NoStatus
from procs.core.async_agent import AsyncRun
from procs.core.instruments import Instrument
from procs.core.registry import RingCapacities
from procs.core.reload import Reloader
from procs.core.status import StatusWriter
from shm.counters import Counters

from .config import MonitorConfig, load_monitor_config, load_token, monitor_config_from
from .history import sources_from_config
from .ops import Counter, Hist, Monitor, make_app
from .shmview import InstanceView

PROC = "monitor"


def strategy_status_file(config_path: str | None, instance: str) -> Path | None:
    """Where this deployment's strategy engine writes its status (``[strategy] state_file``)."""
    from procs.core.config import ConfigError, load_section
    from procs.strategy.config import StrategyEngineConfig, status_file

    try:
        cfg = load_section(config_path, "strategy", StrategyEngineConfig)
    except (ConfigError, ValueError):  # strategy's own start reports its section; the monitor serves on
        cfg = StrategyEngineConfig()
    return status_file(cfg, instance)


@dataclass(frozen=True)
class MonitorSettings:
    """What the monitor reads from the config file (and the environment), checked before it starts."""

    monitor: MonitorConfig
    token: str
    symbols: list[str]
    depth: int
    instruments: dict[str, Instrument]  # prices in the /ws feed (ticks and lots without)
    config_path: str | None = None  # for /api/history/*: [risk.history] and [market_data] recorder
    rings: RingCapacities | None = None  # [deploy.rings]: orders.manual's capacity, should the monitor create it

    @classmethod
    def load(cls, config_path: str | None, host: str | None = None, port: int | None = None) -> MonitorSettings:
        """Raises ConfigError naming the file, section, field and reason; ``host``/``port``
        override ``[monitor]``."""
        cfg = load_monitor_config(config_path)
        if host is not None or port is not None:
            cfg = msgspec.structs.replace(cfg, host=host or cfg.host, port=cfg.port if port is None else port)
        shared = deploy.load(config_path)
        return cls(cfg, load_token(cfg), list(shared.symbols), shared.depth, deploy.instruments(config_path),
                   config_path, shared.rings)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket (port 0: any free port)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class MonitorAgent:
    """Serves /metrics, /health and the ops API; polls the exec ring every ``poll_s``."""

    name = PROC

    def __init__(self, monitor: Monitor, view: InstanceView, counters: Counters, runner: web.AppRunner,
                 config_path: str | None = None) -> None:
        self.monitor = monitor
        self.view = view
        self.counters = counters
        self.runner = runner
        # SIGHUP: the token, the required list and the staleness limit reload (MonitorConfig.restart_only)
        self.reloader = Reloader(config_path, view.instance, PROC, "monitor", MonitorConfig, monitor.cfg,
                                 decode=monitor_config_from, check=load_token)
        self.status: StatusWriter | NoStatus = NoStatus()

    def reload(self) -> None:
        got = self.reloader.take()
        if got is None:
            return
        cfg, data = got
        self.monitor.reconfigure(cfg, load_token(cfg))  # checked readable by the reloader
        self.status.set_config_hash(self.reloader.applied(cfg, data))

    async def serve(self, run: AsyncRun) -> None:
        self.status = run.status
        run.on_hangup(self.reload)
        run.running()
        poll_s = self.monitor.cfg.poll_s
        while not run.stopping:
            self.monitor.poll()
            await run.sleep(poll_s)

    def work(self) -> int:
        return self.monitor.tracker.events

    def on_heartbeat(self) -> None:
        self.counters.heartbeat()

    async def on_close(self) -> None:
        await self.runner.cleanup()
        self.view.close()
        self.counters.close()


async def start(settings: MonitorSettings, instance: str, run: AsyncRun) -> MonitorAgent:
    """Attach the views, bind the port and start the HTTP server."""
    cfg = settings.monitor
    counters = Counters.create(instance, PROC, Counter, Hist)
    view = InstanceView(instance, settings.depth)
    mon = Monitor(cfg, view, settings.symbols, settings.token, counters, settings.instruments, rings=settings.rings,
                  history=sources_from_config(settings.config_path, instance), config_path=settings.config_path,
                  strategy_status=strategy_status_file(settings.config_path, instance))
    runner = web.AppRunner(make_app(mon), access_log=None)
    agent = MonitorAgent(mon, view, counters, runner, settings.config_path)
    try:
        await runner.setup()
        sock = listen(cfg.host, cfg.port)
        await web.SockSite(runner, sock).start()
    except BaseException:
        await agent.on_close()
        raise
    host, port = sock.getsockname()[:2]
    log.info("listening", instance=instance, host=host, port=port, required=cfg.required,
             commands_enabled=bool(settings.token))
    return agent
