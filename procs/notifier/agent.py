"""The notifier's duty cycle: read new alerts (rings, status blocks, counters) every ``poll_ms``
and hand them to the dispatcher; the couriers deliver on their own threads."""

from __future__ import annotations

from procs.core import log, services
from procs.core.agent import NoStatus
from procs.core.reload import Hangup, Reloader
from procs.core.status import StatusWriter
from procs.monitor.shmview import InstanceView
from shm.counters import Counters
from shm.idle import SleepIdle

from .config import AlertsConfig
from .delivery import DeliveryLog, Dispatcher, Metrics, Outcome, Stage, check_routes
from .sources import RingAlerts, Watchdog

PROC = "notifier"


class NotifierAgent:
    name = PROC

    def __init__(self, cfg: AlertsConfig, instance: str, symbols: list[str], depth: int, watched: tuple[str, ...],
                 counters: Counters | None = None, dispatcher: Dispatcher | None = None,
                 config_path: str | None = None) -> None:
        self.cfg = cfg
        self.instance = instance
        # SIGHUP: the routes and delivery settings reload (a new dispatcher; the old one drains
        # what it holds, then stops); AlertsConfig.restart_only names what needs a restart
        self.reloader = Reloader(config_path, instance, PROC, "alerts", AlertsConfig, cfg,
                                 check=lambda new: check_routes(new, str(config_path)))
        self.hangup: Hangup | None = None
        self.status: StatusWriter | NoStatus = NoStatus()
        self.counters = counters
        self.idle = SleepIdle(cfg.poll_ms / 1000)
        self.view = InstanceView(instance, depth)
        self.rings = RingAlerts(self.view, symbols)
        self.watchdog = Watchdog(self.view, watched, cfg.stale_after_s, cfg.start_grace_s)
        self.metrics = Metrics(counters)
        self.dlog = DeliveryLog(cfg.delivery_log)
        self.dispatcher = dispatcher or Dispatcher(cfg, instance, self.metrics, self.dlog)

    def on_start(self) -> None:
        self.dispatcher.start()
        self.rings.poll()  # position every ring at its end: what was raised before we started is not resent

    def do_work(self) -> int:
        if self.hangup is not None and self.hangup.take():
            self.reload()
        alerts = self.rings.poll() + self.watchdog.poll()
        for alert in alerts:
            self.dispatcher.dispatch(alert)
        self.dispatcher.flush_held()
        return len(alerts)

    def reload(self) -> None:
        got = self.reloader.take()
        if got is None:
            return
        cfg, data = got
        new = Dispatcher(cfg, self.instance, self.metrics, self.dlog)
        new.keep_dedup(self.dispatcher)
        new.start()
        old, self.dispatcher, self.cfg = self.dispatcher, new, cfg
        old.retire(cfg.timeout_s * (cfg.retries + 1) + cfg.backoff_max_s)
        self.status.set_config_hash(self.reloader.applied(cfg, data))
        log.info("notifier_routes", routes=[{"name": name, "min_level": r.min_level, "codes": r.codes,
                                             "urls": [c.shown for c in couriers]}
                                            for name, r, _limit, couriers in new.routes])

    def on_heartbeat(self) -> None:
        if self.counters is not None:
            self.counters.heartbeat()

    def on_close(self) -> None:
        self.dispatcher.stop(timeout=self.cfg.timeout_s + 1)
        self.dlog.close()
        self.view.close()
        if self.counters is not None:
            self.counters.close()


def watched(deployment: dict) -> tuple[str, ...]:
    """The processes whose staleness is an alert: every b25 process the deployment runs (an external
    program such as nats-server has no status block; supervisord restarts it), but the notifier."""
    return tuple(n for n in services.NAMES
                 if n != PROC and not services.service(n).external and services.enabled(n, deployment))


def start(cfg: AlertsConfig, instance: str, symbols: list[str], depth: int, watch: tuple[str, ...],
          config_path: str | None = None, status: StatusWriter | NoStatus | None = None) -> NotifierAgent:
    """The agent with its counters segment (what ``procs.core.agent.run_process`` runs)."""
    hangup = Hangup()  # SIGHUP reloads the routes from here on
    counters = Counters.create(instance, PROC, Outcome, Stage)
    try:
        agent = NotifierAgent(cfg, instance, symbols, depth, watch, counters, config_path=config_path)
    except BaseException:
        counters.close()
        raise
    agent.hangup = hangup
    if status is not None:
        agent.status = status
    log.info("notifier_routes", watched=list(watch), routes=[{"name": name, "min_level": r.min_level, "codes": r.codes,
                                         "urls": [c.shown for c in couriers]}  # secrets hidden by apprise
                                        for name, r, _limit, couriers in agent.dispatcher.routes])
    return agent
