"""The risk agent: shm in (``exec``, ``md.book``, control queue), shm out (``risk.state``,
``alerts.risk``, counters), the engine in between.

Each duty cycle drains ``exec`` completely (it is a gating ring: execution must never wait for
risk), takes the exchange's mark price per symbol from ``md.mark`` and the newest book per symbol
from ``md.book`` (its mid is the mark while the exchange's is missing or older than
``mark_max_age_s``; the side present when one side is empty; resyncing books are skipped),
checks the control queue every few milliseconds and hands reconciliation results to the engine.
Every ``publish_interval_ms`` the engine recomputes the account (margin, leverage, liquidation
prices), its limits and crisis mode. ``risk.state`` is written after every batch that changed
anything and at least every ``publish_interval_ms``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path

import numpy as np
import posix_ipc

from procs.core import control as C
from procs.core import log
from procs.core import messages as M
from procs.core.agent import NoStatus
from procs.core.instruments import Instrument
from procs.core.registry import (
    EXEC,
    MD_BOOK,
    MD_MARK,
    RISK_STATE,
    RingCapacities,
    alerts_name,
    build_registry,
)
from procs.core.reload import Hangup, Reloader
from procs.core.status import StatusWriter
from procs.venue.protocols import AccountSource
from shm.counters import Counters
from shm.idle import Waiter, make_idle
from shm.ring import Consumer
from shm.segment import LayoutError

from . import alerts as A
from .config import RiskConfig
from .engine import RiskEngine
from .reconcile import Reconciler

PROC = "risk"
COMMAND_POLL_NS = 5_000_000  # the control queue is a syscall: look at most every 5 ms
ATTACH_RETRY_NS = 1_000_000_000
SMALL_BATCH = 16
_FILL_KINDS = (M.ORDER_FILLED, M.ORDER_PARTIALLY_FILLED)
_K, _SID, _SYM, _SIDE, _LQ, _LPX, _FEE, _TR, _TE = (M.OrderEvent.names.index(f) for f in (
    "kind", "strategy_id", "symbol_id", "side", "last_qty", "last_px", "fee_e8", "ts_recv", "ts_event"))


class Counter(IntEnum):
    EXEC_EVENTS = 0
    FILLS = 1
    BOOK_UPDATES = 2
    BOOK_LOST = 3
    STATE_CHANGES = 4
    ALERTS = 5
    RECONCILIATIONS = 6
    RECONCILE_FAILURES = 7
    MISMATCHES = 8
    COMMANDS = 9
    COMMANDS_REFUSED = 10
    BAD_COMMANDS = 11
    CANCEL_ALLS = 12
    PUBLISHES = 13
    UNKNOWN_SYMBOL = 14
    TRADING_STATE = 15  # gauge: 1 ACTIVE, 2 REDUCING, 3 HALTED
    EQUITY_E8 = 16  # gauge
    DRAWDOWN_E8 = 17  # gauge
    DAILY_PNL_E8 = 18  # gauge
    GROSS_EXPOSURE_E8 = 19  # gauge
    # replay harness lockstep gauges, kept only with [risk] sim_clock (procs/tools/replay/lockstep.py):
    # the ring positions a duty cycle handled and published risk.state for, written last
    EXEC_DONE = 20
    BOOK_DONE = 21
    MARK_UPDATES = 22  # the exchange's mark prices read from md.mark
    MARGIN_RATIO_E6 = 23  # gauge: maintenance margin / margin balance * 1e6 (-1 unknown)
    CRISIS_TRIGGERS = 24  # gauge: crisis mode's triggers true now (procs/risk/crisis.py bits)
    RECONCILE_IN_FLIGHT = 25  # differences the fills around a reconcile request explained (not mismatches)


class Hist(IntEnum):
    FILL_TO_STATE = 0  # OrderEvent.ts_recv (execution got the fill) -> risk.state written
    RECONCILE = 1  # account snapshot round trips (the venue's account and positions)


def _names(config_path: str | Path | None) -> dict[int, str]:
    """strategy_id -> its id in [strategy] (empty when the file has none, or cannot say)."""
    from procs.core.config import ConfigError
    from procs.strategy.config import strategy_names

    try:
        return strategy_names(str(config_path) if config_path else None)
    except (ConfigError, ValueError):
        return {}


class RiskAgent:
    """Duty cycle of the risk process (``procs.core.agent.run_process`` drives it; tests call
    ``do_work``)."""

    name = PROC

    def __init__(self, cfg: RiskConfig, instance: str, instruments: list[Instrument], depth: int,
                 config_path: str | Path | None = None, account: AccountSource | None = None,
                 on_shutdown: Callable[[], None] | None = None, rings: RingCapacities | None = None) -> None:
        self.cfg = cfg
        self.instance = instance
        # reload: SIGHUP or the Reload command re-reads [risk] whole (limits, thresholds and any
        # field not restart_only) and the engine takes it; risk.state shows it at the next publish
        self.reloader = Reloader(None if config_path is None else str(config_path), instance, PROC, PROC,
                                 RiskConfig, cfg)
        self.hangup: Hangup | None = None  # set by start(), installed before the instruments are fetched
        self.status: StatusWriter | NoStatus = NoStatus()
        self.reg = build_registry(depth, rings)
        self.waiter = Waiter(instance, PROC)
        self.idle = make_idle(cfg.runtime.idle, self.waiter)
        self.on_shutdown = on_shutdown or (lambda: os.kill(os.getpid(), signal.SIGTERM))
        self.writer = self.reg.writer(instance, RISK_STATE)
        self.alerts = self.reg.producer(instance, alerts_name(PROC))
        self.counters = Counters.create(instance, PROC, Counter, Hist)
        self.sim_clock = None
        if cfg.sim_clock:  # a replay: the UTC day is the recording's (procs/core/simclock.py)
            from procs.core.simclock import SimClock

            self.sim_clock = SimClock(instance)
        holds = None if cfg.holds_file == "-" or cfg.sim_clock else Path(cfg.holds_file or
                                                                         f"run/risk/{instance}.holds.json")
        self.engine = RiskEngine(cfg, instruments, self._publish_alert, self._send_cancel_all,
                                 None if self.sim_clock is None else self.sim_clock.now_s(), holds_path=holds)
        self.n_symbols = len(instruments)
        self.rec = np.zeros(1, M.RiskState)
        self.inbox = C.ControlInbox(instance, PROC)
        self.exec_c: Consumer | None = None
        self.book_c: Consumer | None = None
        self.mark_c: Consumer | None = None
        self.reconciler: Reconciler | None = None
        if cfg.reconcile and account is not None:  # the venue's account: where reconciliation asks
            self.reconciler = Reconciler(account, cfg.reconcile_interval_s, cfg.reconcile_timeout_s, wake=self._wake,
                                         symbols=[i.symbol for i in instruments], settle_s=cfg.reconcile_settle_s)
        self._pending_fill_ts: list[int] = []
        self._next_publish = 0
        self._next_periodic = 0
        self._next_cmd = 0
        self._next_attach = 0
        self._seed_pending = False
        self._publish_every = cfg.publish_interval_ms * 1_000_000
        self._closed = False
        self.history = None  # live P&L history (procs/risk/history.py); a replay's clock is not the wall's
        if cfg.history.enabled and self.sim_clock is None:
            from procs.risk.history import PnlHistory

            self.history = PnlHistory(Path(cfg.history.dir) / instance, _names(config_path), cfg.history.interval_s,
                                      cfg.history.seal_s)

    # -- sinks the engine calls -------------------------------------------------------------
    def _publish_alert(self, level: int, code: int, symbol_id: int, value: float, text: str) -> None:
        self.alerts.try_publish(time.time_ns(), level, code, symbol_id, value, text.encode()[:88])
        fn = {M.ALERT_INFO: log.info, M.ALERT_WARN: log.warn}.get(level, log.error)
        fn("alert_raised", code=A.NAMES.get(code, str(code)), symbol_id=symbol_id, value=value, text=text)

    def _send_cancel_all(self, why: str) -> bool:
        # risk.state first: execution must already read the new state (HALTED denies in line)
        # when it runs the CancelAll. Sent before the write, a cancel's answer could come back
        # and the strategy's next intent pass the old ACTIVE state: an order placed after the
        # cancel pass, left working under HALTED (the kill-switch system test, 1 run in 4).
        self.publish(time.monotonic_ns())
        try:
            C.send_command(self.instance, "execution", C.CancelAll(operator="risk"), timeout=0.05)
            return True
        except (FileNotFoundError, posix_ipc.BusyError, posix_ipc.Error) as exc:
            log.warn("cancel_all_not_sent", why=why, reason=str(exc))
            return False

    def _wake(self) -> None:
        try:
            self.waiter.sem.release()
        except posix_ipc.Error:
            pass

    @property
    def config_path(self) -> str | None:
        """The deployment file a reload reads (the reloader's)."""
        return self.reloader.config_path

    @config_path.setter
    def config_path(self, path: str | Path | None) -> None:
        self.reloader.config_path = None if path is None else str(path)

    # -- lifecycle --------------------------------------------------------------------------
    def on_start(self) -> None:
        self.attach(self.cfg.attach_timeout_s)
        if self.reconciler is not None and self.cfg.seed_from_exchange:
            if self.exec_c is not None:
                self.seed_from_exchange()
            else:
                self.seed_before_exec()
        self.refresh_counters()  # a reopened counters segment still holds the last run's values
        self.publish(time.monotonic_ns())
        if self.reconciler is not None:
            self.reconciler.start()
        log.info("risk_started", instance=self.instance, symbols=self.engine.symbols, state=self.engine.ts.name,
                 money_scale=self.engine.ledger.money_scale, reconcile=self.reconciler is not None,
                 exec_attached=self.exec_c is not None, book_attached=self.book_c is not None)

    def seed_from_exchange(self) -> None:
        """Book what the exchange holds beyond our ledger, after the exec backlog is drained (so
        fills made while we were down count once)."""
        assert self.reconciler is not None
        self._seed_pending = False
        self.drain_exec()
        res = self.reconciler.check_once()
        if res.ok and self.cfg.reconcile_settle_s > 0:
            # the fills the answer holds that were still on their way (RiskEngine.seed)
            time.sleep(self.cfg.reconcile_settle_s)
            self.drain_exec()
        self.engine.seed(res)

    def seed_before_exec(self) -> None:
        """No exec ring yet: take the exchange's positions now and seed them if the ring is still
        missing once they are in.

        Execution creates the ring before it sends any order, and risk's named cursor then reads
        it from its first record: a snapshot taken while the ring did not exist holds none of the
        fills the ring will report, so each counts once. Seeding later instead (when the ring
        appears) raced with execution's first orders: a fill already in the exchange's position
        but not yet published on the ring was counted twice, a reconcile_mismatch hold
        (docs/decisions/027-risk-seeding-and-own-clock.md).
        """
        assert self.reconciler is not None
        res = self.reconciler.check_once()
        self.attach(0.0)
        if self.exec_c is not None:
            # the ring appeared while we asked (the snapshot may hold its fills): drain, then ask
            # again; that can still race with a fill in flight, but only in this narrow window
            self.seed_from_exchange()
        elif res.ok:
            self.engine.seed(res)
        else:
            log.once("seed_snapshot_failed", "warn", "seed_snapshot_failed", reason=res.error)
            self._seed_pending = True  # the exchange did not answer: asked again at the next attach retry

    def attach(self, timeout: float = 0.0) -> int:
        """Attach to the rings not attached yet; returns how many are still missing."""
        for attr, ring in (("exec_c", EXEC), ("book_c", MD_BOOK), ("mark_c", MD_MARK)):
            if getattr(self, attr) is None:
                try:
                    setattr(self, attr, self.reg.consumer(self.instance, ring, PROC, timeout=timeout,
                                                          waiter=self.waiter))
                    log.info("ring_attached", ring=ring)
                except (TimeoutError, LayoutError, ValueError, OSError) as exc:  # not there (yet)
                    log.once(f"attach_{ring}:{type(exc).__name__}", "warn", "ring_not_ready", ring=ring, reason=str(exc))
        return (self.exec_c is None) + (self.book_c is None) + (self.mark_c is None)

    def on_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.reconciler is not None:
            self.reconciler.stop()
        self.drain_exec()
        self.publish(time.monotonic_ns())
        self.refresh_counters()
        if self.history is not None:
            self.history.maybe_sample(self.engine.ledger, force=True)  # the state at the stop
            self.history.close()
        log.info("risk_stopped", **{k: v for k, v in self.engine.snapshot().items() if k != "strategies"})
        for c in (self.exec_c, self.book_c, self.mark_c):
            if c is not None:
                c.close()
        self.inbox.close(unlink=True)
        self.waiter.close(unlink=True)
        self.writer.close()
        self.alerts.close()
        self.counters.close()

    # -- duty cycle -------------------------------------------------------------------------
    def do_work(self) -> int:
        now = time.monotonic_ns()
        if self.hangup is not None and self.hangup.take():
            self.reload()
        n = self.drain_exec() if self.exec_c is not None else 0
        if self.book_c is not None:
            n += self.read_book()
        if self.mark_c is not None:
            n += self.read_marks()
        if now >= self._next_cmd:
            self._next_cmd = now + COMMAND_POLL_NS
            n += self.read_commands()
        rec = self.reconciler
        while rec is not None and rec.results:
            res = rec.results.popleft()
            self.counters.record(Hist.RECONCILE, res.duration_ns)
            self.engine.on_reconcile(res)
            n += 1
        if n:
            self.engine.evaluate()
        # The periodic part has its own clock: tied to the publish deadline (which every
        # publish pushes on), a book moving every cycle kept risk.state dirty and starved it, so
        # a ring missing at start was never attached (risk held 0 while the exchange held 0.006:
        # the position-agreement system test under load), counters went stale, no day roll.
        periodic = now >= self._next_periodic
        if periodic:
            self._next_periodic = now + self._publish_every
            # the UTC day roll needs the wall clock (the recording's in a replay)
            self.engine.evaluate(time.time() if self.sim_clock is None else self.sim_clock.now_s())
            self.engine.tick(now, crisis=self.sim_clock is None)
            self.refresh_counters()
            if self.history is not None:
                self.history.maybe_sample(self.engine.ledger)
            if (self.exec_c is None or self.book_c is None or self.mark_c is None) and now >= self._next_attach:
                self._next_attach = now + ATTACH_RETRY_NS
                if self._seed_pending and self.exec_c is None:
                    self.seed_before_exec()  # the exchange did not answer at start: ask again (attaches)
                else:
                    self.attach(0.0)
                if self._seed_pending and self.exec_c is not None:
                    self.seed_from_exchange()
        if periodic or self.engine.dirty or now >= self._next_publish:
            self.publish(time.monotonic_ns())
        if self.sim_clock is not None:
            for ring, ctr in ((self.exec_c, Counter.EXEC_DONE), (self.book_c, Counter.BOOK_DONE)):
                if ring is not None:
                    self.counters.set(ctr, ring.position)
        return n

    def drain_exec(self) -> int:
        """Every available OrderEvent (all batches); fills go to the ledger."""
        c = self.exec_c
        if c is None:
            return 0
        total = 0
        eng = self.engine
        while True:
            b = c.poll()
            n = len(b)
            if n == 0:
                break
            if self.history is not None:
                self.history.on_exec(b)  # open orders per strategy and symbol
            if n <= SMALL_BATCH:  # one tolist beats a dozen numpy calls on a few records
                for row in b.tolist():
                    if row[_K] in _FILL_KINDS and row[_LQ] > 0:
                        if eng.on_fill(row[_SID], row[_SYM], row[_SIDE], row[_LQ], row[_LPX], row[_FEE],
                                       row[_TE]) and row[_TR] > 0:
                            self._pending_fill_ts.append(row[_TR])
                c.commit()
                total += n
                continue
            k = b["kind"]
            m = ((k == M.ORDER_FILLED) | (k == M.ORDER_PARTIALLY_FILLED)) & (b["last_qty"] > 0)
            if m.any():
                f = b[m]  # a copy: the view is only ours until commit
                for sid, sym, side, q, px, fee, tr, te in zip(
                        f["strategy_id"].tolist(), f["symbol_id"].tolist(), f["side"].tolist(),
                        f["last_qty"].tolist(), f["last_px"].tolist(), f["fee_e8"].tolist(),
                        f["ts_recv"].tolist(), f["ts_event"].tolist(), strict=True):
                    if eng.on_fill(sid, sym, side, q, px, fee, te) and tr > 0:
                        self._pending_fill_ts.append(tr)
            c.commit()
            total += n
        if total:
            self.counters.inc(Counter.EXEC_EVENTS, total)
        return total

    def read_book(self) -> int:
        """The newest good book per symbol in the available batch: its mid and crisis mode's inputs."""
        c = self.book_c
        assert c is not None
        b = c.poll(limit=1024)
        n = len(b)
        if n:
            self._newest_books(b, n, time.monotonic_ns())
            c.commit()
            self.counters.inc(Counter.BOOK_UPDATES, n)
        return n

    def _newest_books(self, b: np.ndarray, n: int, now: int) -> None:
        seen: set[int] = set()
        sids = b["symbol_id"]
        for i in range(n - 1, -1, -1):
            sid = int(sids[i])
            if sid in seen:
                continue
            r = b[i]
            if r["flags"] & M.BOOK_RESYNCING:
                continue  # an older record of this batch may still be good
            seen.add(sid)
            nb, na = int(r["n_bids"]), int(r["n_asks"])
            self.engine.on_book(sid, int(r["bid_px"][0]) if nb else 0, int(r["ask_px"][0]) if na else 0, now)
            if len(seen) >= self.n_symbols:
                break

    def read_marks(self) -> int:
        """The exchange's newest mark price per symbol in the available batch."""
        c = self.mark_c
        assert c is not None
        b = c.poll(limit=1024)
        if len(b):
            now = time.monotonic_ns()
            for sid, px in dict(zip(b["symbol_id"].tolist(), b["mark_px"].tolist(), strict=True)).items():
                self.engine.on_venue_mark(sid, px, now)  # the dict keeps each symbol's last record
            c.commit()
            self.counters.inc(Counter.MARK_UPDATES, len(b))
        return len(b)

    def read_commands(self) -> int:
        cmds = self.inbox.poll()
        for cmd in cmds:
            log.info("command_received", command=type(cmd).__name__, operator=cmd.operator,
                     fields={k: getattr(cmd, k) for k in cmd.__struct_fields__ if k != "operator"})
            if isinstance(cmd, C.Reload):
                self.reload(cmd.source, cmd.operator, cmd.reason)
            elif isinstance(cmd, C.Shutdown):
                self.on_shutdown()
            elif isinstance(cmd, C.Ping):
                log.info("pong", state=self.engine.ts.name)
            else:
                self.engine.on_command(cmd)
        if self.inbox.bad:
            self.counters.set(Counter.BAD_COMMANDS, self.inbox.bad)
        return len(cmds)

    def reload(self, source: str = "", operator: str = "", reason: str = "") -> None:
        """[risk] from the file, whole: applied when valid and no restart-only field changed;
        otherwise the old config runs on and an alert and a log line say why."""
        got = self.reloader.read()
        if isinstance(got, str):
            log.warn("reload_refused", reason=got, operator=operator)
            self.engine.alert(M.ALERT_WARN, A.RELOAD_FAILED, got)
            return
        cfg, data = got
        if self.engine.reload(cfg):
            self.cfg = cfg
            config_hash = self.reloader.applied(cfg, data, source, operator, reason)
            self.status.set_config_hash(config_hash)
            self.publish(time.monotonic_ns())  # the new limits in risk.state now, not at the next tick
            log.info("limits_reloaded", config=str(self.config_path), config_hash=config_hash,
                     version=self.engine.version)

    # -- publication ------------------------------------------------------------------------
    def publish(self, now: int) -> None:
        """Write risk.state (one SeqLock write) and refresh counters and gauges."""
        eng = self.engine
        eng.write_state(self.rec, now)
        w = self.writer
        w.begin()
        w.records[0] = self.rec[0]
        w.end()
        done = time.monotonic_ns()
        for tr in self._pending_fill_ts:
            self.counters.record(Hist.FILL_TO_STATE, done - tr)
        self._pending_fill_ts.clear()
        self._next_publish = now + self._publish_every
        self.counters.inc(Counter.PUBLISHES)

    def refresh_counters(self) -> None:
        """Copy the engine's counts and gauges into shm (every publish interval, not per event)."""
        eng = self.engine
        cs = self.counters
        cs.set(Counter.FILLS, eng.fills)
        cs.set(Counter.STATE_CHANGES, eng.ts.changes)
        cs.set(Counter.ALERTS, eng.alerts)
        cs.set(Counter.RECONCILIATIONS, eng.reconciliations)
        cs.set(Counter.RECONCILE_FAILURES, eng.recon_failures)
        cs.set(Counter.MISMATCHES, eng.mismatches)
        cs.set(Counter.RECONCILE_IN_FLIGHT, eng.in_flight_matches)
        cs.set(Counter.COMMANDS, eng.commands)
        cs.set(Counter.COMMANDS_REFUSED, eng.refused)
        cs.set(Counter.CANCEL_ALLS, eng.cancel_alls)
        cs.set(Counter.UNKNOWN_SYMBOL, eng.unknown_symbol)
        cs.set(Counter.TRADING_STATE, eng.ts.state)
        cs.set(Counter.EQUITY_E8, int(self.rec["equity_e8"][0]))
        cs.set(Counter.DRAWDOWN_E8, int(self.rec["drawdown_e8"][0]))
        led = eng.ledger
        cs.set(Counter.DAILY_PNL_E8, led.to_e8(eng.daily_pnl()))
        cs.set(Counter.GROSS_EXPOSURE_E8, led.to_e8(led.gross_exposure()))
        if self.book_c is not None:
            cs.set(Counter.BOOK_LOST, self.book_c.lost)
        cs.set(Counter.MARGIN_RATIO_E6, int(self.rec["margin_ratio_e6"][0]))
        cs.set(Counter.CRISIS_TRIGGERS, eng.crisis.active)

    def on_heartbeat(self) -> None:
        """Liveness stamps on the segments we own and the consumer slots we hold."""
        self.writer.heartbeat()
        self.alerts.heartbeat()
        self.counters.heartbeat()
        for c in (self.exec_c, self.book_c, self.mark_c):
            if c is not None:
                c.heartbeat()
