"""The ``[monitor]`` config section: where /metrics, /health and the ops API listen, which
processes must be fresh for /health to say 200, and the ops API's token."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import ClassVar

import msgspec

from procs.core import services
from procs.core.agent import Runtime
from procs.core.config import ConfigError, Section, convert, read_toml

DEFAULT_PORT = 9725


class MonitorConfig(Section):
    host: str = "127.0.0.1"  # never 0.0.0.0 unless a proxy in front checks who calls
    port: int = DEFAULT_PORT
    # the processes /health requires; absent = the service table's required ones (the simulator
    # too when [deploy] sim is on)
    required: list[str] | None = None
    stale_after_s: float = 2.0  # heartbeat older than this (or a dead pid) = stale
    token: str = ""  # bearer token for state-changing ops calls; prefer token_file or B25_MONITOR_TOKEN
    token_file: str = ""  # a 0600 file holding the token
    recent_orders: int = 500  # OrderEvents kept for GET /api/orders
    audit_dir: str = "run/audit"  # the audit trail of state-changing calls: <audit_dir>/<instance>.jsonl
    order_answer_s: float = 5.0  # POST/DELETE /api/orders wait this long for execution's answer, then 202
    recent_alerts: int = 200
    poll_s: float = 0.1  # how often the exec/alerts observers catch up
    feed_poll_ms: float = 5.0  # /ws: how often shm is read while a client is subscribed
    feed_max_clients: int = 256  # /ws connections at once; the next one gets 503
    feed_max_hz: float = 50.0  # the highest rate a subscription may ask for
    runtime: Runtime = msgspec.field(default_factory=Runtime)  # [<section>.runtime]: cpu and sched

    # a reload (procs.core.reload) takes the token, the required list and the staleness limit;
    # these are read once, at start
    restart_only: ClassVar[frozenset[str]] = frozenset({"runtime", "host", "port", "recent_orders", "recent_alerts",
                                                        "poll_s", "feed_poll_ms", "feed_max_clients", "feed_max_hz"})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535: port={self.port}")
        if not 1 <= self.feed_poll_ms <= 1000:
            raise ValueError(f"feed_poll_ms must be 1..1000: feed_poll_ms={self.feed_poll_ms}")
        if self.feed_max_clients < 1 or not self.feed_max_hz > 0:
            raise ValueError(f"feed_max_clients must be >= 1 and feed_max_hz > 0: "
                             f"feed_max_clients={self.feed_max_clients} feed_max_hz={self.feed_max_hz}")
        if self.stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0: stale_after_s={self.stale_after_s}")
        if not 0 < self.order_answer_s <= 60:
            raise ValueError(f"order_answer_s must be > 0 and <= 60: order_answer_s={self.order_answer_s}")


def load_monitor_config(path: str | Path | None) -> MonitorConfig:
    """``[monitor]`` with ``required`` filled in from the service table when the file leaves it out."""
    return monitor_config_from(read_toml(path), str(path))


def monitor_config_from(doc: dict, where: str) -> MonitorConfig:
    """``[monitor]`` of a parsed deployment file (start-up and reload decode it the same way)."""
    table = doc.get("monitor", {})
    if not isinstance(table, dict):
        raise ConfigError(f"invalid config {where}: section [monitor] must be a table")
    cfg = convert(table, MonitorConfig, f"{where} section [monitor]")
    if cfg.required is None:
        runs_sim = services.enabled("exchange_sim", doc)
        cfg = msgspec.structs.replace(cfg, required=list(services.required(runs_sim)))
    unknown = sorted(set(cfg.required or ()) - set(services.NAMES))
    if unknown:
        raise ConfigError(f"invalid config {where} section [monitor] field required: names an unknown process: "
                          f"required={unknown[0]} known={','.join(services.NAMES)}")
    return cfg


def load_token(cfg: MonitorConfig) -> str:
    """The ops token: env B25_MONITOR_TOKEN, else token_file (must not be group/world readable), else token."""
    env = os.environ.get("B25_MONITOR_TOKEN", "")
    if env:
        return env
    if cfg.token_file:
        p = Path(cfg.token_file)
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"monitor token_file not found: path={p}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"monitor token_file must be 0600: path={p} mode={oct(mode & 0o777)}")
        return p.read_text().strip()
    return cfg.token
