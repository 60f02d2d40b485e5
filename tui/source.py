"""The TUI's read-only data source: everything a panel shows, read from the instance's shared
memory (observers only: never a consumer slot, never a write) plus supervisord and psutil.

``refresh()`` runs once per tick and catches up the observed rings (exec, md.trade,
strategy.signals); panels then read what they need. Tests build one over shm they filled.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil

from procs.core import messages as M
from procs.core import services
from procs.core.instruments import Instrument
from procs.core.registry import (
    ALERT_PRODUCERS,
    EXEC,
    MD_TRADE,
    PROCESSES,
    RISK_STATE,
    SIGNALS,
    alerts_name,
    book_state_name,
)
from procs.monitor.orders import OrderTracker
from procs.monitor.shmview import InstanceView
from shm.counters import summary_us

from .roster import StrategyRoster
from .supervisor import SupervisorClient

# processes without a status block of their own: supervisord's state is their health
NO_STATUS = frozenset({"exchange_sim"} | {s.name for s in services.SERVICES if s.external})


@dataclass
class LatencyRow:
    proc: str
    stage: str
    count: int
    p50_us: float
    p95_us: float
    p99_us: float
    p999_us: float
    counts: np.ndarray


class ShmSource:
    """Read-only view of one instance for the panels."""

    def __init__(self, instance: str, symbols: list[str], instruments: dict[str, Instrument],
                 depth: int = M.DEFAULT_DEPTH, stale_after_s: float = 2.0,
                 supervisor: SupervisorClient | None = None, supervisor_poll_s: float = 1.0,
                 trades: int = 200) -> None:
        self.instance = instance
        self.symbols = list(symbols)
        self.instruments = instruments
        self.depth = depth
        self.stale_after_s = stale_after_s
        self.view = InstanceView(instance, depth)
        self.book_dtype = M.book_update_dtype(depth)
        self.tracker = OrderTracker(500)
        self.trades: deque[np.void] = deque(maxlen=trades)
        self.signals: deque[np.void] = deque(maxlen=200)
        self.supervisor = supervisor
        self.supervisor_poll_s = supervisor_poll_s
        self._sup: dict[str, dict[str, Any]] = {}
        self._sup_at = 0.0
        self._ps: dict[int, psutil.Process] = {}
        self._rows: list[dict[str, Any]] = []
        self._rows_at = -1e9
        self.ticks = 0
        self._exec_attaches = 0
        self.roster: StrategyRoster | None = None  # set by the app from its config file
        self._roster_at = 0.0

    # -- per tick ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Catch up the observed rings (cheap when nothing happened)."""
        self.ticks += 1
        ring = self.view.ring(EXEC, M.OrderEvent)
        ev = ring.poll(limit=8192, history=8191)
        if ring.att.attaches != self._exec_attaches:  # a new exec ring (cleaned and recreated): start over
            self._exec_attaches = ring.att.attaches
            self.tracker = OrderTracker(500)
        if len(ev):
            self.tracker.apply(ev)
        tr = self.view.ring(MD_TRADE, M.Trade).poll(limit=4096, history=self.trades.maxlen or 0)
        self.trades.extend(tr[-(self.trades.maxlen or 0):])
        if self.roster is not None and time.monotonic() - self._roster_at >= 1.0:
            self._roster_at = time.monotonic()
            self.roster.refresh()  # one stat() a second; re-parsed only when the file changed
        sg = self.view.ring(SIGNALS, M.Signal).poll(limit=4096, history=200)
        self.signals.extend(sg[-200:])

    # -- reads ------------------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol)

    def strategy_name(self, num: int) -> str:
        """A record's ``strategy_id`` as the configured strategy id (the number if unknown)."""
        return self.roster.name(num) if self.roster is not None else str(num)

    def symbol_name(self, sid: int) -> str:
        if sid < 0:
            return "-"  # not about one symbol
        return self.symbols[sid] if sid < len(self.symbols) else f"#{sid}"

    def book(self, symbol: str) -> np.void | None:
        got = self.view.state(book_state_name(symbol), self.book_dtype).read()
        return None if got is None else got[0][0]

    def risk(self) -> np.void | None:
        got = self.view.state(RISK_STATE, M.RiskState).read()
        return None if got is None else got[0][0]

    def mark(self, sid: int) -> int:
        """Mark in ticks: risk's mark, else the book's mid; 0 when unknown."""
        r = self.risk()
        if r is not None and 0 <= sid < M.MAX_SYMBOLS and int(r["mark"][sid]):
            return int(r["mark"][sid])
        if 0 <= sid < len(self.symbols):
            b = self.book(self.symbols[sid])
            if b is not None and b["n_bids"] and b["n_asks"]:
                return (int(b["bid_px"][0]) + int(b["ask_px"][0])) // 2
        return 0

    def alerts(self, n: int = 100) -> list[tuple[str, np.void]]:
        rows = []
        for p in ALERT_PRODUCERS:
            rows += [(p, a) for a in self.view.ring(alerts_name(p), M.Alert).tail(n)]
        rows.sort(key=lambda r: int(r[1]["ts"]), reverse=True)
        return rows[:n]

    def latency(self) -> list[LatencyRow]:
        out = []
        for proc, (_c, hists) in sorted(self.view.all_counters().items()):
            for stage, counts in hists.items():
                s = summary_us(counts)
                out.append(LatencyRow(proc, stage, s["count"], s["p50_us"], s["p95_us"], s["p99_us"], s["p999_us"], counts))
        return out

    def processes(self) -> list[dict[str, Any]]:
        """One row per known process: shm status (fresh or stale and why) + supervisord + psutil."""
        now = time.monotonic()
        if now - self._rows_at < 0.5:  # CPU% needs an interval anyway; 2 Hz is plenty for people
            return self._rows
        self._rows_at = now
        if self.supervisor is not None and now - self._sup_at >= self.supervisor_poll_s:
            self._sup = self.supervisor.programs()
            self._sup_at = now
        # a service behind an on/off switch (the simulator, the bridge) is listed once it runs
        always = {n for n in PROCESSES if not services.BY_NAME[n].enabled_by}
        names = sorted(set(self.view.status_procs()) | set(self._sup) | always)
        rows = []
        for n in names:
            st = self.view.status(n, self.stale_after_s)
            sup = self._sup.get(n, {})
            pid = int(sup.get("pid") or st["pid"] or 0)
            row = {"name": n, "supervisor": sup.get("state", "-"), "uptime_s": sup.get("uptime_s") or st["uptime_s"],
                   "state": st["state"], "age_s": st["age_s"], "fresh": st["fresh"], "why": st["why"],
                   "pid": pid, "cpu_pct": None, "affinity": ""}
            if n in NO_STATUS and sup.get("state") == "RUNNING":  # no status block: supervisord's word
                row["fresh"], row["why"] = True, ""
            if n == "bridge" and st["alive"]:
                row["why"] = self.bridge_summary() or row["why"]
            if pid and (st["alive"] or sup.get("state") == "RUNNING"):
                row["cpu_pct"], row["affinity"] = self._cpu(pid)
            rows.append(row)
        self._rows = rows
        return rows

    def bridge_summary(self) -> str:
        """The bridge's NATS state, lag and drops from its counters ("" when it has none)."""
        got = self.view.counters("bridge")
        if got is None:
            return ""
        c = got[0]
        return (f"NATS {'up' if c.get('connected') else 'DOWN'}, lag {c.get('lag_us', 0) / 1e6:.1f}s, "
                f"held {c.get('buffered', 0)}, dropped md {c.get('dropped_outage', 0) + c.get('dropped_slow', 0)} "
                f"exec/alerts {c.get('dropped_durable', 0)}, lapped {c.get('lapped', 0)}")

    def invalidate(self) -> None:
        """Re-read supervisord on the next tick (after a start/stop/restart)."""
        self._sup_at = self._rows_at = -1e9

    def _cpu(self, pid: int) -> tuple[float | None, str]:
        try:
            p = self._ps.get(pid)
            if p is None:
                p = self._ps[pid] = psutil.Process(pid)
                p.cpu_percent(None)  # first call primes the counter
            aff = p.cpu_affinity()
            n = psutil.cpu_count() or len(aff)
            return p.cpu_percent(None), ("all" if len(aff) == n else ",".join(map(str, aff)))
        except (psutil.Error, OSError):
            self._ps.pop(pid, None)
            return None, ""

    def close(self) -> None:
        self.view.close()
