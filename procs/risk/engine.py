"""The risk engine: ledger + limits + trading-state machine + reconciliation verdicts, no I/O.

The agent feeds it fills, marks, control commands and reconciliation results and publishes
what it says: ``write_state`` fills a RiskState record, alerts go to the injected sink and
``cancel_all`` is an injected callable (the agent sends ``CancelAll`` to execution). Every
method is cheap enough for the agent's loop except ``snapshot``.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import msgspec
import numpy as np

from procs.core import control as C
from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.venue.messages import MarginTier

from . import alerts as A
from . import crisis as X
from . import margin as MG
from . import state as S
from .config import RiskConfig
from .ledger import SEED, Ledger
from .limits import LEVELS, Limits

_W = {name: M.RiskState.fields[name][1] // 8 for name in M.RiskState.names}
# the holds a restart keeps (only an operator may clear them); a reconcile hold is found again
KEPT_HOLDS = frozenset((S.REASON_KILL_SWITCH, S.REASON_OPERATOR, S.REASON_DAILY_LOSS, S.REASON_DRAWDOWN,
                        S.REASON_CRISIS))
# holds a margin/leverage breach sets, and the limit each one watches
_LIMIT_HOLDS = (S.REASON_MARGIN, S.REASON_LEVERAGE)
RECENT_FILLS = 4096  # per symbol: more than a busy market maker makes between two reconciliations
_REASON_BY_NAME = {name: r for r, name in S.REASON_NAMES.items()}
assert all(M.RiskState.fields[n][0].base == np.dtype("<i8") for n in M.RiskState.names)
_W_STATE, _W_UPDATED, _W_REASON = _W["trading_state"], _W["updated_ns"], _W["halt_reason"]
_W_VERSION, _W_EQUITY, _W_DRAWDOWN = _W["version"], _W["equity_e8"], _W["drawdown_e8"]
_W_POSITION, _W_MARK, _W_MARK_SOURCE = _W["position"], _W["mark"], _W["mark_source"]
_W_CRISIS, _W_CRISIS_ENTERED, _W_BREACH = _W["crisis_triggers"], _W["crisis_entered"], _W["limit_breach_ns"]
_W_ACCOUNT = _W["wallet_e8"]  # the account words risk appends after execution's pre-trade ones
_W_ACCOUNT_END = _W[M.RiskState.names[-1]] + M.MAX_SYMBOLS
assert M.RiskState.names[-1] == "spread_bps_e2" and M.RiskState.itemsize // 8 == _W_ACCOUNT_END
_E6 = Decimal(1_000_000)
_E8 = Decimal(100_000_000)


class ReconcileResult(msgspec.Struct, kw_only=True):
    """One reconciliation: the exchange's signed position per symbol (decimal text) or an error."""

    ok: bool
    error: str = ""
    positions: dict[str, str] = msgspec.field(default_factory=dict)
    entries: dict[str, str] = msgspec.field(default_factory=dict)  # the exchange's entry price per symbol
    wallet_balance: str = ""
    unrealized: str = ""
    open_order_margin: str = ""
    leverage: dict[str, int] = msgspec.field(default_factory=dict)  # the account's leverage setting per symbol
    tiers: dict[str, list[MarginTier]] = msgspec.field(default_factory=dict)  # margin brackets (when fetched)
    asked_ms: int = 0  # our wall clock when the request went out and when its answer came (0: unknown)
    answered_ms: int = 0
    duration_ns: int = 0


class RiskEngine:
    """Positions, P&L, limits and the trading state of one deployment."""

    def __init__(self, cfg: RiskConfig, instruments: list[Instrument], alert: A.AlertSink,
                 cancel_all: Callable[[str], bool], now_wall: float | None = None,
                 holds_path: Path | None = None) -> None:
        self.instruments = instruments
        self.symbols = [i.symbol for i in instruments]
        self.sid = {s: k for k, s in enumerate(self.symbols)}
        self._alert = alert
        self._cancel_all = cancel_all
        self.cfg = cfg
        self.limits = Limits(cfg, instruments)
        self.ledger = Ledger(instruments)
        self.ledger.capital = self.ledger.peak = self.ledger.money(cfg.capital)
        self.ts = S.TradingState()
        self.version = 1  # bumped on every trading-state or limits change
        self.dirty = True  # risk.state needs a write
        self._limits_written: tuple[int, Limits | None] = (0, None)
        self.day = int((time.time() if now_wall is None else now_wall) // 86400)
        self.day_base = 0  # total net P&L at the start of the UTC day
        n = len(instruments)
        self.over_limit = [False] * n
        self.mismatch_count: dict[str, int] = {}
        self.reported: dict[str, tuple[str, int]] = {}
        # the latest fills applied per symbol, (venue ms, signed lots): which of them an account
        # answer may hold (positions_at)
        self.recent_fills: list[collections.deque[tuple[int, int]]] = [
            collections.deque(maxlen=RECENT_FILLS) for _ in range(n)]
        self.in_flight_matches = 0  # mismatches the fills around the request explained (not counted)
        self.recon_failing = False
        self.wallet_balance = ""
        self.exchange_unrealized = ""
        # -- marks: the exchange's mark price when fresh, else the book's mid --------------------
        self.venue_mark = [0] * n
        self.venue_mark_ns = [0] * n
        self.mid = [0] * n
        self.mark_source = [M.MARK_UNKNOWN] * n
        # -- the account (procs/risk/margin.py) ---------------------------------------------------
        self.tiers: dict[int, list[MG.Tier]] = {}
        self._tiers_from: set[str] = set()  # symbols whose brackets came (each result carries them again)
        self.leverage_setting: dict[int, int] = {}
        self.wallet_base: int | None = None  # the exchange's wallet at the last reconciliation (money)
        self.cash_at_base = 0  # our realized - fees then
        self.open_order_margin = Decimal(0)
        self.account: MG.Account | None = None
        self.account_ns = 0
        self.breach_since: dict[int, int] = {}  # REASON_MARGIN / REASON_LEVERAGE -> monotonic ns
        self._margin_unknown_told: set[int] = set()
        now_ns = time.monotonic_ns()
        self.crisis = X.CrisisWatch(n, self.limits.crisis, now_ns)
        self.crisis_entered = 0
        self.account_words = self._account_words()
        # counters the agent copies into shm
        self.fills = 0
        self.alerts = 0
        self.reconciliations = 0
        self.recon_failures = 0
        self.mismatches = 0
        self.commands = 0
        self.refused = 0
        self.cancel_alls = 0
        self.unknown_symbol = 0
        lvl = LEVELS[cfg.initial_state]
        if lvl == M.HALTED:
            self.ts.hold(S.REASON_KILL_SWITCH, M.HALTED)
        elif lvl == M.REDUCING:
            self.ts.hold(S.REASON_OPERATOR, M.REDUCING)
        self.holds_path = holds_path
        self._save_failed = False
        self._saved_holds: dict[str, str] | None = None  # what the file holds (None: not read or written)
        if holds_path is not None:
            self._restore_holds(holds_path)
            self._save_holds()  # the file says what holds now (an unreadable one is replaced)

    # -- plumbing ---------------------------------------------------------------------------
    def alert(self, level: int, code: int, text: str, symbol_id: int = -1, value: float = 0.0) -> None:
        self.alerts += 1
        self._alert(level, code, symbol_id, value, text)

    def _change(self, fn: Callable[[], bool], why: str) -> bool:
        """Run a hold/release; on a state change alert, bump the version, cancel when due."""
        before = self.ts.state
        changed = fn()
        self._save_holds()  # a hold can be added under a stronger one: the state does not move
        if not changed:
            return False
        self.version += 1
        self.dirty = True
        after = self.ts.state
        if after != before:
            level = {M.ACTIVE: M.ALERT_INFO, M.REDUCING: M.ALERT_WARN, M.HALTED: M.ALERT_CRITICAL}[after]
            self.alert(level, A.STATE_CHANGED, f"{M.TRADING_STATE_NAMES[before]}->{self.ts.name} "
                       f"reason={S.REASON_NAMES[self.ts.reason]} ({why})", value=float(after))
            if after == M.HALTED or (after == M.REDUCING and self.cfg.cancel_all_on_reducing):
                self.send_cancel_all(f"state={self.ts.name}")
        return True

    def send_cancel_all(self, why: str) -> None:
        self.cancel_alls += 1
        if self._cancel_all(why):
            self.alert(M.ALERT_WARN, A.CANCEL_ALL_SENT, f"CancelAll sent to execution ({why})")
        else:
            self.alert(M.ALERT_CRITICAL, A.CANCEL_ALL_FAILED,
                       f"CancelAll not delivered: execution has no control queue ({why})")

    def _money_f(self, money: int) -> float:
        return float(self.ledger.to_decimal(money))

    # -- market and fills -------------------------------------------------------------------
    def on_fill(self, strategy_id: int, symbol_id: int, side: int, qty: int, px: int, fee_e8: int,
                ts_event_ns: int = 0) -> bool:
        """Apply one fill (``ts_event_ns``: the venue's time of it, 0 unknown); False (alerted
        once per symbol id) when the symbol is not configured."""
        if not 0 <= symbol_id < len(self.symbols) or qty <= 0:
            self.unknown_symbol += 1
            if self.unknown_symbol == 1:
                self.alert(M.ALERT_CRITICAL, A.UNKNOWN_SYMBOL, f"fill with unknown symbol_id={symbol_id} qty={qty}",
                           symbol_id=symbol_id)
            return False
        self.ledger.fill(strategy_id, symbol_id, side, qty, px, fee_e8)
        if ts_event_ns > 0:
            self.recent_fills[symbol_id].append((ts_event_ns // 1_000_000, qty if side == M.BUY else -qty))
        self.fills += 1
        self.dirty = True
        lim = int(self.limits.max_position[symbol_id])
        over = bool(lim) and abs(self.ledger.total[symbol_id].pos) > lim
        if over and not self.over_limit[symbol_id]:
            ins = self.instruments[symbol_id]
            pos = self.ledger.total[symbol_id].pos
            self.alert(M.ALERT_WARN, A.POSITION_OVER_LIMIT,
                       f"{ins.symbol} position {ins.lots_to_qty(pos)} over max {ins.lots_to_qty(lim)}",
                       symbol_id=symbol_id, value=float(ins.lots_to_qty(pos)))
        self.over_limit[symbol_id] = over
        return True

    def on_mark(self, symbol_id: int, ticks: int) -> None:
        """The book's mid (or its one side): the mark while the exchange's is missing or stale."""
        if 0 <= symbol_id < len(self.symbols) and ticks > 0:
            self.mid[symbol_id] = ticks
            if self.mark_source[symbol_id] != M.MARK_VENUE:
                self._set_mark(symbol_id, ticks, M.MARK_MID)

    def on_book(self, symbol_id: int, bid: int, ask: int, now_ns: int) -> None:
        """A good book's best bid and ask (0: that side is empty): the mid and crisis mode's inputs."""
        if not 0 <= symbol_id < len(self.symbols):
            return
        self.crisis.on_book(symbol_id, bid, ask, now_ns)
        if bid and ask:
            self.on_mark(symbol_id, (bid + ask) // 2)
        elif bid or ask:
            self.on_mark(symbol_id, bid or ask)

    def on_venue_mark(self, symbol_id: int, ticks: int, now_ns: int) -> None:
        """The exchange's mark price (md.mark): the mark while it is fresh."""
        if 0 <= symbol_id < len(self.symbols) and ticks > 0:
            self.venue_mark[symbol_id] = ticks
            self.venue_mark_ns[symbol_id] = now_ns
            self._set_mark(symbol_id, ticks, M.MARK_VENUE)

    def _set_mark(self, sid: int, ticks: int, source: int) -> None:
        if self.ledger.marks[sid] != ticks:
            self.ledger.marks[sid] = ticks
            self.dirty = True
        if self.mark_source[sid] != source:
            before = self.mark_source[sid]
            self.mark_source[sid] = source
            self.dirty = True
            if before != M.MARK_UNKNOWN:
                self.alert(M.ALERT_WARN if source == M.MARK_MID else M.ALERT_INFO, A.MARK_SOURCE_CHANGED,
                           f"{self.symbols[sid]} marks at the {M.MARK_SOURCE_NAMES[source]} "
                           f"(was the {M.MARK_SOURCE_NAMES[before]})", symbol_id=sid, value=float(source))

    def refresh_marks(self, now_ns: int) -> None:
        """A venue mark older than ``mark_max_age_s`` gives way to the mid (when there is one)."""
        max_age = self.limits.mark_max_age_ns
        for sid, src in enumerate(self.mark_source):
            if src == M.MARK_VENUE and now_ns - self.venue_mark_ns[sid] > max_age and self.mid[sid] > 0:
                self._set_mark(sid, self.mid[sid], M.MARK_MID)

    # -- holds across restarts ----------------------------------------------------------------
    def _kept_holds(self) -> dict[str, str]:
        return {S.REASON_NAMES[r]: M.TRADING_STATE_NAMES[lvl] for r, lvl in self.ts.holds.items() if r in KEPT_HOLDS}

    def _save_holds(self) -> None:
        """Write the holds only an operator may clear (tmp + rename, 0600); not on a hot path."""
        path = self.holds_path
        kept = self._kept_holds()
        if path is None or kept == self._saved_holds:
            return
        body = json.dumps({"holds": kept, "day": self.day, "saved": round(time.time(), 3)})
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(body)
            os.replace(tmp, path)
            self._save_failed = False
            self._saved_holds = kept
        except OSError as exc:
            if not self._save_failed:
                self._save_failed = True
                self.alert(M.ALERT_WARN, A.HOLDS_SAVE_FAILED, f"holds not saved to {path}: {exc!r}; "
                           f"a restart would not keep {self.ts.describe()}")

    def _restore_holds(self, path: Path) -> None:
        """Take back the last run's kept holds; an unreadable file starts HALTED (fail closed)."""
        try:
            data = json.loads(path.read_text())
            holds = data["holds"]
            restored = {_REASON_BY_NAME[k]: LEVELS[v] for k, v in holds.items()}
            day = int(data.get("day", self.day))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.ts.hold(S.REASON_KILL_SWITCH, M.HALTED)
            self.alert(M.ALERT_CRITICAL, A.HOLDS_RESTORED, f"holds file {path} unreadable ({exc!r}): started HALTED "
                       f"by the kill switch; an operator clears it (SetKillSwitch off)", value=float(M.HALTED))
            return
        if day != self.day:
            restored.pop(S.REASON_DAILY_LOSS, None)  # a new UTC day: the daily loss is measured afresh
        for r, lvl in restored.items():
            self.ts.hold(r, lvl)
        if restored:
            self.alert(M.ALERT_CRITICAL if self.ts.state == M.HALTED else M.ALERT_WARN, A.HOLDS_RESTORED,
                       f"kept from the last run: {self.ts.describe()}; state {self.ts.name} until an operator "
                       f"clears it", value=float(self.ts.state))

    # -- limits -----------------------------------------------------------------------------
    def daily_pnl(self) -> int:
        return self.ledger.net_pnl() - self.day_base

    def loss_breached(self) -> bool:
        lim = self.limits.max_daily_loss_e8
        return bool(lim) and -self.daily_pnl() >= self.ledger.from_e8(lim)

    def drawdown_breached(self) -> bool:
        lim = self.limits.max_drawdown_e8
        return bool(lim) and self.ledger.drawdown() >= self.ledger.from_e8(lim)

    def evaluate(self, now_wall: float | None = None) -> None:
        """Peaks, day roll and the loss/drawdown limits; call after each batch of fills/marks."""
        if now_wall is not None:
            day = int(now_wall // 86400)
            if day != self.day:
                self.day = day
                self.day_base = self.ledger.net_pnl()
                self.alert(M.ALERT_INFO, A.DAY_ROLLED, f"UTC day {day}: daily loss measured from here")
                self._change(lambda: self.ts.release(S.REASON_DAILY_LOSS), "new UTC day")
        self.ledger.update_peaks()
        if not self.ts.held(S.REASON_DAILY_LOSS) and self.loss_breached():
            pnl = self.daily_pnl()
            self.alert(M.ALERT_CRITICAL, A.DAILY_LOSS_BREACHED,
                       f"daily P&L {self.ledger.text(pnl)} breached max_daily_loss {self.cfg.max_daily_loss}",
                       value=self._money_f(pnl))
            self._change(lambda: self.ts.hold(S.REASON_DAILY_LOSS, self.limits.on_loss_breach), "daily loss")
        if not self.ts.held(S.REASON_DRAWDOWN) and self.drawdown_breached():
            dd = self.ledger.drawdown()
            self.alert(M.ALERT_CRITICAL, A.DRAWDOWN_BREACHED,
                       f"drawdown {self.ledger.text(dd)} breached max_drawdown {self.cfg.max_drawdown}",
                       value=self._money_f(dd))
            self._change(lambda: self.ts.hold(S.REASON_DRAWDOWN, self.limits.on_drawdown_breach), "drawdown")

    def reload(self, cfg: RiskConfig) -> bool:
        """New limits (positions and holds stay); alerts and keeps the old ones when invalid."""
        try:
            limits = Limits(cfg, self.instruments)
        except ValueError as exc:
            self.alert(M.ALERT_WARN, A.RELOAD_FAILED, f"reload refused, old limits kept: {exc}")
            return False
        self.cfg, self.limits = cfg, limits
        self.crisis.reconfigure(limits.crisis)
        self.account_words = self._account_words()  # the new max_leverage / max_margin_ratio at once
        self.version += 1
        self.dirty = True
        self.alert(M.ALERT_INFO, A.LIMITS_RELOADED, f"limits reloaded (version {self.version})")
        self.evaluate()
        return True

    # -- control commands -------------------------------------------------------------------
    def on_command(self, cmd: C.AnyCommand) -> None:
        """Kill switch, trading state, CancelAll (forwarded); Reload/Shutdown/Ping are the agent's."""
        self.commands += 1
        op = cmd.operator.strip()
        who = op or "anonymous"
        if isinstance(cmd, C.SetKillSwitch):
            if cmd.on:
                self.kill(who)
            else:
                self.loosen(M.ACTIVE, op, "SetKillSwitch(off)", only_kill=True)
        elif isinstance(cmd, C.SetTradingState):
            target = LEVELS.get(cmd.state.upper())
            if target is None:
                self.refuse(f"SetTradingState({cmd.state!r}) by {who}: unknown state (ACTIVE|REDUCING|HALTED)")
            elif target == M.HALTED:
                self.kill(who)
            elif target >= self.ts.state:
                if target == M.REDUCING:
                    self._change(lambda: self.ts.hold(S.REASON_OPERATOR, M.REDUCING), f"operator {who}")
            else:
                self.loosen(target, op, f"SetTradingState({cmd.state})")
        elif isinstance(cmd, C.CancelAll):
            self.send_cancel_all(f"forwarded from {who}")

    def refuse(self, text: str) -> None:
        self.refused += 1
        self.alert(M.ALERT_WARN, A.COMMAND_REFUSED, text)

    def kill(self, who: str) -> None:
        """Kill switch on (anyone may): HALTED, and CancelAll even if already halted."""
        self.alert(M.ALERT_CRITICAL, A.KILL_SWITCH_ON, f"kill switch ON by {who}")
        was_halted = self.ts.state == M.HALTED  # entering HALTED sends CancelAll by itself
        self._change(lambda: self.ts.hold(S.REASON_KILL_SWITCH, M.HALTED), f"kill switch by {who}")
        if was_halted:
            self.send_cancel_all(f"kill switch by {who}")

    def loosen(self, target: int, operator: str, what: str, only_kill: bool = False) -> None:
        """An operator loosens: release the holds above ``target`` (only the kill switch when ``only_kill``).

        A daily-loss hold whose loss still breaches the limit stays (Reload a higher limit or wait
        for the UTC day); clearing a drawdown hold measures the drawdown from the current equity.
        """
        if not operator:
            self.refuse(f"{what} refused: it loosens trading and needs a non-empty operator name; "
                        f"state stays {self.ts.name}")
            return
        releases: list[int] = [S.REASON_KILL_SWITCH]
        if not only_kill:
            releases += [r for r, lvl in self.ts.holds.items() if lvl > target and r != S.REASON_KILL_SWITCH]
            releases.append(S.REASON_OPERATOR)
        for r in dict.fromkeys(releases):
            if r == S.REASON_DAILY_LOSS and self.loss_breached():
                self.refuse(f"{what} by {operator}: daily loss {self.ledger.text(self.daily_pnl())} still "
                            f"breaches max_daily_loss {self.cfg.max_daily_loss}; Reload a higher limit first")
                continue
            if r == S.REASON_DRAWDOWN:
                self.ledger.reset_peak()  # acknowledged: the drawdown is measured from here
            if r == S.REASON_RECONCILE:
                self.mismatch_count.clear()
                self.reported.clear()
            if r == S.REASON_CRISIS:
                self.crisis_entered = 0  # a trigger still true fires again only once it has gone away
            if r in _LIMIT_HOLDS:
                self.breach_since.pop(r, None)  # still breached: held again at REDUCING, the clock restarts
            if self.ts.held(r) and r not in (S.REASON_KILL_SWITCH, S.REASON_OPERATOR):
                self.alert(M.ALERT_INFO, A.BREACH_CLEARED, f"{S.REASON_NAMES[r]} hold cleared by {operator}")
            self._change(lambda r=r: self.ts.release(r), f"{what} by {operator}")
        if target == M.REDUCING:
            self._change(lambda: self.ts.hold(S.REASON_OPERATOR, M.REDUCING), f"{what} by {operator}")
        if only_kill:
            self.alert(M.ALERT_WARN, A.KILL_SWITCH_OFF, f"kill switch OFF by {operator}; state {self.ts.name}"
                       + (f" (held: {self.ts.describe()})" if self.ts.holds else ""))

    # -- reconciliation ---------------------------------------------------------------------
    def on_reconcile(self, res: ReconcileResult) -> int:
        """Compare the exchange's positions with ours; returns the number of confirmed mismatches."""
        self.reconciliations += 1
        if not res.ok:
            self.recon_failures += 1
            if not self.recon_failing:
                self.recon_failing = True
                self.alert(M.ALERT_WARN, A.RECONCILE_FAILED, f"reconciliation failed: {res.error}")
            return 0
        self.wallet_balance, self.exchange_unrealized = res.wallet_balance, res.unrealized
        self.take_account(res)
        had_trouble = self.recon_failing or bool(self.reported)
        self.recon_failing = False
        confirmed = 0
        names = list(self.symbols) + [s for s, amt in res.positions.items()
                                      if s not in self.sid and Decimal(amt or "0") != 0]
        for sym in names:
            sid = self.sid.get(sym, -1)
            text = res.positions.get(sym, "0")
            own = self.ledger.total[sid].pos if sid >= 0 else 0
            try:
                exch = self.instruments[sid].qty_to_lots(text) if sid >= 0 else None
            except ValueError:
                exch = None
            if exch is not None and exch != own and sid >= 0 and exch in self.positions_at(sid, res):
                # equal to ours when the venue answered: the difference is fills it made since
                # (the result waits reconcile_settle_s, so those in flight then have come; a
                # market maker fills many times a second)
                self.in_flight_matches += 1
                exch = own
            if exch is not None and exch == own:
                self.mismatch_count.pop(sym, None)
                self.reported.pop(sym, None)
                continue
            n = self.mismatch_count.get(sym, 0) + 1
            self.mismatch_count[sym] = n
            if n < self.cfg.mismatch_confirmations:
                continue
            confirmed += 1
            if self.reported.get(sym) != (text, own):
                self.reported[sym] = (text, own)
                self.mismatches += 1
                own_text = self.instruments[sid].lots_to_qty(own) if sid >= 0 else "0"
                self.alert(M.ALERT_CRITICAL, A.RECONCILE_MISMATCH,
                           f"{sym} exchange position {text} != risk {own_text}", symbol_id=sid,
                           value=float(Decimal(text or "0")))
            self._change(lambda: self.ts.hold(S.REASON_RECONCILE, M.REDUCING), f"reconcile mismatch {sym}")
        if had_trouble and not confirmed and not self.mismatch_count:
            self.alert(M.ALERT_INFO, A.RECONCILE_MATCHED, "positions match the exchange"
                       + (" (reconcile hold stays until an operator clears it)"
                          if self.ts.held(S.REASON_RECONCILE) else ""))
        return confirmed

    def positions_at(self, symbol_id: int, res: ReconcileResult) -> set[int]:
        """Our positions (lots) the venue's answer may have seen: ours now without the fills the
        venue made after it answered, and without any later part of those it made while we
        asked (give or take ``reconcile_clock_tolerance_ms``). Fills are ordered by the venue's
        time, so the answer holds an earlier part of them, not any subset: a lost fill still
        shows. Empty when the answer's time is unknown."""
        if res.answered_ms <= 0:
            return set()
        slack = self.cfg.reconcile_clock_tolerance_ms
        first, last = res.asked_ms - slack, res.answered_ms + slack
        pos = self._position_before(symbol_id, last)
        around = [(t, lots) for t, lots in self.recent_fills[symbol_id] if first <= t <= last]
        out = {pos}
        for _t, lots in sorted(around, reverse=True):
            pos -= lots
            out.add(pos)
        return out

    def position_when_answered(self, symbol_id: int, res: ReconcileResult) -> int:
        """Our position (lots) without the fills the venue made after it answered (ours now when
        the answer's time is unknown)."""
        if res.answered_ms <= 0:
            return self.ledger.total[symbol_id].pos
        return self._position_before(symbol_id, res.answered_ms)

    def _position_before(self, symbol_id: int, venue_ms: int) -> int:
        """Our position without the fills the venue made after ``venue_ms``."""
        return self.ledger.total[symbol_id].pos - sum(
            lots for t, lots in self.recent_fills[symbol_id] if t > venue_ms)

    def seed(self, res: ReconcileResult) -> int:
        """At start: book the part of each exchange position our ledger lacks under ``SEED``.

        The agent drains the ``exec`` backlog first, so fills execution made while risk was
        down are counted once (from the ring) and the seed is only what came before them. The
        agent drains it again ``reconcile_settle_s`` after the answer: a fill the answer holds
        that was still on its way is then in the ledger, and fills the venue made after it
        answered are left out of the comparison (``position_when_answered``); a seed taken
        before them counted such a fill twice (a 20-fault chaos run: risk 0.006, venue 0.004).
        The seed is priced at the exchange's entry price rounded to our tick.
        """
        if not res.ok:
            self.alert(M.ALERT_WARN, A.RECONCILE_FAILED, f"positions not seeded from the exchange: {res.error}")
            return 0
        self.take_account(res)
        seeded = 0
        for sid, sym in enumerate(self.symbols):
            ins = self.instruments[sid]
            text = res.positions.get(sym, "0")
            try:
                diff = ins.qty_to_lots(text) - self.position_when_answered(sid, res)
                entry = Decimal(res.entries.get(sym, "0") or "0")
            except (ValueError, InvalidOperation):
                self.alert(M.ALERT_WARN, A.RECONCILE_FAILED, f"{sym}: exchange position {text!r} not seeded",
                           symbol_id=sid)
                continue
            if diff == 0:
                continue
            ticks = int(entry.scaleb(ins.price_scale).to_integral_value(ROUND_HALF_EVEN))
            self.ledger.fill(SEED, sid, M.BUY if diff > 0 else M.SELL, abs(diff), ticks, 0)
            seeded += 1
            self.dirty = True
            self.alert(M.ALERT_INFO, A.POSITION_SEEDED, f"{sym} {ins.lots_to_qty(diff)} @ {entry} taken from the "
                       f"exchange at start", symbol_id=sid, value=float(ins.lots_to_qty(diff)))
        return seeded

    # -- the account and the margin limits (procs/risk/margin.py) ------------------------------
    def take_account(self, res: ReconcileResult) -> None:
        """The exchange's wallet (our realized - fees are added to it until the next one), leverage
        settings, open-order margin and, once fetched, margin brackets."""
        led = self.ledger
        try:
            if res.wallet_balance:
                self.wallet_base = led.money(Decimal(res.wallet_balance).quantize(Decimal(1).scaleb(-led.money_scale)))
                self.cash_at_base = led.realized() - led.fees()
            self.open_order_margin = Decimal(res.open_order_margin or "0")
        except (InvalidOperation, ValueError) as exc:
            self.alert(M.ALERT_WARN, A.RECONCILE_FAILED, f"account figures not understood: {exc}")
        for sym, lev in res.leverage.items():
            if sym in self.sid:
                self.leverage_setting[self.sid[sym]] = lev
        for sym, tiers in res.tiers.items():
            if sym in self.sid and tiers and sym not in self._tiers_from:
                self._tiers_from.add(sym)  # taken once (a table it cannot read is alerted once)
                try:
                    self.tiers[self.sid[sym]] = [MG.Tier.from_venue(t) for t in tiers]
                except (InvalidOperation, ValueError) as exc:
                    self.alert(M.ALERT_WARN, A.MARGIN_UNKNOWN, f"{sym} margin brackets not understood: {exc}")

    def wallet(self) -> int:
        """Money units: the exchange's wallet moved by our realized P&L and fees since it was read,
        or, without one, [risk] capital + realized - fees."""
        led = self.ledger
        cash = led.realized() - led.fees()
        if self.wallet_base is None:
            return led.capital + cash
        return self.wallet_base + cash - self.cash_at_base

    def compute_account(self, now_ns: int) -> MG.Account:
        led = self.ledger
        rows = []
        for sid, ins in enumerate(self.instruments):
            pos = led.total[sid]
            mark = led.marks[sid]
            rows.append(MG.PositionInput(
                ins.symbol, Decimal(pos.pos).scaleb(-ins.qty_scale), led.avg_entry(sid) if pos.pos else MG.ZERO,
                Decimal(mark).scaleb(-ins.price_scale), led.to_decimal(led.unrealized(sid)),
                self.leverage_setting.get(sid, MG.DEFAULT_LEVERAGE), self.tiers.get(sid, [])))
        acct = MG.account(led.to_decimal(self.wallet()), rows, self.open_order_margin)
        for sid, row in enumerate(acct.positions):
            if row.notional and row.maint_margin is None and sid not in self._margin_unknown_told:
                self._margin_unknown_told.add(sid)
                self.alert(M.ALERT_WARN, A.MARGIN_UNKNOWN, f"{row.symbol}: no margin brackets from the venue; "
                           f"maintenance margin, margin ratio and liquidation price unknown", symbol_id=sid)
        self.account, self.account_ns = acct, now_ns
        self.dirty = True
        return acct

    def check_margin_limits(self, now_ns: int) -> None:
        """max_margin_ratio and max_leverage: REDUCING on a breach, HALTED when it lasts
        limit_halt_after_s; a breach that goes away while REDUCING releases its own hold."""
        acct = self.account
        if acct is None:
            return
        lim = self.limits
        ratio = acct.margin_ratio
        margin_breach = ""
        if lim.max_margin_ratio and ratio is not None and ratio > lim.max_margin_ratio:
            margin_breach = f"margin ratio {ratio:.4f} > max_margin_ratio {lim.max_margin_ratio}"
        lev_breach, lev_value, lev_sid = "", 0.0, -1
        for sid, row in enumerate(acct.positions):
            mx = lim.max_leverage[sid]
            if mx and row.leverage > mx:
                lev_breach = f"{row.symbol} leverage {row.leverage:.3f} > max_leverage {mx}"
                lev_value, lev_sid = float(row.leverage), sid
                break
        for reason, breach, code, value, sid in (
                (S.REASON_MARGIN, margin_breach, A.MARGIN_RATIO_BREACHED, float(ratio or 0), -1),
                (S.REASON_LEVERAGE, lev_breach, A.LEVERAGE_BREACHED, lev_value, lev_sid)):
            held = self.ts.holds.get(reason, 0)
            if breach:
                since = self.breach_since.setdefault(reason, now_ns)
                if not held:
                    self.alert(M.ALERT_CRITICAL, code, breach, symbol_id=sid, value=value)
                    self._change(lambda r=reason: self.ts.hold(r, M.REDUCING), breach)
                elif held < M.HALTED and now_ns - since >= lim.limit_halt_after_ns:
                    self.alert(M.ALERT_CRITICAL, A.LIMIT_ESCALATED, f"{breach} for {self.cfg.limit_halt_after_s:g} s "
                               f"while REDUCING: HALTED", symbol_id=sid, value=value)
                    self._change(lambda r=reason: self.ts.hold(r, M.HALTED), f"{S.REASON_NAMES[reason]} lasted")
            else:
                self.breach_since.pop(reason, None)
                if held == M.REDUCING:
                    self.alert(M.ALERT_INFO, A.LIMIT_CLEARED, f"{S.REASON_NAMES[reason]} back within its limit")
                    self._change(lambda r=reason: self.ts.release(r), f"{S.REASON_NAMES[reason]} back within its limit")

    def check_crisis(self, now_ns: int) -> None:
        """Crisis mode: each trigger that rose holds REDUCING (an operator clears it) with an alert."""
        led = self.ledger
        fired = self.crisis.check(now_ns, [p.pos for p in led.total], float(led.to_decimal(led.equity())),
                                  self.symbols)
        for f in fired:
            self.crisis_entered |= f.trigger
            self.alert(M.ALERT_CRITICAL, A.CRISIS_ENTERED, f"crisis mode ({X.NAMES[f.trigger]}): {f.text}",
                       symbol_id=f.symbol_id, value=f.value)
            self._change(lambda: self.ts.hold(S.REASON_CRISIS, M.REDUCING), f"crisis {X.NAMES[f.trigger]}")
        if fired:
            self.dirty = True

    def tick(self, now_ns: int, crisis: bool = True) -> None:
        """Every publish interval: stale marks, the account, the margin limits, crisis mode (not
        in a replay: its triggers are measured in wall-clock seconds, a replay runs on its own clock)."""
        self.refresh_marks(now_ns)
        self.compute_account(now_ns)
        self.check_margin_limits(now_ns)
        if crisis:
            self.check_crisis(now_ns)
        self.account_words = self._account_words()

    def _account_words(self) -> np.ndarray:
        """The account part of risk.state (wallet_e8 .. spread_bps_e2) as int64 words, built once per
        tick: write_state copies it in one slice (it runs after every book batch, the tick every
        publish interval)."""
        words = np.zeros(_W_ACCOUNT_END - _W_ACCOUNT, np.int64)
        acct = self.account
        n = len(self.symbols)
        cr = self.crisis

        def put(name: str, value: int | list[int]) -> None:
            i = _W[name] - _W_ACCOUNT
            if isinstance(value, list):
                words[i:i + len(value)] = value
            else:
                words[i] = value

        put("volatility_bps_e2", [int(v * 100) for v in cr.volatility_bps])
        put("spread_bps_e2", [int(v * 100) for v in cr.spread_bps])
        put("drawdown_velocity_e8", int(cr.drawdown_velocity * 1e8))
        if acct is None:
            return words
        put("wallet_e8", int(acct.wallet * _E8))
        put("unrealized_e8", int(acct.unrealized * _E8))
        put("margin_balance_e8", int(acct.margin_balance * _E8))
        put("maint_margin_e8", -1 if acct.maint_margin is None else int(acct.maint_margin * _E8))
        put("available_e8", int(acct.available * _E8))
        put("margin_ratio_e6", -1 if acct.margin_ratio is None else int(acct.margin_ratio * _E6))
        put("leverage_e6", int(acct.leverage * _E6))
        put("max_margin_ratio_e6", int(self.limits.max_margin_ratio * _E6))
        put("account_flags", (M.ACCOUNT_WALLET_FROM_VENUE if self.wallet_base is not None else 0)
            | (M.ACCOUNT_BRACKETS_FROM_VENUE if self.tiers else 0))
        put("account_updated_ns", self.account_ns)
        put("open_order_margin_e8", int(self.open_order_margin * _E8))
        put("gross_notional_e8", int(sum((r.notional for r in acct.positions), MG.ZERO) * _E8))
        put("leverage_sym_e6", [int(r.leverage * _E6) for r in acct.positions])
        put("max_leverage_e6", [int(x) for x in self.limits.max_leverage_e6[:n]])
        put("liquidation_px", [int(r.liquidation_price.scaleb(ins.price_scale).to_integral_value(ROUND_HALF_EVEN))
                               for r, ins in zip(acct.positions, self.instruments, strict=True)])
        return words

    # -- publication ------------------------------------------------------------------------
    def write_state(self, rec: np.ndarray, now_ns: int) -> None:
        """Fill a RiskState record (1-element array) with the current state, limits and positions.

        Writes go through a flat int64 view at precomputed word offsets (every RiskState field
        is int64): numpy structured-field assignment costs ~1-2 us each, this ~0.1 us.
        """
        led = self.ledger
        w = rec.view(np.int64)
        w[_W_STATE] = self.ts.state
        w[_W_UPDATED] = now_ns
        w[_W_REASON] = self.ts.reason
        w[_W_VERSION] = self.version
        eq = led.equity()
        w[_W_EQUITY] = led.to_e8(eq)
        w[_W_DRAWDOWN] = led.to_e8(max(0, led.peak - eq))
        if self._limits_written != (id(rec), self.limits):
            self.limits.write(rec[0])
            self._limits_written = (id(rec), self.limits)
        n = len(self.symbols)
        w[_W_POSITION:_W_POSITION + n] = [p.pos for p in led.total]
        w[_W_MARK:_W_MARK + n] = led.marks
        w[_W_ACCOUNT:_W_ACCOUNT_END] = self.account_words  # the figures of the last tick, then what moves between
        w[_W_MARK_SOURCE:_W_MARK_SOURCE + n] = self.mark_source
        w[_W_CRISIS] = self.crisis.active
        w[_W_CRISIS_ENTERED] = self.crisis_entered
        w[_W_BREACH] = min(self.breach_since.values(), default=0)
        self.dirty = False

    def snapshot(self) -> dict:
        """People-readable state for logs and tools (Decimal text)."""
        out = self.ledger.snapshot()
        out.update({"state": self.ts.name, "reason": S.REASON_NAMES[self.ts.reason], "holds": self.ts.describe(),
                    "daily_pnl": self.ledger.text(self.daily_pnl()),
                    "exchange_wallet": self.wallet_balance, "exchange_unrealized": self.exchange_unrealized})
        return out
