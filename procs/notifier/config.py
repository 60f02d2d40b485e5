"""The ``[alerts]`` config section: where the notifier sends which alerts, and how hard it tries.

    [alerts]
    enabled = true
    [[alerts.routes]]
    min_level = "warn"                            # info | warn | critical
    codes = []                                    # [] = every code; else names: "kill_switch_on", "risk.state_changed"
    urls = ["json://127.0.0.1:8008/b25", "slack://T000/B000/XXXX"]   # apprise URLs
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from procs.core.agent import Runtime
from procs.core.config import Section

LEVELS = {"info": 1, "warn": 2, "critical": 3}  # messages.ALERT_INFO / _WARN / _CRITICAL


class Route(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One delivery path: alerts at ``min_level`` or above whose code is in ``codes`` go to every URL."""

    urls: list[str]
    min_level: Literal["info", "warn", "critical"] = "warn"
    codes: list[str] = []
    name: str = ""  # in the delivery log; "" = route<index>

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("urls must name at least one apprise URL")


class AlertsConfig(Section):
    enabled: bool = False  # the supervisord program's switch (b25.toml turns it on)
    routes: list[Route] = []
    dedup_window_s: float = 60.0  # the same alert (source, code, symbol, text) again within this is not resent
    rate_per_minute: int = 20  # per route; alerts over it are counted and summed up once it refills (urgent ones pass)
    retries: int = 5  # attempts after the first, per URL
    backoff_s: float = 0.5  # first retry after this, doubling up to backoff_max_s
    backoff_max_s: float = 30.0
    timeout_s: float = 4.0  # connect and read timeout of one attempt
    queue_max: int = 1000  # alerts waiting per URL; past it the oldest non-urgent one is dropped (counted)
    poll_ms: float = 50.0  # how often the alert rings, status blocks and counters are read
    stale_after_s: float = 2.0  # a required process's heartbeat older than this raises process_stale
    start_grace_s: float = 15.0  # after the notifier starts, a process absent this long is stale
    delivery_log: str = "run/log/deliveries.jsonl"  # one JSON line per delivery outcome; "" = none
    runtime: Runtime = msgspec.field(default_factory=Runtime)  # [<section>.runtime]: cpu and sched

    # a reload (procs.core.reload) takes the routes and delivery settings (a new dispatcher);
    # these are read once, at start
    restart_only: ClassVar[frozenset[str]] = frozenset({"runtime", "enabled", "poll_ms", "stale_after_s",
                                                        "start_grace_s", "delivery_log"})

    def __post_init__(self) -> None:
        for name in ("dedup_window_s", "backoff_s", "backoff_max_s", "timeout_s", "poll_ms", "stale_after_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0: {name}={getattr(self, name)}")
        if not 10 <= self.poll_ms <= 500:
            raise ValueError(f"poll_ms must be 10..500 (critical alerts go out within a second): poll_ms={self.poll_ms}")
        if self.rate_per_minute < 1:
            raise ValueError(f"rate_per_minute must be >= 1: rate_per_minute={self.rate_per_minute}")
        if self.retries < 0 or self.queue_max < 1:
            raise ValueError(f"retries must be >= 0 and queue_max >= 1: retries={self.retries} queue_max={self.queue_max}")
