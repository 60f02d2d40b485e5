"""One replay: an isolated Stack of the real processes driven through a recording.

``replay(ReplayOptions(...)) -> Result`` starts exchange_sim (replaying the files, paused),
market_data, risk, execution and the strategy on a fresh shm instance (``procs.tools.stack.Stack``),
waits until every process is RUNNING and every named consumer attached, resumes the simulator
and follows its progress; when the recording is through and the pipeline is quiescent it
snapshots the journal, counters, histograms and books, then stops everything (also on Ctrl-C,
SIGTERM or failure: the Stack's stop runs in a ``finally``).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs.core import services
from procs.exchange_sim.latency import LatencyModel, section_dict
from procs.execution.journal import parse_journal
from procs.tools.stack import ROOT, Stack

MODES = ("lockstep", "speed", "max")


@dataclass
class ReplayOptions:
    data: list[str]
    strategy: str  # "module:Class"
    mode: str = "lockstep"  # lockstep | speed | max
    speed: float = 1.0  # mode "speed": recorded pace times this
    params: dict = field(default_factory=dict)  # strategy params (over the config's, if any)
    config: str | None = None  # base TOML (default: the repo's b25.toml)
    limit_events: int = 0  # replay only the first N recorded frames
    symbols: list[str] | None = None  # default: every symbol in the recording
    strategy_id: str = "replay"
    work_dir: str | None = None  # where the stack's run dir goes (default: a temp dir, removed)
    keep_run_dir: bool = False
    timeout_s: float = 1800.0  # the whole replay, a safety net
    instance: str | None = None  # shm instance (default: a fresh random one)
    stall_s: float = 120.0  # no frame served for this long: fail, saying what the barrier waits for
    progress: Callable[[int, int], None] | None = None  # (frames served, frames total)
    latency: str = "default"  # lockstep: the latency model (procs/exchange_sim/latency.py)
    trace: str | None = None  # free-running: write the session's latency trace here (procs/tools/latency)


@dataclass
class Result:
    """What a replay produced, read before the processes were stopped."""

    options: ReplayOptions
    instance: str
    frames: int  # recorded frames in the replay
    sim_stats: dict
    wall_s: float  # resume -> pipeline quiescent after the last frame
    journal: bytes  # execution's journal as it was at the end of the replay
    counters: dict[str, dict[str, int]]
    latency: dict[str, dict[str, dict[str, float]]]
    hists: dict[str, dict[str, list[int]]]
    books: dict[str, tuple[int, int]]  # symbol -> (best bid, best ask) ticks at the end
    instruments: dict[str, dict]  # symbol -> {price_scale, qty_scale, contract_size}
    exit_codes: dict[str, int | None]
    lockstep: dict = field(default_factory=dict)


def recording_symbols(files: list[str], sample: int = 5000, config: str | Path | None = None) -> list[str]:
    """The symbols of a recording's streams (from its first ``sample`` frames), read by the
    recording readers of the config's venue (the repo's b25.toml by default)."""
    from procs.venue.adapters import open_venue, venue_config

    return open_venue(venue_config(config or ROOT / "b25.toml")).recordings().symbols(files, sample)


def _base_config(path: str | None) -> dict:
    import tomllib

    with open(path or ROOT / "b25.toml", "rb") as f:
        return tomllib.load(f)


def strategy_entry(opts: ReplayOptions, symbols: list[str]) -> dict:
    """The [[strategy.strategies]] entry: params from --config's entry of that class, then --params."""
    params: dict = {}
    for e in _base_config(opts.config).get("strategy", {}).get("strategies", []):
        if e.get("class") == opts.strategy:
            params.update(e.get("params", {}))
            break
    params.update(opts.params)
    return {"id": opts.strategy_id, "class": opts.strategy, "symbols": symbols, "params": params}


def overrides(opts: ReplayOptions, instance: str, symbols: list[str]) -> dict:
    """Config for a replay on top of the base config (every replay-only field is off live)."""
    lockstep = opts.mode == "lockstep"
    speed = opts.speed if opts.mode == "speed" else 0.0
    sim: dict = {"source": "replay", "replay": [str(Path(f).resolve()) for f in opts.data], "speed": speed,
                 "symbols": symbols, "start_paused": True, "sim_clock": True, "lockstep": lockstep,
                 "replay_limit": opts.limit_events, "replay_wait_subscriber": True}
    if lockstep:
        sim["latency"] = section_dict(LatencyModel.parse(opts.latency))
    return {
        "deploy": {"symbols": symbols},
        "sim": sim,
        # the watchdog's silence limit is host time: a lockstep replay may be slower than the recording
        # no mark-price stream: the simulator's mark runs on host time (risk marks at the recorded mid)
        "market_data": {"stale_after_s": 3600.0 if lockstep else 30.0, "lockstep_gauges": True, "mark_prices": False},
        "strategy": {"strategies": [], "sim_clock": True, "cancel_on_stop": False, "pnl_log_interval_s": 0.0},
        # lockstep: a request may wait in simulated time while host time passes; no timeout of it is real
        "execution": {"sim_clock": True, "fsync": "never",
                      **({"request_timeout_s": 3600.0} if lockstep else {})},
        # reconciliation polls the exchange on host time: off, the simulated account starts flat
        "risk": {"sim_clock": True, "reconcile": False},
    }


def _get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url: str) -> None:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()


def replay(opts: ReplayOptions) -> Result:
    """Run one replay to the end of the recording (see the module docstring)."""
    if opts.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}: mode={opts.mode}")
    LatencyModel.parse(opts.latency)  # a bad model is bad input (exit 2), before anything starts
    if opts.trace and opts.mode == "lockstep":
        raise ValueError("--trace measures a free-running session's latencies: use --speed X or --max")
    missing = [f for f in opts.data if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"recording not found: {missing}")
    symbols = opts.symbols or recording_symbols(opts.data, config=opts.config)
    if not symbols:
        raise ValueError(f"no symbol found in the recording: data={opts.data}")
    own_tmp = opts.work_dir is None
    work = Path(opts.work_dir or tempfile.mkdtemp(prefix="b25replay"))
    import uuid

    instance = opts.instance or f"rp{uuid.uuid4().hex[:10]}"
    stack = Stack(work, instance=instance, overrides=overrides(opts, instance, symbols),
                        strategies=[strategy_entry(opts, symbols)], base_config=opts.config or ROOT / "b25.toml")
    try:
        stack.start()
        return _drive(stack, opts, symbols)
    finally:
        stack.stop()
        if own_tmp and not opts.keep_run_dir:
            shutil.rmtree(work, ignore_errors=True)


def _drive(stack: Stack, opts: ReplayOptions, symbols: list[str]) -> Result:
    from procs.tools.replay.lockstep import Barrier

    base = stack.rest_url
    frames = int(_get(f"{base}/sim/stats")["replay"]["frames"])
    barrier = Barrier(stack.instance, lambda: 0, lambda: 0)
    try:
        # every named consumer attached before the first event: nothing is missed or raced
        stack.wait_for(lambda: all(barrier.attached().values()) and len(barrier.c) == 4,
                       "every process attached to its rings", timeout=60)
        recorder = None
        if opts.trace:
            from procs.tools.latency.trace import SessionRecorder

            recorder = SessionRecorder(stack.instance, base, symbols)
            recorder.start()
        t0 = time.monotonic()
        _post(f"{base}/sim/resume")
        deadline = t0 + opts.timeout_s
        last_sent, last_move = -1, time.monotonic()
        while True:
            st = _get(f"{base}/sim/stats")
            rp = st["replay"]
            if rp["sent"] != last_sent:
                last_sent, last_move = rp["sent"], time.monotonic()
            elif opts.mode != "speed" and time.monotonic() - last_move > opts.stall_s:  # paced: gaps are real
                raise TimeoutError(f"replay stalled at frame {last_sent}/{frames} for {opts.stall_s}s; "
                                   f"barrier: {rp.get('lockstep')}")
            if opts.progress is not None:
                opts.progress(int(rp["sent"]), frames)
            if recorder is not None:
                recorder.poll()
            if rp["finished"]:
                break
            for proc, p in stack.popen.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{proc} exited rc={p.returncode} during the replay:\n{stack.log_tail(proc)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay not finished after {opts.timeout_s}s: {rp}")
            time.sleep(0.05 if opts.mode == "lockstep" else 0.02)
        # free-running: the last frames and answers may still be on their way through the
        # pipeline. The simulator's counts come over HTTP, so: its counts, one look at the
        # pipeline, its counts again; unchanged and quiescent means drained.
        barrier.attach()
        drained = False
        drain_deadline = time.monotonic() + 30.0
        st = _get(f"{base}/sim/stats")
        while time.monotonic() < drain_deadline:
            counts = (int(st["frames_sent"]), int(st.get("user_events_sent", 0)))
            barrier.frames_sent = lambda c=counts: c[0]
            barrier.user_events_sent = lambda c=counts: c[1]
            ok = barrier.quiescent(0)
            st = _get(f"{base}/sim/stats")
            if ok and (int(st["frames_sent"]), int(st.get("user_events_sent", 0))) == counts:
                drained = True
                break
            time.sleep(0.005)
        wall = time.monotonic() - t0
        if opts.progress is not None:
            opts.progress(frames, frames)
        if recorder is not None:
            from procs.tools.latency.trace import write_trace

            assert opts.trace is not None
            write_trace(opts.trace, recorder.finish(), {"data": [Path(f).name for f in opts.data],
                                                        "strategy": opts.strategy, "mode": opts.mode,
                                                        "speed": opts.speed})
        journal = stack.journal_path.read_bytes() if stack.journal_path.exists() else b""
        journal = journal[:parse_journal(journal)[1]]  # execution still runs: its file ends in zeros
        counters: dict[str, dict[str, int]] = {}
        latency: dict[str, dict[str, dict[str, float]]] = {}
        hists: dict[str, dict[str, list[int]]] = {}
        for proc in services.ON_RINGS:
            c, h = stack.counters(proc)
            counters[proc] = c
            hists[proc] = {k: [int(x) for x in v] for k, v in h.items()}
            latency[proc] = stack.latency(proc)
        books = {}
        for s in symbols:
            b = stack.book(s)
            books[s] = (int(b["bid_px"][0]), int(b["ask_px"][0]))
        ins = stack.venue().info(attempts=3)
        assert ins is not None  # attempts=3: an answer or an error
        ins = ins.instruments
        instruments = {s: {"price_scale": ins[s].price_scale, "qty_scale": ins[s].qty_scale,
                           "contract_size": str(ins[s].contract_size)} for s in symbols if s in ins}
        lock = dict(st.get("replay", {}).get("lockstep", {}))
        if not drained:  # say so (and what held it) rather than wait forever
            ex, md = barrier.c.get("execution"), barrier.c.get("market_data")
            lock["drain_timeout"] = {
                "blocked_by": dict(barrier.blocked), "user_events_sent": st.get("user_events_sent"),
                "user_events_handled": ex.get("user_events") if ex else None,
                "exec_pending": ex.get("pending") if ex else None, "frames_sent": st.get("frames_sent"),
                "md_handled": md.get("handled") if md else None}
    finally:
        barrier.close()
    codes = stack.stop()
    return Result(opts, stack.instance, frames, st, wall, journal, counters, latency, hists, books, instruments,
                  dict(codes), lock)


def progress_bar(stream: Any = sys.stderr) -> Callable[[int, int], None]:
    """A one-line progress bar on ``stream`` (a terminal's stderr)."""
    t0 = time.monotonic()
    last = [-1.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and done < total:
            return
        last[0] = now
        frac = done / total if total else 1.0
        width = 30
        fill = int(frac * width)
        rate = done / max(now - t0, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} events "
                     f"{rate:,.0f}/s eta {eta:,.0f}s ")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show
