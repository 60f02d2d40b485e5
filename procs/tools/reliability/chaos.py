"""``b25 chaos``: an operator's worst day against a whole stack under supervisord, then the checks.

A ``Stack(supervised=True)`` (own instance, free ports, its own run directory) runs every process
with two market makers trading the simulator (BTCUSDT cancels the orders a killed process left,
ETHUSDT adopts them). Every ``--interval`` seconds (random in the range) one ``--targets``
process gets one of ``--signals``:

* ``KILL``: SIGKILL; supervisord restarts it. ``exchange_sim`` is a venue restart: it comes back
  from its order log (``[sim_trading] restore``) with the accounts, and every open order gone.
* ``STOP``: SIGSTOP, held 0.5-4 s, then SIGCONT. A frozen ``risk`` is held past ``[execution]
  risk_stale_s`` and a manual order is sent meanwhile: execution must deny it (risk_unavailable).

Then everything must come back (RUNNING, /health 200); the market is paused, the pipeline
settles, and the checks run (``procs.tools.reliability.checks``): lost, doubled, orphaned, state
mismatches (journal vs venue, per order), position mismatches (venue vs risk vs strategies), the
book against the simulator's true book, tracebacks in any log, and what is left in /dev/shm
after the stop. ``--json`` prints them as one JSON document; the exit status is 0 only when every
check is clean.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from procs.core import messages as M
from procs.exchange_sim.observe import logged_orders
from procs.tools.stack import ORDER, Stack
from procs.venue.messages import VenueError

from . import checks as C

TARGETS = ("market_data", "strategy", "execution", "risk", "monitor", "exchange_sim")
SIGNALS = {"KILL": signal.SIGKILL, "STOP": signal.SIGSTOP}
RISK_STALE_S = 2.0
ADOPT_TIMEOUT_S = 5.0
MAX_LISTED = 20  # entries of each finding listed in the report (all are counted)
STRATEGIES = [
    {"id": "mm_btc", "class": "strategies.market_maker:MarketMaker", "symbols": ["BTCUSDT"],
     "recovered_orders": "cancel",
     "params": {"quote_qty": "0.002", "max_position": "0.01", "spread_ticks": 8, "skew_ticks": 4.0,
                "requote_ticks": 2, "stale_ms": 0}},
    {"id": "mm_eth", "class": "strategies.market_maker:MarketMaker", "symbols": ["ETHUSDT"],
     "recovered_orders": "adopt",
     "params": {"quote_qty": "0.02", "max_position": "0.1", "spread_ticks": 8, "skew_ticks": 4.0,
                "requote_ticks": 2, "stale_ms": 0}},
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kills", type=int, default=100, help="faults to inject (default 100)")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"processes to hit (default {','.join(TARGETS)})")
    p.add_argument("--signals", default="KILL,STOP", help="KILL and/or STOP (default both)")
    p.add_argument("--seed", type=int, default=None, help="the campaign's random seed (default: from the clock)")
    p.add_argument("--interval", default="1.5,6", help="seconds between faults, MIN,MAX (default 1.5,6)")
    p.add_argument("--work-dir", default=None, help="where the stack's run directory goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the run directory (logs, journal, order log)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def parse(args: argparse.Namespace) -> tuple[list[str], list[str], tuple[float, float]]:
    """The targets, signals and interval of the command line; ValueError names a bad one."""
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise ValueError(f"--targets: unknown or none: {bad or targets}; known: {','.join(TARGETS)}")
    sigs = [s.strip().upper() for s in args.signals.split(",") if s.strip()]
    if not sigs or any(s not in SIGNALS for s in sigs):
        raise ValueError(f"--signals: {args.signals!r}; known: KILL,STOP")
    try:
        lo, hi = (float(x) for x in args.interval.split(","))
    except ValueError:
        raise ValueError(f"--interval must be MIN,MAX seconds: {args.interval!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"--interval needs 0 < MIN <= MAX: {args.interval!r}")
    if args.kills < 0:
        raise ValueError(f"--kills must be >= 0: {args.kills}")
    return targets, sigs, (lo, hi)


def run(args: argparse.Namespace) -> int:
    try:
        targets, sigs, interval = parse(args)
    except ValueError as exc:
        print(f"b25 chaos: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else int(time.time())
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="b25-chaos-"))
    campaign = Campaign(work, args.kills, targets, sigs, interval, seed, progress=not args.json)
    try:
        report = campaign.run()
    finally:
        if not args.keep and not args.work_dir:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
    return 0 if report["ok"] else 1


def print_report(r: dict[str, Any]) -> None:
    print(f"b25 chaos: {r['faults']} faults in {r['duration_s']} s (seed {r['seed']}): "
          f"{r['orders']} orders, {r['fills']} fills")
    for k in ("lost", "doubled", "orphaned", "state_mismatches", "position_mismatches", "book_mismatches",
              "tracebacks", "shm_left"):
        print(f"  {k:<20} {r[k]}")
    print(f"  frozen risk: {r['frozen_risk']}")
    print("OK" if r["ok"] else "FAILED: " + json.dumps(r["details"])[:2000])


class Campaign:
    """One chaos campaign: the stack, the faults, the settling and the checks."""

    def __init__(self, work: Path, faults: int, targets: list[str], signals: list[str],
                 interval: tuple[float, float], seed: int, progress: bool = False, instance: str = "") -> None:
        self.work = work
        self.faults = faults
        self.targets = targets
        self.signals = signals
        self.interval = interval
        self.seed = seed
        self.rng = random.Random(seed)
        self.progress = progress
        self.events: list[dict[str, Any]] = []
        self.probes = {"checked": 0, "denied": 0, "not_denied": 0, "skipped": 0}
        self.instance = instance or f"chaos{os.getpid()}x{self.rng.randrange(1 << 24):06x}"
        run_dir = work.resolve() / f"stack-{self.instance}"
        self.order_log = run_dir / "venue.orders.jsonl"
        self.stack = Stack(work, instance=self.instance, procs=ORDER, supervised=True, strategies=STRATEGIES,
                           overrides={"sim_trading": {"order_log": str(self.order_log), "restore": True},
                                      "strategy": {"strategies": [], "state_save_interval_s": 0.5,
                                                   "adopt_timeout_s": ADOPT_TIMEOUT_S},
                                      "execution": {"risk_stale_s": RISK_STALE_S}})
        self._manual: Any = None
        self._manual_id = 0
        self._probes_open: list[int] = []  # manual probes execution did not deny: cancelled at the end

    def say(self, text: str) -> None:
        if self.progress:
            print(text, file=sys.stderr, flush=True)

    # -- the campaign -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        stack = self.stack
        stack.start()
        try:
            self.instruments = self._instruments()
            # open orders weigh 40 of the venue's 2400 a minute, shared with the stack's own requests
            stack.wait_for(lambda: self._open_at_venue() >= 4, "both market makers quoting", timeout=90, every=2.0)
            for k in range(self.faults):
                time.sleep(self.rng.uniform(*self.interval))
                target = self.rng.choice(self.targets)
                sig = self.rng.choice(self.signals)
                self._inject(k, target, sig)
            recovered_s = self._wait_recovered()
            self._cancel_manual()
            settle = self._settle()
            found = self._collect()
        finally:
            codes = stack.stop()
            if self._manual is not None:
                self._manual.close()
        found["shm_left"] = sorted(str(p) for p in Path("/dev/shm").glob(f"*{self.instance}*"))
        found["tracebacks"] = self._tracebacks()
        return self._report(found, recovered_s, settle, codes, round(time.monotonic() - t0, 1))

    def _open_at_venue(self) -> int:
        try:
            # per symbol: weight 1 each, where the all-symbols list costs 40 of the venue's 2400 a minute
            return sum(len(self.stack.open_orders(symbol)) for symbol in self.stack.symbols)
        except VenueError:  # rate limited, or the venue restarting: asked again at the next poll
            return -1

    def _supervisor(self) -> Any:
        return self.stack.supervisor().supervisor

    def _pid(self, proc: str) -> int:
        info = self._supervisor().getProcessInfo(proc)
        return int(info["pid"]) if info["statename"] == "RUNNING" else 0

    def _running(self, proc: str) -> bool:
        """RUNNING under supervisord and, for a process with a status block, there too."""
        pid = self._pid(proc)
        if not pid:
            return False
        if proc == "exchange_sim":
            return True
        st = self.stack.status(proc)
        return bool(st and st["pid"] == pid and st["state"] == "RUNNING" and st["alive"])

    def _inject(self, k: int, target: str, sig: str) -> None:
        deadline = time.monotonic() + 60
        while not self._running(target):  # hit a live process: one still starting is left to come up
            if time.monotonic() > deadline:
                self.events.append({"n": k, "target": target, "signal": sig, "skipped": "not running in 60 s"})
                return
            time.sleep(0.1)
        pid = self._pid(target)
        ev: dict[str, Any] = {"n": k, "t": round(time.monotonic(), 2), "target": target, "signal": sig, "pid": pid}
        self.events.append(ev)
        self.say(f"[{k + 1}/{self.faults}] {sig} {target} (pid {pid})")
        if sig == "KILL":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        hold = RISK_STALE_S + 1.5 if target == "risk" else self.rng.uniform(0.5, 4.0)
        ev["hold_s"] = round(hold, 2)
        os.kill(pid, signal.SIGSTOP)
        try:
            if target == "risk":
                time.sleep(RISK_STALE_S + 0.5)
                ev["probe"] = self._probe_frozen_risk()
                time.sleep(max(0.0, hold - RISK_STALE_S - 0.5))
            else:
                time.sleep(hold)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    # -- a frozen risk: execution must deny ---------------------------------------------------------
    def _probe_frozen_risk(self) -> str:
        """A manual order while risk is frozen past risk_stale_s: 'denied' is the only right answer."""
        if not self._running("execution"):
            self.probes["skipped"] += 1
            return "skipped: execution not running"
        from procs.core.registry import EXEC, ORDERS_MANUAL, build_registry

        reg = build_registry()
        if self._manual is None:
            self._manual = reg.producer(self.instance, ORDERS_MANUAL)
        watch = reg.consumer(self.instance, EXEC, None, timeout=5)
        try:
            sid = 0
            inst = self.instruments[self.stack.symbols[sid]]
            bid = int(self.stack.book(self.stack.symbols[sid])["bid_px"][0])
            price = (bid * 995 // 1000) // inst.tick_ticks * inst.tick_ticks  # 0.5% under the bid: rests
            self._manual_id += 1
            ok = self._manual.try_publish(*intent_values(
                intent_id=self._manual_id, kind=M.SUBMIT_ORDER, source=M.SOURCE_MANUAL, symbol_id=sid, side=M.BUY,
                order_type=M.LIMIT, tif=M.GTC, price=price, qty=inst.step_lots, client_tag=self._manual_id,
                ts_intent=time.monotonic_ns()))
            if not ok:
                self.probes["skipped"] += 1
                return "skipped: orders.manual full"
            self.probes["checked"] += 1
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for e in watch.poll():
                    if int(e["source"]) == M.SOURCE_MANUAL and int(e["intent_id"]) == self._manual_id:
                        kind = int(e["kind"])
                        if kind == M.ORDER_DENIED and int(e["reason"]) == M.DENY_RISK_UNAVAILABLE:
                            self.probes["denied"] += 1
                            return "denied risk_unavailable"
                        if kind != M.ORDER_SENT:
                            self.probes["not_denied"] += 1
                            self._probes_open.append(self._manual_id)
                            return f"{M.EVENT_NAMES.get(kind, kind)} reason={int(e['reason'])}"
                watch.commit()
                time.sleep(0.02)
            self.probes["not_denied"] += 1
            self._probes_open.append(self._manual_id)
            return "no answer in 5 s"
        finally:
            watch.close()

    def _cancel_manual(self) -> None:
        """Cancel the probes that were not denied (by tag: a manual CANCEL_ALL is everyone's)."""
        for tag in self._probes_open:
            self._manual_id += 1
            self._manual.try_publish(*intent_values(intent_id=self._manual_id, kind=M.CANCEL_ORDER,
                                                    source=M.SOURCE_MANUAL, client_tag=tag,
                                                    ts_intent=time.monotonic_ns()))

    # -- after the faults ----------------------------------------------------------------------------
    def _wait_recovered(self, timeout: float = 120.0) -> float:
        """Seconds until every program is RUNNING (and /health says 200); raises when not in ``timeout``."""
        t0 = time.monotonic()
        procs = [p for p in self.stack.procs]
        self.stack.wait_for(lambda: all(self._running(p) for p in procs), "every process RUNNING again",
                            timeout=timeout, every=0.2)
        if "monitor" in procs:
            self.stack.wait_for(lambda: self.stack.health()[0] == 200, "/health 200", timeout=timeout, every=0.2)
        return round(time.monotonic() - t0, 1)

    def _instruments(self) -> dict[str, Any]:
        info = self.stack.venue().info(attempts=5)
        assert info is not None
        return info.instruments

    def _settle(self, quiet_s: float = 2.0, timeout: float = 60.0) -> dict[str, Any]:
        """Pause the market and wait until no order event has flowed for ``quiet_s`` and the
        strategy state file was written after the last one (it lists the working sets)."""
        stack = self.stack
        stack_post(stack, "/sim/pause")
        from procs.core.registry import EXEC, build_registry

        t0 = time.monotonic()
        deadline = t0 + max(timeout, ADOPT_TIMEOUT_S + 10)
        last = -1
        last_change = time.monotonic()
        seg = build_registry().consumer(self.instance, EXEC, None, timeout=5)
        try:
            while time.monotonic() < deadline:
                head = seg.position + seg.available()
                if head != last:
                    last, last_change = head, time.monotonic()
                quiet = time.monotonic() - last_change
                saved = stack.state_path.exists() and time.time() - stack.state_path.stat().st_mtime < quiet
                if quiet >= quiet_s and (saved or quiet >= quiet_s + 3):
                    break
                time.sleep(0.1)
        finally:
            seg.close()
        return {"quiet_after_s": round(time.monotonic() - t0, 1), "exec_events": last}

    def _collect(self) -> dict[str, Any]:
        """Everything the checks need, read from the settled stack, and the checks' findings."""
        from procs.execution.journal import read_journal

        stack = self.stack
        symbols = stack.symbols
        records: list[Any] = []
        for p in sorted(stack.journal_path.parent.glob(stack.journal_path.name + "*")):
            if p.suffix != ".compact":
                records += read_journal(p)[0]
        journal = C.journal_orders(records)
        venue = C.venue_orders(logged_orders(stack.order_log()))
        lost, doubled = C.find_lost_and_doubled(journal, venue)
        state = stack.strategy_state()
        nums = {int(s["num"]) for s in state.get("strategies", {}).values()}
        live = nums if self._running("strategy") else set()
        orphaned = C.find_orphaned(stack.open_orders(), journal, C.working_sets(state), live)
        mismatches = C.find_state_mismatches(journal, venue, self.instruments, symbols)
        risk = stack.risk_state()
        held = stack.account().snapshot().positions
        venue_pos = {s: self.instruments[s].qty_to_lots(held.get(s, "0")) for s in symbols}
        risk_pos = {s: int(risk["position"][i]) for i, s in enumerate(symbols)}
        positions = C.find_position_mismatches(symbols, venue_pos, risk_pos, C.strategy_positions(state))
        books = self._book_mismatches()
        fills = sum(1 for r in records if r.kind in (M.ORDER_PARTIALLY_FILLED, M.ORDER_FILLED))
        return {"lost": lost, "doubled": doubled, "orphaned": orphaned, "state_mismatches": mismatches,
                "position_mismatches": positions, "book_mismatches": books,
                "orders": sum(1 for cid in journal if cid.startswith("b25-")), "fills": fills,
                "positions": {"venue": venue_pos, "risk": risk_pos, "strategies": C.strategy_positions(state)},
                "trading_state": M.TRADING_STATE_NAMES.get(int(risk["trading_state"]), "?"),
                "counters": self._counters()}

    def _book_mismatches(self) -> list[dict[str, Any]]:
        """market_data's book against the simulator's true book (top ``depth`` levels), stepping
        the paused market one event at a time until market_data has its update id."""
        from procs.core.deploy import depth as depth_of

        stack = self.stack
        depth = depth_of(str(stack.config_path))
        codec = stack.venue().market_codec()
        out = []
        for s in stack.symbols:
            inst = self.instruments[s]
            deadline = time.monotonic() + 30
            got = truth = None
            while time.monotonic() < deadline:
                truth = codec.decode_snapshot(sim_get_raw(stack, f"/sim/book?symbol={s}&limit={depth}"))
                rec = stack.book(s)
                if truth is not None and int(rec["update_id"]) == truth.last_id:
                    got = rec
                    break
                # A book past the venue's id is one market_data kept from before a venue restart (a
                # restarted simulator counts its ids from the start again): it must resync, so wait.
                time.sleep(0.2)
                stack_post(stack, "/sim/step?n=1")  # a resync may need the next event to bridge its snapshot
            if got is None or truth is None:
                out.append({"symbol": s, "why": "market_data never reached the simulator's update id",
                            "truth": None if truth is None else truth.last_id})
                continue
            want_b = [(inst.price_to_ticks(p), inst.qty_to_lots(q)) for p, q in truth.bids]
            want_a = [(inst.price_to_ticks(p), inst.qty_to_lots(q)) for p, q in truth.asks]
            nb, na = int(got["n_bids"]), int(got["n_asks"])
            have_b = [(int(got["bid_px"][k]), int(got["bid_qty"][k])) for k in range(nb)]
            have_a = [(int(got["ask_px"][k]), int(got["ask_qty"][k])) for k in range(na)]
            if have_b != want_b or have_a != want_a:
                out.append({"symbol": s, "update_id": int(got["update_id"]), "bids": have_b[:3], "want_bids": want_b[:3],
                            "asks": have_a[:3], "want_asks": want_a[:3]})
        return out

    def _counters(self) -> dict[str, dict[str, int]]:
        keep = {"strategy": ("orders_adopted", "orders_recovered_canceled", "orders_gone", "reports",
                             "events_replayed", "fills", "exceptions"),
                "execution": ("orders_sent", "fills", "vanished", "resends", "unknown_outcomes", "adopted",
                              "breaker_opens", "denied", "order_reports", "events_republished")}
        out = {}
        for proc, names in keep.items():
            with contextlib.suppress(Exception):
                c = self.stack.counters(proc)[0]
                out[proc] = {n: int(c[n]) for n in names if n in c}
        return out

    def _tracebacks(self) -> list[dict[str, str]]:
        out = []
        for p in sorted(self.stack.log_dir.glob("*.log")):
            lines = p.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback"):
                    tail = next((x for x in lines[i + 1:i + 80] if x and not x.startswith((" ", "Traceback"))), "")
                    out.append({"log": p.name, "line": i + 1, "error": tail[:300]})
        return out

    def _report(self, found: dict[str, Any], recovered_s: float, settle: dict[str, Any], codes: dict,
                duration: float) -> dict[str, Any]:
        keys = ("lost", "doubled", "orphaned", "state_mismatches", "position_mismatches", "book_mismatches",
                "tracebacks", "shm_left")
        counts = {k: len(found[k]) for k in keys}
        by_target: dict[str, dict[str, int]] = {}
        for e in self.events:
            if "skipped" in e:
                continue
            by_target.setdefault(e["target"], {}).setdefault(e["signal"], 0)
            by_target[e["target"]][e["signal"]] += 1
        ok = (all(v == 0 for v in counts.values()) and self.probes["not_denied"] == 0
              and all(c == 0 for c in codes.values()))
        return {"ok": ok, "seed": self.seed, "faults": sum(1 for e in self.events if "skipped" not in e),
                "skipped": sum(1 for e in self.events if "skipped" in e), "by_target": by_target,
                "duration_s": duration, "recovered_after_s": recovered_s, "settle": settle,
                "orders": found["orders"], "fills": found["fills"], **counts,
                "frozen_risk": dict(self.probes), "trading_state": found["trading_state"],
                "positions": found["positions"], "counters": found["counters"], "exit_codes": codes,
                "details": {k: found[k][:MAX_LISTED] for k in keys if found[k]}}


def intent_values(**fields: int) -> tuple[int, ...]:
    """An OrderIntent record's field values in order, the ones not given 0."""
    values = tuple(fields.pop(n, 0) for n in M.OrderIntent.names if n != "_pad")
    if fields:
        raise ValueError(f"not OrderIntent fields: {sorted(fields)}")
    return values


def sim_get_raw(stack: Stack, path: str) -> bytes:
    with urllib.request.urlopen(f"{stack.rest_url}{path}", timeout=5) as r:
        return r.read()


def stack_post(stack: Stack, path: str) -> Any:
    req = urllib.request.Request(f"{stack.rest_url}{path}", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())
    except (OSError, urllib.error.URLError):
        return None
