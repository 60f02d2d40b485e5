"""Structured JSON-line logging to stderr (supervisord files it).

One line per event: time, process, level, event name and the fields that matter. Never call
this per market event on the hot path; ``once`` logs a given key only the first time so a
repeated bad input is counted, not spammed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import msgspec

_enc = msgspec.json.Encoder()
_process = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "b25"
_seen: set[str] = set()
_SECRET_KEYS = ("secret", "api_secret", "token", "signature", "password")


def set_process(name: str) -> None:
    """Name this process in every log line."""
    global _process
    _process = name


def _redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if any(s in k.lower() for s in _SECRET_KEYS) else v) for k, v in fields.items()}


def log(level: str, event: str, **fields: Any) -> None:
    """Write one JSON line: ``{"ts": .., "proc": .., "level": .., "event": .., **fields}``."""
    rec = {"ts": round(time.time(), 6), "proc": _process, "level": level, "event": event}
    rec.update(_redact(fields))
    try:
        line = _enc.encode(rec)
    except TypeError:
        line = _enc.encode({k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                            for k, v in rec.items()})
    sys.stderr.buffer.write(line + b"\n")
    sys.stderr.flush()


def info(event: str, **fields: Any) -> None:
    log("info", event, **fields)


def warn(event: str, **fields: Any) -> None:
    log("warn", event, **fields)


def error(event: str, **fields: Any) -> None:
    log("error", event, **fields)


def once(key: str, level: str, event: str, **fields: Any) -> bool:
    """Log only the first time ``key`` is seen in this process; returns True when it logged."""
    if key in _seen:
        return False
    _seen.add(key)
    log(level, event, **fields)
    return True
