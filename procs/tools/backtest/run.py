"""One backtest: a strategy on recordings, in one process, on the lockstep replay's simulated clock.

``backtest(BacktestOptions(...)) -> Result`` (``procs.tools.replay.run.Result``, so the replay's
summary, report and ``b25 report`` work on it unchanged) decodes the recordings
(``procs.tools.backtest.data``, cached), builds the exchange (``FastMarket`` under the simulator's
trading side) and b25's processes in-process (``procs.tools.backtest.pipeline``), and runs the
event queue of procs/exchange_sim/eventclock.py with the same rules as
``Replay._run_lockstep``: APPLY at x, MARKET at r, requests and answers through the same
``LockstepGate`` and ``Links`` (so the same latency draws), strategy timers stopping the clock at
their deadline, and where the lockstep barrier waits for the processes to be quiescent this runs
them until they are (``settle``).

Where it cannot be identical to a lockstep replay, and why (the parity test checks the rest):
risk reads each event before the strategy acts on it (in a replay the risk process races the
strategy within one event; the pre-trade limits give the same answers unless one is within one
fill or one book update of binding); execution's rate limiter runs on simulated time (host time in
a replay, which never throttles at lockstep's pace); REST calls are answered without latency in
both.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs.core import messages as M
from procs.core.config import convert
from procs.core.deploy import DeployConfig
from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO, SimConfig
from procs.exchange_sim.eventclock import ARRIVE, DELIVER, MARKET, EventQueue, timer_stops_clock
from procs.exchange_sim.inprocess import BOOK, TRADE, InProcessExchange, InProcessGateway
from procs.exchange_sim.latency import LatencyModel, schedule
from procs.exchange_sim.market import recorded as R
from procs.exchange_sim.trading.config import TradingConfig
from procs.execution import recovery
from procs.execution.config import ExecutionConfig
from procs.execution.counters import Counter as ExecCounter
from procs.execution.engine import Engine as ExecutionEngine
from procs.execution.engine import EventSink
from procs.execution.journal import Journal, parse_journal
from procs.execution.limiter import RateLimiter
from procs.risk.config import RiskConfig
from procs.risk.engine import RiskEngine
from procs.strategy.config import StrategyEngineConfig
from procs.strategy.engine import Counter as StratCounter
from procs.strategy.engine import Engine as StrategyEngine
from procs.tools.backtest.pipeline import MemoryCounters, MemoryRings, RiskView, SimTime, book_layout
from procs.tools.replay.run import ReplayOptions, Result, strategy_entry
from procs.tools.stack import ROOT


@dataclass
class BacktestOptions:
    data: list[str]
    strategy: str  # "module:Class"
    params: dict = field(default_factory=dict)  # over the config's entry of that class
    config: str | None = None  # base TOML (default: the repo's b25.toml)
    latency: str = "default"  # procs/exchange_sim/latency.py
    limit_events: int = 0  # only the first N recorded frames
    strategy_id: str = "replay"  # the same id as a replay's, so their journals compare
    journal: str | None = None  # where execution's journal goes (default: a temp file, removed)
    use_cache: bool = True
    progress: Callable[[int, int], None] | None = None  # (frames done, frames total)


def _base_config(path: str | None) -> dict:
    with open(path or ROOT / "b25.toml", "rb") as f:
        return tomllib.load(f)


def _section(cfg: dict, name: str, typ: type, **over: Any) -> Any:
    return convert({**cfg.get(name, {}), **over}, typ, f"[{name}]")


class Backtest:
    """The exchange, the pipeline and the event queue of one backtest (``run`` drives them)."""

    def __init__(self, opts: BacktestOptions) -> None:
        self.opts = opts
        base = _base_config(opts.config)
        sim = _section(base, "sim", SimConfig)
        info_path = sim.exchange_info if Path(sim.exchange_info).exists() else DEFAULT_EXCHANGE_INFO
        self.model = LatencyModel.parse(opts.latency)
        self.rec = rec = R.load(opts.data, info_path, opts.limit_events, opts.use_cache)
        symbols = rec.symbols
        if not symbols:
            raise ValueError(f"no symbol found in the recording: data={opts.data}")
        self.depth = _section(base, "deploy", DeployConfig, symbols=symbols).depth
        self.clock = SimTime(int(rec.recv[0]) if rec.frames else 0)
        self.x, self.r = schedule(self.model, rec.recv, rec.exch)
        # -- the exchange ----------------------------------------------------------------------
        self.queue = CountingQueue()
        self.exchange = InProcessExchange(rec, _section(base, "sim_trading", TradingConfig), self.model, self.queue,
                                          self.clock.now_ns)
        self.market = self.exchange.market
        # -- b25: execution ------------------------------------------------------------------------
        pipeline_ins = self.exchange.instruments
        self.instruments = [pipeline_ins.get(s) for s in symbols]
        ex_cfg = _section(base, "execution", ExecutionConfig, fsync="never", sim_clock=False)
        self._tmp = None
        if opts.journal:
            journal_path = Path(opts.journal)
            journal_path.unlink(missing_ok=True)
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="b25backtest"))
            journal_path = self._tmp / "execution.journal"
        self.journal_path = journal_path
        self.ex_counters = MemoryCounters(ExecCounter)
        limiter = RateLimiter(self.exchange.info.rate_limits, ex_cfg.limiter_safety, ex_cfg.backoff_429_s,
                              ex_cfg.backoff_429_max_s)
        self.rings = MemoryRings(self._intent)
        self.sink = EventSink(_ExecOut(self), lambda: None)
        risk_cfg = _section(base, "risk", RiskConfig, reconcile=False, sim_clock=False, holds_file="-")
        self.risk = RiskView(RiskEngine(risk_cfg, [i for i in self.instruments if i is not None], _no_alert,
                                        self._risk_cancel_all, self.clock.now_s()), self.clock)
        self.journal = Journal(journal_path, "never")
        self.gateway = InProcessGateway(self.exchange, self.exchange.signer())
        self.execution = ExecutionEngine(ex_cfg, self.instruments, self.journal, self.sink, self.ex_counters,
                                         self.risk.limits, self.gateway, limiter, clock=self.clock,
                                         wall_ms=self.clock.ms, call_later=self._call_later)
        recovery.start_epoch(self.execution)
        recovery.attach_ring(self.execution, 0, 0, self.clock.t)  # the intent ring named in the journal, as by the agent
        self.execution.ready = True
        self.gateway.start(self._report, self.execution.on_stream_connected)
        # -- b25: the strategy -------------------------------------------------------------------------
        entry = strategy_entry(self.replay_options(), symbols)
        st_cfg = _section(base, "strategy", StrategyEngineConfig, strategies=[entry], cancel_on_stop=False,
                          pnl_log_interval_s=0.0, state_file="-", sim_clock=False)
        self.st_counters = MemoryCounters(StratCounter)
        self.strategy = StrategyEngine(st_cfg, "backtest", symbols, pipeline_ins, self.depth, self.st_counters,
                                       clock=self.clock, ring_source=self.rings)
        self.layout, self.rows = book_layout(self.depth)
        self.seq = [0] * len(symbols)
        self.events_done = 0
        self.wall_s = 0.0

    def replay_options(self) -> ReplayOptions:
        o = self.opts
        return ReplayOptions(data=list(o.data), strategy=o.strategy, mode="backtest", params=dict(o.params),
                             config=o.config, limit_events=o.limit_events, strategy_id=o.strategy_id,
                             latency=o.latency)

    # -- edges ---------------------------------------------------------------------------------
    def _intent(self, seq: int, row: tuple) -> None:
        self.execution.on_intent(0, seq, row, time.monotonic_ns())

    def _report(self, report: Any, ts_recv: int) -> None:
        self.execution.on_report(report, ts_recv)

    def _call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> _Timer:
        """Execution's retries and limiter waits, on simulated time (an event on the b25 side)."""
        t = _Timer(fn, args)
        self.queue.push(self.clock.t + int(delay_s * 1e9), DELIVER, t.fire)
        return t

    def _risk_cancel_all(self, why: str) -> bool:
        self.risk.publish()  # execution must already read the new state, as in the risk process
        self.execution.cancel_all()
        return True

    # -- the market data b25 receives -------------------------------------------------------------
    def _book(self, i: int, update_id: int, ts_event: int, ts_recv: int, flags: int) -> tuple:
        """The BookUpdate market_data publishes for symbol i's book as it is now (seq counts them)."""
        self.seq[i] += 1
        return self.market.book_update(i, self.rows, self.depth, update_id, ts_event, ts_recv, flags, self.seq[i],
                                       self.layout)

    def _deliver_book(self, v: tuple) -> None:
        """MARKET: a BookUpdate reaches the strategy and risk (which marks at its mid)."""
        self.rings.books.q.append(v)
        d = self.depth
        self.risk.on_mark(v[0], v[9] if v[5] else 0, v[9 + 2 * d] if v[6] else 0)

    def _deliver_trade(self, v: tuple) -> None:
        self.rings.trades.q.append(v)

    # -- the pipeline runs until it has nothing to do ------------------------------------------------
    async def settle(self) -> None:
        """Risk and the strategy's duty cycle, again while they did something and something is
        left for them: a record in a ring, a fill or mark for risk, a timer due, a task running
        (a cycle with none of these reads nothing and fires nothing, so it is not run)."""
        st, risk, ex, rest, rings, clock = self.strategy, self.risk, self.execution, self.gateway.rest, self.rings, self.clock
        while True:
            n = risk.settle()
            n += st.do_work()
            if ex._tasks or rest.tasks:  # catch-ups and REST requests, answered in-process
                await asyncio.sleep(0)
                n += 1
            if not n or not (rings.pending() or risk.pending or st._next_timer <= clock.t or ex._tasks or rest.tasks):
                return

    # -- events ----------------------------------------------------------------------------------------
    def _apply(self, i: int) -> None:
        """APPLY: the exchange applies frame i; the market data it makes reaches b25 at r_i."""
        what = self.exchange.apply(i)
        if what == BOOK:
            # market_data applies the same diff to the same book: the BookUpdate it publishes
            # is this book's top now, received at r_i
            self._queue_book(i)
        elif what == TRADE and self._md_trades:
            r = int(self.r[i])
            trade_id, px, qty, ts_ms, buyer_maker = self.exchange.trade_of(i)
            self.queue.push(r, MARKET, self._deliver_trade,
                            (int(self.rec.sid[i]), trade_id, px, qty, ts_ms * 1_000_000, r, r,
                             M.TRADE_BUYER_MAKER if buyer_maker else 0))

    def _queue_book(self, i: int) -> None:
        rec = self.rec
        sid, r = int(rec.sid[i]), int(self.r[i])
        self.queue.push(r, MARKET, self._deliver_book, self._book(sid, int(rec.b[i]), int(rec.e_ms[i]) * 1_000_000, r, 0))

    def _quiet(self) -> bool:
        """Nothing of b25 reacts to market data now: no strategy reads books or trades, nothing is
        in flight or open, the account is flat (risk's marks move nothing) and the exchange idle."""
        ex = self.execution
        return (not self._md_routes and self.queue.busy == 0 and not ex.store.open and not ex.queue
                and not ex._tasks and not self.gateway.rest.tasks and all(p.pos == 0 for p in self.risk.engine.ledger.total) and self.exchange.idle())

    # -- the loop ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        """The event queue (procs/exchange_sim/eventclock.py) with the recording's frames as a
        cursor beside it: frame i is the APPLY event at x_i, taken before any queued event at or
        after x_i (APPLY is the first kind at equal times), as ``Replay._run_lockstep`` takes it.
        While ``_quiet``, a run of frames goes through the compiled ``quiet_run`` in one call: the
        book, its update ids and the last BookUpdate come out as the frame by frame path leaves
        them, the BookUpdates in between, which nothing would read, are not built."""
        rec = self.rec
        st = self.strategy
        st.open()
        self._md_trades = any(st._trade_routes)  # no strategy reads trades: none is queued
        self._md_routes = any(st._book_routes) or self._md_trades
        # market_data loads the simulator's snapshot before the first frame and publishes nothing
        # until a diff bridges it (procs/book/sync.py): its first BookUpdate is the first applied diff
        q = self.queue
        x, kind = self.x, rec.kind
        n = rec.frames
        last_r = int(self.r[-1]) if len(self.r) else 0
        never = 1 << 62
        now = self.clock.t
        last_x = int(x[0]) if n else 0
        i = 0
        t0 = time.perf_counter()
        progress = self.opts.progress
        turns = 0
        dirty = True  # something reached b25: it runs until quiescent before the next event
        while True:
            if dirty:
                await self.settle()
                dirty = False
            while i < n and kind[i] == R.INERT:
                i += 1
            t_q = q.peek()
            t_x = int(x[i]) if i < n else None
            if t_q is None and t_x is None:
                break
            t = t_x if t_q is None or (t_x is not None and t_x <= t_q) else t_q
            due = st._next_timer
            if timer_stops_clock(now, due, t, last_r, last_x):
                now = self.clock.t = due  # a strategy timer: the clock stops at its deadline
                dirty = True
                continue
            if t > now:
                now = self.clock.t = t
                if st._next_timer <= now:  # overdue timers (a silence skipped) fire first
                    await self.settle()
            if t == t_x:
                if self._quiet():
                    nxt, last_book, applied, taken = self.exchange.quiet_run(i, due if due > now else never, x)
                    if nxt > i:
                        if last_book >= 0:
                            self.seq[int(rec.sid[last_book])] += applied - 1
                            self._queue_book(last_book)
                        if taken >= 0:
                            last_x = int(x[taken])
                            if last_x > now:
                                now = self.clock.t = last_x
                        i = self.events_done = nxt
                        continue
                if not self._md_trades and R.TRADE_KIND <= kind[i] <= R.MARK_KIND:
                    t_q = q.peek()  # the settle above may have queued requests since
                    nxt, taken = self.exchange.trade_run(i, never if t_q is None else t_q, due if due > now else never, x)
                    if nxt > i:  # trades that reach none of our orders, in one call
                        if taken >= 0:
                            last_x = int(x[taken])
                            if last_x > now:
                                now = self.clock.t = last_x
                        i = self.events_done = nxt
                        continue
                self._apply(i)  # the exchange acts; what it tells b25 is queued
                last_x = t_x
                i += 1
                self.events_done = i
            else:
                _t, k, fn, args = q.pop()
                fn(*args)
                dirty = dirty or k != ARRIVE
            turns += 1
            if progress is not None and turns % 4096 == 0:
                progress(self.events_done, n)
        self.events_done = n
        self.wall_s = time.perf_counter() - t0
        if progress is not None:
            progress(n, n)

    def result(self) -> Result:
        self.strategy.close()
        self.journal.close()
        journal = self.journal_path.read_bytes()
        journal = journal[:parse_journal(journal)[1]]
        books = {}
        for i, sym in enumerate(self.rec.symbols):
            b, a = self.market.fast[i].best_bid(), self.market.fast[i].best_ask()
            books[sym] = (b[0] if b else 0, a[0] if a else 0)
        instruments = {s: {"price_scale": ins.price_scale, "qty_scale": ins.qty_scale,
                           "contract_size": str(ins.contract_size)}
                       for s, ins in zip(self.rec.symbols, self.instruments, strict=True) if ins is not None}
        ex = self.exchange
        counters = {"market_data": {"messages": ex.depth_events + ex.trades_heard}, "execution": self.ex_counters.by_name(),
                    "strategy": self.st_counters.by_name()}
        sim_stats = {"replay": {"sent": self.rec.frames, "frames": self.rec.frames,
                                "latency": self.model.describe()},
                     "backtest": {"cached": self.rec.cached, "load_s": round(self.rec.load_s, 3),
                                  "requests": ex.gate.requests, "frames": self.rec.counts}}
        return Result(self.replay_options(), "backtest", self.rec.frames, sim_stats, self.wall_s, journal, counters,
                      {}, {}, books, instruments, {}, {})

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


class CountingQueue(EventQueue):
    """The event queue, counting what is in flight between b25 and the exchange (ARRIVE, DELIVER)."""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        super().__init__()
        self.busy = 0

    def push(self, t: int, kind: int, fn: Callable[..., Any], *args: Any) -> None:
        if kind == ARRIVE or kind == DELIVER:
            self.busy += 1
        super().push(t, kind, fn, *args)

    def pop(self) -> tuple[int, int, Callable[..., Any], tuple]:
        ev = super().pop()
        if ev[1] == ARRIVE or ev[1] == DELIVER:
            self.busy -= 1
        return ev


class _ExecOut:
    """Execution's ``exec`` ring in a backtest: each event to the strategy and to risk."""

    def __init__(self, bt: Backtest) -> None:
        self.bt = bt

    def try_publish(self, *vals: Any) -> bool:
        self.bt.rings.exec.q.append(vals)
        self.bt.risk.on_exec(vals)
        return True


class _Timer:
    __slots__ = ("fn", "args", "cancelled")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn, self.args, self.cancelled = fn, args, False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.fn(*self.args)


def _no_alert(level: int, code: int, symbol_id: int, value: float, text: str) -> None:
    pass


def backtest(opts: BacktestOptions) -> Result:
    """Run one backtest to the end of the recording (see the module docstring)."""
    LatencyModel.parse(opts.latency)  # bad input before any work
    bt = Backtest(opts)
    try:
        asyncio.run(bt.run())
        return bt.result()
    finally:
        bt.close()
