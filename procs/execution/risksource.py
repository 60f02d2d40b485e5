"""Execution's view of ``risk.state``: the limits the pre-trade check reads, and whether risk is
there at all.

Fail closed: with ``required`` (``[execution] risk_required``, the default) a new order is denied
(``risk_unavailable``) while the block is missing, has never been written, or its producer is
dead or has not beaten for ``stale_s``; cancels always go, and nothing is cancelled for it (risk's
HALTED does that). Without ``required`` (execution driven alone: its tests, ``b25 bench exec``) a
missing block means no limits.

Risk rewrites the block on every book update, so nearly every intent finds a new version: it is
read with ``StateReader.unpack_if_changed`` (one ``struct.unpack_from`` of the record between two
loads of the SeqLock sequence; a numpy copy plus ``tolist`` per array cost ~17 us warm, ~85 us
after a 5 ms gap). Liveness is checked from execution's housekeeping tick (``check``), never per
intent.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from procs.core import log
from procs.core import messages as M
from procs.core.registry import RISK_STATE
from procs.execution.pretrade import RISK_STATE_STRUCT, RiskLimits
from shm.registry import Registry
from shm.segment import pid_alive
from shm.seqlock import StateReader

# a missing or dropped block is looked for again this often: at start-up execution is often up a
# few tens of ms before risk has written its first state, and every intent in between is denied;
# a failed look is one shm_open (docs/decisions/018-fail-closed-without-risk.md)
RETRY_S = 0.1
# execution's alert codes (alerts.execution): risk went away after it had been there, and came back
ALERT_RISK_LOST = 1
ALERT_RISK_BACK = 2


def risk_alert(up: bool, why: str, required: bool) -> tuple[int, int, str]:
    """The (level, code, text) execution publishes on ``alerts.execution`` when risk goes or comes back."""
    if up:
        return M.ALERT_INFO, ALERT_RISK_BACK, f"risk is back (it was away: {why})"
    if required:
        return M.ALERT_CRITICAL, ALERT_RISK_LOST, f"new orders denied: {why}"
    return M.ALERT_WARN, ALERT_RISK_LOST, f"no risk limits: {why}"


class RiskSource:
    """``risk()`` -> the current ``RiskLimits``; ``check(now_ns)`` from the housekeeping tick.

    ``on_change(up, why)`` hears each loss of a risk that had been attached (``why`` says what was
    seen) and each return after one: not the wait for risk at start-up, which is logged only."""

    def __init__(self, registry: Registry, instance: str, required: bool = True, stale_s: float = 2.0,
                 on_change: Callable[[bool, str], None] | None = None) -> None:
        self.registry = registry
        self.instance = instance
        self.required = required
        self.stale_ns = int(stale_s * 1e9)
        self.absent = RiskLimits.unavailable() if required else RiskLimits.permissive()
        self.reader: StateReader | None = None
        self.version = -1
        self.limits = self.absent
        self.next_try = 0.0
        self.lost = ""  # why risk is not there (logged once per loss), "" while it is
        self.on_change = on_change
        self._seen = False  # attached at least once
        self._unpack_if_changed: Callable[[int, struct.Struct], tuple[tuple, int] | None] | None = None

    def __call__(self) -> RiskLimits:
        unpack = self._unpack_if_changed  # the reader's bound method, looked up once per attach
        if unpack is None:
            return self._attach()
        got = unpack(self.version, RISK_STATE_STRUCT)
        if got is None:
            return self.limits
        values, self.version = got
        # version 0: created, never written; its zeros are not limits
        self.limits = RiskLimits.from_words(values) if self.version else self.absent
        return self.limits

    @property
    def available(self) -> bool:
        return self.reader is not None and self.reader.written

    def check(self, now_ns: int | None = None) -> bool:
        """Drop the block when its producer is dead or silent for ``stale_s`` (it is looked for
        again every ``RETRY_S``: a restarted risk is picked up); True while risk is there."""
        r = self.reader
        if r is None:
            return False
        now = time.monotonic_ns() if now_ns is None else now_ns
        pid, hb = r.producer_pid, r.heartbeat_ns
        if not pid_alive(pid):
            why = f"risk (pid {pid}) is not running"
        elif now - hb > self.stale_ns:
            why = f"risk has not beaten for {(now - hb) / 1e9:.1f} s"
        else:
            return True
        if not self.lost:
            log.warn("risk_state_lost", reason=why, action=self._action())
            if self._seen and self.on_change is not None:
                self.on_change(False, why)
        self.lost = why
        self._detach()
        return False

    def _action(self) -> str:
        return "new orders denied (risk_unavailable) until risk is back" if self.required else "no limits"

    def _attach(self) -> RiskLimits:
        now = time.monotonic()
        if now < self.next_try:
            return self.limits
        self.next_try = now + RETRY_S
        try:
            self.reader = self.registry.reader(self.instance, RISK_STATE, timeout=0)
            self._unpack_if_changed = self.reader.unpack_if_changed
        except (TimeoutError, OSError, ValueError):
            if not self.lost:
                self.lost = "no risk.state block"
                log.warn("risk_state_missing", action=self._action())
            return self.limits
        if not self.check():
            return self.limits
        log.info("risk_state_attached", after=self.lost or None)
        if self._seen and self.lost and self.on_change is not None:
            self.on_change(True, self.lost)
        self._seen = True
        self.lost = ""
        return self()

    def _detach(self) -> None:
        self._unpack_if_changed = None
        self.version = -1
        self.limits = self.absent
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def close(self) -> None:
        self._detach()
