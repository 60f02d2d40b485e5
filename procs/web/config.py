"""The ``[web]`` config section: where ``b25 web`` listens and how many browser sessions it runs."""

from __future__ import annotations

import msgspec

from procs.core.agent import Runtime
from procs.core.config import Section

DEFAULT_PORT = 9726


class WebConfig(Section):
    enabled: bool = False  # the supervisord program's switch (b25.toml turns it on)
    host: str = "127.0.0.1"  # anything but loopback needs the ops token for the page too
    port: int = DEFAULT_PORT
    max_sessions: int = 4  # each browser session is a TUI process on the trading host
    refresh_s: float = 0.1  # the sessions' redraw period (the TUI's 100 ms; at most 250 ms)
    runtime: Runtime = msgspec.field(default_factory=Runtime)  # [<section>.runtime]: cpu and sched

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535: port={self.port}")
        if not 1 <= self.max_sessions <= 64:
            raise ValueError(f"max_sessions must be 1..64: max_sessions={self.max_sessions}")
        if not 0.05 <= self.refresh_s <= 0.25:
            raise ValueError(f"refresh_s must be 0.05..0.25: refresh_s={self.refresh_s}")
