"""``b25 fuzz``: every input b25 reads from outside, fed generated inputs.

Each target pairs a generator of inputs with the property its input must keep. A *crash* is an
exception the code did not turn into its clear error, or a broken property (a misread journal
record, a ring that lost or doubled a record, a 500 from the simulator, ...). The report shows
the input that broke it.

Two engines drive the same generators (procs/tools/reliability/draw.py, decision 048):

* ``random`` (the default): each input is drawn from ``random.Random`` with its own seed, tens of
  microseconds an input, so a million inputs a target is minutes. A crash is reported with its
  seed; ``b25 fuzz --targets T --reproduce SEED`` runs that one input again with its traceback.
* ``hypothesis``: each input is drawn by hypothesis, which shrinks a failure to its smallest input;
  about 2 ms an input. The property tests use it.

| target | what is fed | the property |
|---|---|---|
| venue_* | every kind of message the venue adapter reads (market frames, the depth snapshot, user-stream events, WS API answers, REST answers: orders, errors, trades, open orders, account, positions, the instrument list), mutated from well-formed samples (``procs/venue/binance/fuzz.py``) | b25's struct with well-formed numbers, or the documented answer to bad input (None and counted, VenueError, ValueError naming the field); never another exception |
| market_data | a snapshot of the reference book at a checkpoint of a real recording, then its frames with some damaged, through the FeedHandler (fast books) on real shm | never raises; every published book stays ordered with positive quantities; an undamaged run ends on the reference book |
| journal | journals of random records, the tail cut, damaged or grown with garbage | the reader returns exactly the records before the damage, never raises |
| ring | random publish/poll/commit sequences on a real shm ring (gating and broadcast) | nothing lost or doubled on a gating ring, in order; a lapped broadcast reader counts its loss |
| config | random sections of every config type, and random TOML text | a config, or a ConfigError naming the file, section and field |
| control | random bytes and random commands on a control queue | a command, or the message counted as bad and logged once; the next good one still decodes |
| sim_rest, sim_signing | requests on every simulator REST route; signed ones changed after signing (``procs/exchange_sim/fuzz.py``) | a 2xx/4xx with the error's code and msg, never an exception; only the exact signed text is accepted |

The property tests (``tests/tools/reliability/test_fuzz.py``) run each target for a few hundred
inputs with each engine; ``b25 fuzz --inputs N`` runs each for N. The hypothesis engine runs in
batches of ``BATCH`` (one hypothesis run per batch, each with its own seed, so memory stays flat
over a million inputs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .draw import RandomDraw, strategy

if TYPE_CHECKING:
    from .fuzz_targets import Target

BATCH = 5000
ENGINES = ("random", "hypothesis")
PROGRESS_EVERY_S = 30.0

@dataclass
class Result:
    target: str
    inputs: int = 0
    crashes: int = 0
    seconds: float = 0.0
    failure: str = ""  # what broke, and on which input (hypothesis: its smallest; random: its seed)
    batches: int = 0
    errors: list[str] = field(default_factory=list)


def run_target(target: Target, inputs: int, start_seed: int = 0, batch: int = BATCH,
               progress: Callable[[str], None] | None = None, engine: str = "random", first: int = 0) -> Result:
    """Feed ``target`` ``inputs`` generated inputs with ``engine`` (one of ``ENGINES``); it stops
    at the first crash. The random engine begins at the run's ``first`` input (a shard of a run:
    the inputs are those the whole run would have fed from there)."""
    if engine not in ENGINES:
        raise ValueError(f"engine: {engine!r} is not one of {ENGINES}")
    res = Result(target.name)
    t0 = time.monotonic()
    resource = target.make() if target.make is not None else None
    try:
        if engine == "random":
            _run_random(target, resource, res, inputs, start_seed, progress, first)
        else:
            _run_hypothesis(target, resource, res, inputs, start_seed, batch, progress)
    finally:
        _close(resource)
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def input_seed(start_seed: int, k: int) -> int:
    """The seed of a target's ``k``-th input in a random run from ``start_seed``."""
    return start_seed * 1_000_003 + k


def _run_random(target: Target, resource: Any, res: Result, inputs: int, start_seed: int,
                progress: Callable[[str], None] | None, first: int = 0) -> None:
    generate = target.generate
    shown = time.monotonic()
    for k in range(inputs):
        s = input_seed(start_seed, first + k)
        value = generate(RandomDraw(s))
        try:
            _check(target, resource, value)
        except Exception as exc:
            res.crashes += 1
            res.failure = (_failure(exc) + f" | input seed {s} (b25 fuzz --targets {target.name} --reproduce {s}): "
                           + repr(value)[:1400])
        res.inputs = k + 1
        if res.crashes:
            return
        if progress is not None and time.monotonic() - shown > PROGRESS_EVERY_S:
            shown = time.monotonic()
            progress(f"{target.name}: {res.inputs}/{inputs} inputs from input {first}, 0 crashes")


def reproduce(target: Target, s: int) -> Any:
    """Run a random run's input of seed ``s`` again, raising what it raises; returns the input. It
    runs on a fresh resource: a target that keeps state between inputs (market_data's books) may
    need the run's earlier inputs too, which ``--seed`` and ``--inputs`` repeat."""
    resource = target.make() if target.make is not None else None
    value = target.generate(RandomDraw(s))
    try:
        _check(target, resource, value)
    finally:
        _close(resource)
    return value


def _check(target: Target, resource: Any, value: Any) -> None:
    """Hold one input to the target's property (with its resource when it has one)."""
    assert target.check is not None
    target.check(resource, value) if resource is not None else target.check(value)


def _close(resource: Any) -> None:
    close = getattr(resource, "close", None)
    if close is not None:
        close()


def _run_hypothesis(target: Target, resource: Any, res: Result, inputs: int, start_seed: int, batch: int,
                    progress: Callable[[str], None] | None) -> None:
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    generated = strategy(target.generate)

    def one(values: list[Any]) -> None:
        for value in values:
            res.inputs = min(res.inputs + 1, inputs)  # the last example's list may reach past the count
            _check(target, resource, value)

    k = 0
    while res.inputs < inputs and not res.crashes:
        n = min(batch, inputs - res.inputs)
        per = max(1, min(target.per_example, n))
        values = st.lists(generated, min_size=per, max_size=per)
        test = settings(max_examples=-(-n // per), database=None, deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                        print_blob=False)(seed(start_seed * 1_000_003 + k)(given(values)(one)))
        before = res.inputs
        try:
            test()
        except Exception as exc:  # a crash: hypothesis re-raised it on the smallest input
            res.crashes += 1
            res.failure = _failure(exc)
        res.batches += 1
        k += 1
        if res.inputs == before:  # nothing more to generate (a tiny input space)
            break
        if progress is not None:
            progress(f"{target.name}: {res.inputs}/{inputs} inputs, {res.crashes} crashes")


def _failure(exc: BaseException) -> str:
    """What broke and on which input (hypothesis adds "Falsifying example: ..." as notes; several
    distinct failures come as an exception group, each with its own)."""
    parts = []
    for e in getattr(exc, "exceptions", None) or [exc]:
        notes = " ".join(getattr(e, "__notes__", []))
        parts.append(f"{type(e).__name__}: {e}"[:600] + (" | " + notes[:1400] if notes else ""))
    return " || ".join(parts).strip()


class LogLines:
    """A stand-in for stderr that counts the JSON log lines written to it."""

    def __init__(self) -> None:
        self.lines = 0
        self.buffer = self

    def write(self, data: bytes | str) -> int:
        self.lines += data.count(b"\n" if isinstance(data, bytes) else "\n")
        return len(data)

    def flush(self) -> None:
        pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", type=int, default=10000, help="generated inputs per target (default 10000)")
    p.add_argument("--targets", default="", help="comma-separated target names (default: all; an unknown name lists them)")
    p.add_argument("--seed", type=int, default=None, help="the run's seed (default: from the clock)")
    p.add_argument("--engine", choices=ENGINES, default="random",
                   help="random: fast, reports a crash's seed; hypothesis: slow, shrinks a crash (default random)")
    p.add_argument("--jobs", type=int, default=1,
                   help="processes: targets, and shards of a target's long random run, at once (default 1); the inputs are the same")
    p.add_argument("--reproduce", type=int, default=None, metavar="SEED",
                   help="run the random engine's input of this seed (from a crash report) on one target, with its traceback")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


SHARD_MIN_INPUTS = 10_000  # a target's random run is split across --jobs processes from this many inputs a shard


def shards(inputs: int, jobs: int) -> list[tuple[int, int]]:
    """(first input, how many) of each shard of a target's random run over ``jobs`` processes."""
    n = max(1, min(jobs, inputs // SHARD_MIN_INPUTS))
    bounds = [inputs * i // n for i in range(n + 1)]
    return [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(n)]


def _run_named(name: str, inputs: int, start_seed: int, engine: str, first: int = 0) -> tuple[Result, int]:
    """One target's run (or a shard of it), with the log lines its code wrote (bad input is logged
    once per kind and process)."""
    from .fuzz_targets import TARGETS

    out, sink = sys.stderr, LogLines()
    sys.stderr = sink
    try:
        result = run_target(TARGETS[name], inputs, start_seed, engine=engine, first=first,
                            progress=lambda t: print(t, file=out, flush=True))  # stderr: the report is on stdout
    finally:
        sys.stderr = out
    return result, sink.lines


def _merge_shards(done: list[tuple[Result, int]]) -> tuple[list[Result], dict[str, int], dict[str, int]]:
    """Each target's shards as one result (inputs, crashes, the CPU seconds and log lines summed;
    the first failure), in the order of the targets; and how many shards each had."""
    results: dict[str, Result] = {}
    logged: dict[str, int] = {}
    parts: dict[str, int] = {}
    for r, lines in done:
        m = results.setdefault(r.target, Result(r.target))
        m.inputs += r.inputs
        m.crashes += r.crashes
        m.seconds = round(m.seconds + r.seconds, 1)
        m.failure = m.failure or r.failure
        logged[r.target] = logged.get(r.target, 0) + lines
        parts[r.target] = parts.get(r.target, 0) + 1
    return list(results.values()), logged, parts


def run(args: argparse.Namespace) -> int:
    try:
        from .fuzz_targets import TARGETS
    except ImportError as exc:
        print(f"b25 fuzz needs the dev extras (pip install -e '.[dev]'): {exc}", file=sys.stderr)
        return 2
    names = [t.strip() for t in args.targets.split(",") if t.strip()] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown or args.inputs <= 0 or args.jobs <= 0:
        print(f"b25 fuzz: unknown targets {unknown} (known: {','.join(TARGETS)})" if unknown
              else f"b25 fuzz: --inputs must be > 0: {args.inputs}" if args.inputs <= 0
              else f"b25 fuzz: --jobs must be > 0: {args.jobs}", file=sys.stderr)
        return 2
    if args.reproduce is not None:
        if len(names) != 1:
            print("b25 fuzz --reproduce: name the one target with --targets", file=sys.stderr)
            return 2
        try:
            value = reproduce(TARGETS[names[0]], args.reproduce)
        except Exception:
            traceback.print_exc()
            return 1
        print(f"{names[0]}: input seed {args.reproduce} passes: {value!r}"[:2000])
        return 0
    start = args.seed if args.seed is not None else int(time.time())

    t0 = time.monotonic()
    # each target's seed follows from its place in the table (so --targets T feeds T what a run of
    # every target with the same --seed does) and each input's from its place in the run, so --jobs
    # changes no input: it runs targets, and shards of a long random run, at once
    table = list(TARGETS)
    work = [(name, count, start + table.index(name) * 7919, args.engine, first) for name in names
            for first, count in (shards(args.inputs, args.jobs) if args.engine == "random" else [(0, args.inputs)])]
    if args.jobs <= 1:
        done = [_run_named(*w) for w in work]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_run_named, *zip(*work, strict=True)))
    results, logged, parts = _merge_shards(done)
    report = {"ok": all(r.crashes == 0 for r in results), "engine": args.engine, "seed": start,
              "jobs": args.jobs, "inputs_per_target": args.inputs,
              "inputs": sum(r.inputs for r in results), "crashes": sum(r.crashes for r in results),
              "seconds": round(time.monotonic() - t0, 1),
              "targets": {r.target: {"inputs": r.inputs, "crashes": r.crashes, "seconds": r.seconds,
                                     "log_lines": logged[r.target], **({"shards": parts[r.target]} if parts[r.target] > 1 else {}),
                                     **({"failure": r.failure} if r.failure else {})}
                          for r in results}}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for r in results:
            print(f"{r.target:<14} {r.inputs:>9} inputs {r.crashes} crashes {r.seconds:>8.1f} s"
                  + (f"\n    {r.failure}" if r.failure else ""))
        print("OK" if report["ok"] else "CRASHES")
    return 0 if report["ok"] else 1

