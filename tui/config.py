"""The ``[tui]`` config section (defaults in code; the section is optional)."""

from __future__ import annotations

from procs.core.config import Section


class TuiConfig(Section):
    refresh_s: float = 0.1  # panel refresh period (set_interval)
    stale_after_s: float = 2.0  # heartbeat older than this = stale (same rule as the monitor)
    supervisor_socket: str = "run/supervisor.sock"  # relative to the repo root; absent = no process control
    supervisor_poll_s: float = 1.0
    operator: str = ""  # name in the audit line of commands; "" = $USER
    trades: int = 200  # trades kept for the tape

    def __post_init__(self) -> None:
        if not 0.01 <= self.refresh_s <= 5:
            raise ValueError(f"refresh_s must be 0.01..5: refresh_s={self.refresh_s}")
