"""/health: every required process fresh (heartbeat age, state, pid alive) or the stale ones named."""

from __future__ import annotations

from typing import Any

from .shmview import InstanceView


def health(view: InstanceView, required: list[str] | tuple[str, ...], stale_after_s: float) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body): 200 when all required processes are fresh, 503 naming the stale ones."""
    procs = view.statuses(required, stale_after_s)
    for p, s in procs.items():
        s["required"] = p in required
    stale = {p: s["why"] for p, s in procs.items() if p in required and not s["fresh"]}
    body = {"healthy": not stale, "stale": sorted(stale), "why": stale, "stale_after_s": stale_after_s,
            "processes": procs}
    return (200 if not stale else 503), body
