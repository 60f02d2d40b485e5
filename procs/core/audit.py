"""The audit trail: one JSON line per state-changing call, whoever made it (the ops API, the TUI).

``<[monitor] audit_dir>/<instance>.jsonl`` (default ``run/audit/<instance>.jsonl``), mode 0600,
append-only: each record is written with one ``write`` on an ``O_APPEND`` descriptor, so lines
from the monitor and a TUI never interleave. A record names the time, the source, the operator,
the reason, the action with its arguments, and what came of it (HTTP status and outcome). The
ops API serves the newest records at ``GET /api/audit``; ``tail`` reads them back.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import deque
from pathlib import Path
from typing import Any

import msgspec

DEFAULT_DIR = "run/audit"
MAX_LINE = 16 * 1024  # a record is cut to this (long reasons, big argument lists)


def audit_path(audit_dir: str | Path, instance: str) -> Path:
    return Path(audit_dir or DEFAULT_DIR) / f"{instance}.jsonl"


class AuditRecord(msgspec.Struct, kw_only=True):
    ts: str  # ISO 8601 UTC, milliseconds
    source: str  # "ops-api", "tui"
    operator: str
    reason: str
    action: str  # "POST /api/kill_switch", "kill_switch", ...
    args: dict[str, Any] = {}
    status: int = 0  # the HTTP status answered (0 when not an HTTP call)
    outcome: str = ""  # what came of it, in words
    remote: str = ""  # the caller's address (ops API)


class AuditTrail:
    """Appends records to one file and reads the newest back."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.failures = 0
        self.last_error = ""

    def record(self, source: str, operator: str, reason: str, action: str, args: dict[str, Any] | None = None,
               status: int = 0, outcome: str = "", remote: str = "") -> AuditRecord:
        """Append one record; a disk error is counted and kept in ``last_error``, never raised
        (an operator's kill switch must not fail because the audit disk is full)."""
        rec = AuditRecord(ts=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                          source=source, operator=operator, reason=reason, action=action, args=args or {},
                          status=status, outcome=outcome[:500], remote=remote)
        line = msgspec.json.encode(rec)
        if len(line) >= MAX_LINE:
            rec.args = {"truncated": True}
            line = msgspec.json.encode(rec)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)
        except OSError as exc:
            self.failures += 1
            self.last_error = f"{self.path}: {exc.strerror or exc}"
        return rec

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The newest ``n`` records, newest first (a torn or foreign line is skipped)."""
        try:
            with open(self.path, "rb") as f:
                lines = deque(f, maxlen=n)
        except FileNotFoundError:
            return []
        out = []
        for line in reversed(lines):
            try:
                out.append(msgspec.json.decode(line))
            except msgspec.DecodeError:
                continue
        return out
