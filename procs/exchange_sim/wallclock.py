"""The venue's wall clock: the host's, plus the steps ``POST /sim/clock?step_ms=N`` applied.

A real venue's clock and ours disagree, and either can step (an NTP correction, a VM resumed): a
step here moves every wall-clock time the simulator serves (``serverTime``, event and order times
in generator mode, the timestamp/recvWindow rule, countdowns, listen-key expiry), so a client's
signed requests start failing with -1021 until it re-syncs from ``GET /fapi/v1/time``. A replay's
market time is the recording's and does not move.
"""

from __future__ import annotations

import time

_offset_ms = 0


def wall_ms() -> int:
    """The venue's wall time in epoch ms."""
    return time.time_ns() // 1_000_000 + _offset_ms


def step(ms: int) -> int:
    """Step the venue's clock by ``ms`` (either way); returns the total offset from the host's."""
    global _offset_ms
    _offset_ms += int(ms)
    return _offset_ms


def offset_ms() -> int:
    return _offset_ms
