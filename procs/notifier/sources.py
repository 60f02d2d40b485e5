"""Where alerts come from: every ``alerts.<proc>`` ring, read as an observer (no consumer slot: a
producer never waits for the notifier), plus what no process can say about itself, watched here
from the status blocks and counters: a process going stale, execution's circuit breaker opening,
a journal write failing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from procs.core import messages as M
from procs.core.registry import ALERT_PRODUCERS, alerts_name
from procs.execution.risksource import ALERT_RISK_BACK, ALERT_RISK_LOST
from procs.monitor.shmview import InstanceView
from procs.risk import alerts as risk_alerts

LEVEL_NAMES = {M.ALERT_INFO: "info", M.ALERT_WARN: "warn", M.ALERT_CRITICAL: "critical"}
# each producer's codes by name (an unknown code reads as code_<n>)
CODE_NAMES: dict[str, dict[int, str]] = {
    "risk": dict(risk_alerts.NAMES),
    "execution": {ALERT_RISK_LOST: "risk_unavailable", ALERT_RISK_BACK: "risk_back"},
}
# what must go out at once whatever its level: never held by a route's rate limit
URGENT_CODES = frozenset({"state_changed", "kill_switch_on", "daily_loss_breached", "drawdown_breached",
                          "reconcile_mismatch", "risk_unavailable", "process_stale", "breaker_open",
                          "journal_error", "holds_restored"})


@dataclass(frozen=True)
class Alert:
    source: str  # the process that raised it (or that the notifier saw fail)
    level: int  # messages.ALERT_*
    code: str  # by name
    text: str
    symbol: str = ""
    value: float = 0.0
    raised_ns: int = field(default_factory=time.time_ns)  # wall clock: alert records carry time.time_ns()

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, str(self.level))

    @property
    def urgent(self) -> bool:
        return self.level >= M.ALERT_CRITICAL or self.code in URGENT_CODES

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two alerts the same one for de-duplication."""
        return (self.source, self.code, self.symbol, self.text)


def code_name(source: str, code: int) -> str:
    return CODE_NAMES.get(source, {}).get(code, f"code_{code}")


class RingAlerts:
    """New records of every ``alerts.*`` ring. A ring recreated by a restarted producer is read from
    its start (what the producer raised while starting counts too); at the notifier's own start
    only what comes after (an old alert is not sent again by a restart of ours)."""

    def __init__(self, view: InstanceView, symbols: list[str]) -> None:
        self.view = view
        self.symbols = symbols
        self._attaches: dict[str, int] = {}
        self._started = False

    def poll(self) -> list[Alert]:
        out = []
        for proc in ALERT_PRODUCERS:
            ring = self.view.ring(alerts_name(proc), M.Alert)
            ring.att.get()
            seen = self._attaches.get(proc)
            attaches = ring.att.attaches
            # at our start: only what comes next; a ring that appears or is recreated later: all of it
            history = 0 if seen == attaches or (seen is None and not self._started) else 255
            self._attaches[proc] = attaches
            for rec in ring.poll(limit=256, history=history):
                sid = int(rec["symbol_id"])
                out.append(Alert(proc, int(rec["level"]), code_name(proc, int(rec["code"])),
                                 bytes(rec["text"]).rstrip(b"\0").decode(errors="replace"),
                                 self.symbols[sid] if 0 <= sid < len(self.symbols) else "",
                                 float(rec["value"]), int(rec["ts"])))
        self._started = True
        return out


class Watchdog:
    """Alerts nobody else raises: a required process going stale (and coming back), the circuit
    breaker opening (and closing), journal append errors. Transitions only, not levels."""

    def __init__(self, view: InstanceView, required: tuple[str, ...], stale_after_s: float,
                 start_grace_s: float, now: float | None = None) -> None:
        self.view = view
        self.required = required
        self.stale_after_s = stale_after_s
        self.grace_until = (time.monotonic() if now is None else now) + start_grace_s
        self.stale: dict[str, bool] = {}
        self.breaker_open = False
        self.journal_errors = -1  # -1 = not read yet (what is there at our start is not new)

    def poll(self, now: float | None = None) -> list[Alert]:
        now = time.monotonic() if now is None else now
        out: list[Alert] = []
        for proc, st in self.view.statuses(self.required, self.stale_after_s).items():
            if proc not in self.required:
                continue
            was = self.stale.get(proc)
            stale = not st["fresh"]
            if stale and was is None and now < self.grace_until:
                continue  # still starting up: judged once the grace period is over
            if stale and not was:
                out.append(Alert(proc, M.ALERT_CRITICAL, "process_stale", f"{proc} is stale: {st['why']}"))
            elif not stale and was:
                out.append(Alert(proc, M.ALERT_INFO, "process_back", f"{proc} is fresh again (pid {st['pid']})"))
            self.stale[proc] = stale
        got = self.view.counters("execution")
        if got is not None:
            counters = got[0]
            opened = counters.get("breaker_state", 0) == 1
            if opened != self.breaker_open:
                self.breaker_open = opened
                out.append(Alert("execution", M.ALERT_CRITICAL, "breaker_open",
                                 "circuit breaker open: the venue keeps failing, new orders are denied")
                           if opened else Alert("execution", M.ALERT_INFO, "breaker_closed", "circuit breaker closed"))
            errors = counters.get("journal_errors", 0)
            if self.journal_errors >= 0 and errors > self.journal_errors:
                out.append(Alert("execution", M.ALERT_CRITICAL, "journal_error",
                                 f"journal append failed ({errors - self.journal_errors} new): execution stops "
                                 "taking intents and restarts", value=float(errors)))
            self.journal_errors = errors
        return out
