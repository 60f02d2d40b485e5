"""The service table: every b25 process, declared once.

| name | section | priority | hot path | produces | consumes | required |
|---|---|---|---|---|---|---|
| exchange_sim | sim | 10 | no | sim.clock | | when [deploy] sim |
| market_data | market_data | 20 | yes | md.book, md.trade, md.mark, book.<symbol>, alerts.market_data | | yes |
| risk | risk | 30 | no | risk.state, alerts.risk | md.book, md.mark, exec | yes |
| execution | execution | 35 | yes | exec, alerts.execution | orders.strategy, orders.manual, orders.remote, risk.state | yes |
| strategy | strategy | 40 | yes | orders.strategy, strategy.signals, alerts.strategy | md.book, md.trade, exec | yes |
| nats_server | bridge | 45 | no | | | when [bridge] embedded_server |
| bridge | bridge | 50 | no | orders.remote, alerts.bridge | (observer of md, exec, alerts, risk, signals) | when [bridge] enabled |
| monitor | monitor | 60 | no | | (observer of everything) | no |
| notifier | alerts | 70 | no | | (observer of alerts.*, status, counters) | no; when [alerts] enabled |
| web | web | 80 | no | | (the TUI per browser session) | no; when [web] enabled |

Everything that lists processes comes from here: the config sections a file may hold
(``procs.core.config``), the named consumers of every ring (``procs.core.registry``),
supervisord.conf (``b25 services --supervisord``; a test fails when the file disagrees),
``b25 affinity``, the Stack that tests and replay start, the monitor's required list and the
lockstep barrier's pipeline. A new process is one package and one row here.

``consumes`` names the rings a service reads as a *named consumer* (a gating ring waits for it)
and the state blocks it reads in line; observers (monitor, TUI, tools) read without a slot and
are not listed. Config types are named as ``"module:Class"`` and resolved on demand, so the core
imports no service package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Service:
    """One process of the system (a row of the table)."""

    name: str  # the package procs/<name>/ and the supervisord program
    section: str  # its config section
    config_type: str  # "module:Class" of the section's Struct
    priority: int  # supervisord start order, lowest first; stops run in reverse
    hot_path: int  # its step on the tick -> order path (1, 2, 3: gets the isolated/dedicated cores); 0 = off it
    produces: tuple[str, ...] = ()  # rings and state blocks it owns (registry names)
    consumes: tuple[str, ...] = ()  # rings it reads as a named consumer, state blocks it reads in line
    required: bool = True  # /health is 503 while it is stale
    enabled_by: str = ""  # "section.field" of a bool that turns it on; "" = always on
    extra_sections: tuple[str, ...] = ()  # further config sections it owns
    pipeline: bool = True  # started by default by the test/replay Stack
    external: bool = False  # runs another program (no status block, counters, cpu or sched of its own)

    @property
    def module(self) -> str:
        """What ``python -m`` runs."""
        return f"procs.{self.name}"

    @property
    def sections(self) -> tuple[str, ...]:
        return (self.section, *self.extra_sections)

    @property
    def enable_env(self) -> str:
        """The environment variable scripts/run.py sets to true/false for supervisord's autostart."""
        return f"B25_ENABLE_{self.name.upper()}"

    def load_config_type(self) -> type:
        module, _, cls = self.config_type.partition(":")
        return getattr(importlib.import_module(module), cls)


SERVICES: tuple[Service, ...] = (
    Service("exchange_sim", "sim", "procs.exchange_sim.config:SimConfig", 10, 0,
            produces=("sim.clock",), enabled_by="deploy.sim", extra_sections=("sim_trading",)),
    Service("market_data", "market_data", "procs.market_data.config:MarketDataConfig", 20, 1,
            produces=("md.book", "md.trade", "md.mark", "book.{symbol}", "alerts.market_data")),
    Service("risk", "risk", "procs.risk.config:RiskConfig", 30, 0,
            produces=("risk.state", "alerts.risk"), consumes=("md.book", "md.mark", "exec")),
    Service("execution", "execution", "procs.execution.config:ExecutionConfig", 35, 3,
            produces=("exec", "alerts.execution"), consumes=("orders.strategy", "orders.manual", "orders.remote", "risk.state")),
    Service("strategy", "strategy", "procs.strategy.config:StrategyEngineConfig", 40, 2,
            produces=("orders.strategy", "strategy.signals", "alerts.strategy"),
            consumes=("md.book", "md.trade", "exec")),
    # a local NATS server for the bridge (procs/nats_server execs the nats-server binary)
    Service("nats_server", "bridge", "procs.bridge.config:BridgeConfig", 45, 0, required=False,
            enabled_by="bridge.embedded_server", pipeline=False, external=True),
    Service("bridge", "bridge", "procs.bridge.config:BridgeConfig", 50, 0,
            produces=("orders.remote", "alerts.bridge"), required=False, enabled_by="bridge.enabled", pipeline=False),
    Service("monitor", "monitor", "procs.monitor.config:MonitorConfig", 60, 0, required=False, pipeline=False),
    # its own process, not a part of the monitor: a dead endpoint or a plugin's failure must never
    # stall /metrics, /health or the ops API, and alerts keep leaving while the monitor is down (033)
    Service("notifier", "alerts", "procs.notifier.config:AlertsConfig", 70, 0, required=False,
            enabled_by="alerts.enabled", pipeline=False),
    Service("web", "web", "procs.web.config:WebConfig", 80, 0, required=False, enabled_by="web.enabled",
            pipeline=False),
)

# Sections that belong to no one process: the deployment facts, the venue (procs/venue/) and the
# operator's screen.
SHARED_SECTIONS = ("deploy", "venue", "tui")

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}
NAMES: tuple[str, ...] = tuple(s.name for s in sorted(SERVICES, key=lambda s: s.priority))

HOT_PATH: tuple[str, ...] = tuple(s.name for s in sorted((s for s in SERVICES if s.hot_path), key=lambda s: s.hot_path))
PIPELINE: tuple[str, ...] = tuple(n for n in NAMES if BY_NAME[n].pipeline)
# the pipeline's services that sit on the trading rings (a named consumer, or on the hot path): the
# hot path in tick -> order order, then the rest by priority; what lockstep and replay watch
ON_RINGS: tuple[str, ...] = HOT_PATH + tuple(n for n in PIPELINE if n not in HOT_PATH and BY_NAME[n].consumes)


def service(name: str) -> Service:
    """The row of ``name``; KeyError names the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}: known={','.join(NAMES)}") from None


def known_sections() -> frozenset[str]:
    """Every top-level section a deployment file may hold."""
    return frozenset(sec for s in SERVICES for sec in s.sections) | frozenset(SHARED_SECTIONS)


def section_types() -> dict[str, str]:
    """Section name -> "module:Class" of its Struct, for the sections services own."""
    return {s.section: s.config_type for s in SERVICES}


def consumers_of(ring: str) -> tuple[str, ...]:
    """The services that read ``ring`` as a named consumer: the hot path's first (lower slots), then by priority."""
    readers = [BY_NAME[n] for n in NAMES if ring in BY_NAME[n].consumes]
    return tuple(s.name for s in sorted(readers, key=lambda s: (not s.hot_path, s.priority)))


def alert_producers() -> tuple[str, ...]:
    """Services that own an ``alerts.<name>`` ring."""
    return tuple(n for n in NAMES if f"alerts.{n}" in BY_NAME[n].produces)


def required(sim: bool) -> tuple[str, ...]:
    """What /health requires: every required service, the simulator only when the deployment runs it."""
    out = []
    for n in NAMES:
        s = BY_NAME[n]
        if s.enabled_by == "deploy.sim":
            if sim:
                out.append(n)
        elif s.required and not s.enabled_by:
            out.append(n)
    return tuple(out)


def enabled(name: str, config: dict[str, Any]) -> bool:
    """Whether a deployment (its TOML as a dict) runs ``name``; a service with no switch always runs."""
    s = service(name)
    if not s.enabled_by:
        return True
    section, _, field = s.enabled_by.partition(".")
    return bool(config.get(section, {}).get(field, _SWITCH_DEFAULTS.get(s.enabled_by, False)))


# the default of each on/off switch when the file does not set it
_SWITCH_DEFAULTS = {"deploy.sim": True}


def as_rows() -> list[dict[str, Any]]:
    """The table as `b25 services --json` prints it."""
    return [{"name": s.name, "section": s.section, "priority": s.priority, "hot_path": bool(s.hot_path),
             "produces": list(s.produces), "consumes": list(s.consumes), "required": s.required,
             "enabled_by": s.enabled_by} for s in (BY_NAME[n] for n in NAMES)]
