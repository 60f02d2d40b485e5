"""The ``[bridge]`` config section: the NATS bridge (off unless ``enabled``)."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from procs.core.agent import Runtime, check_loop_period_ms
from procs.core.config import Section

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class StreamLimits(Section):
    """One JetStream stream's retention: whichever limit is reached first drops the oldest."""

    max_age_s: float = 7 * 86400.0
    max_bytes: int = 1 << 30
    replicas: int = 1


class BridgeRuntime(Runtime):
    """``[bridge.runtime]``: below everything else: on a shared core the bridge (and its server)
    waits, the hot path does not."""

    sched: str = "nice:10"


class BridgeConfig(Section):
    enabled: bool = False
    url: str = "nats://127.0.0.1:4222"  # one server, or several separated by commas
    encoding: Literal["msgpack", "json"] = "msgpack"
    # NATS authentication: user/password, or an nkey seed file (0600). The password may come
    # from the environment variable named by password_env instead of the file. An nkey needs the
    # Python package nkeys (not installed with b25).
    user: str = ""
    password: str = ""
    password_env: str = "B25_NATS_PASSWORD"
    nkey_seed_file: str = ""
    # outbound
    book_max_hz: float = 10.0  # per symbol; 0 = every book update
    book_levels: int = 20  # levels per side in a Book message (at most the deployment's depth)
    risk_max_hz: float = 10.0  # risk.state on change, at most this often; 0 = every change
    trades: bool = True
    signals: bool = True
    poll_ms: float = 1.0  # how often the rings are read (the event loop's timers count whole ms)
    reconnect_min_s: float = 0.1  # backoff after a lost connection: doubles per failed attempt
    reconnect_max_s: float = 5.0
    # exec and alerts messages held for JetStream (unacknowledged, or waiting out an outage);
    # past this bound new ones are dropped and counted (dropped_durable)
    buffer_max: int = 50_000
    ack_timeout_s: float = 2.0  # an unacknowledged durable message is sent again after this
    # JetStream: exec and alerts are stored (durable, replayable); md only when md_stream
    jetstream: bool = True
    exec_stream: StreamLimits = msgspec.field(default_factory=StreamLimits)
    alerts_stream: StreamLimits = msgspec.field(default_factory=lambda: StreamLimits(max_bytes=64 << 20))
    md_stream: bool = False
    md_stream_limits: StreamLimits = msgspec.field(default_factory=lambda: StreamLimits(max_age_s=3600.0))
    cursor_file: str = ""  # where the durable rings' acknowledged positions are kept; "" = run/bridge/<instance>.cursors.json
    # inbound (off by default; each needs NATS authentication: user or nkey_seed_file)
    commands: bool = False  # <p>.cmd.<command>: the ops API's commands
    intents: bool = False  # <p>.intent.<strategy>: orders from remote strategies into orders.remote
    remote_strategies: list[str] = msgspec.field(default_factory=list)  # the ids allowed to send intents
    remote_dead_s: float = 5.0  # a remote strategy silent this long has its orders cancelled
    # a nats-server started by supervisord on this host (program nats_server), listening on url's port
    embedded_server: bool = False
    server_store_dir: str = "run/nats"  # JetStream's file store of the embedded server
    server_max_store: str = "4G"
    server_nice: int = 10  # the embedded server's nice value (it yields to the hot path like the bridge)
    runtime: BridgeRuntime = msgspec.field(default_factory=lambda: BridgeRuntime())

    def __post_init__(self) -> None:
        if not -20 <= self.server_nice <= 19:
            raise ValueError(f"server_nice must be -20..19: server_nice={self.server_nice}")
        check_loop_period_ms("poll_ms", self.poll_ms)
        if not self.poll_ms > 0:
            raise ValueError(f"poll_ms must be at least 1: poll_ms={self.poll_ms}")
        for name in ("book_max_hz", "risk_max_hz"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 (0 = no limit): {name}={getattr(self, name)}")
        if not 1 <= self.book_levels <= 1000:
            raise ValueError(f"book_levels must be 1..1000: book_levels={self.book_levels}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError(f"need 0 < reconnect_min_s <= reconnect_max_s: reconnect_min_s={self.reconnect_min_s} "
                             f"reconnect_max_s={self.reconnect_max_s}")
        if self.buffer_max < 1:
            raise ValueError(f"buffer_max must be >= 1: buffer_max={self.buffer_max}")
        if not self.ack_timeout_s > 0 or not self.remote_dead_s > 0:
            raise ValueError(f"ack_timeout_s and remote_dead_s must be > 0: ack_timeout_s={self.ack_timeout_s} "
                             f"remote_dead_s={self.remote_dead_s}")
        if not self.url.strip():
            raise ValueError("url must name a NATS server: url=''")
        if (self.commands or self.intents) and not (self.user or self.nkey_seed_file):
            raise ValueError("inbound commands/intents need NATS authentication: set user (and password or "
                             "password_env) or nkey_seed_file")
        if self.user and self.nkey_seed_file:
            raise ValueError("set user/password or nkey_seed_file, not both")
        bad = [s for s in self.remote_strategies if not _NAME.match(s)]
        if bad:
            raise ValueError(f"remote_strategies ids must be [A-Za-z0-9_-]+: remote_strategies={bad}")
        if len(set(self.remote_strategies)) != len(self.remote_strategies):
            raise ValueError(f"remote_strategies ids must be unique: remote_strategies={self.remote_strategies}")
        if self.intents and not self.remote_strategies:
            raise ValueError("intents = true needs remote_strategies (the ids allowed to send orders)")

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]
