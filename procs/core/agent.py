"""Agent runner: the life of every b25 process (STYLE.md example 7), polling or on asyncio.

A polling process is an ``Agent``: ``on_start()`` (start-up work), ``do_work() -> int`` (work
items done; 0 = idle), ``on_heartbeat()`` and ``on_close()``; ``run_process`` runs it. A process
built on asyncio is an ``AsyncAgent`` run by ``procs.core.async_agent.run_async_process``. Both
runners do the same around the agent (``Lifecycle``):

1. SIGTERM/SIGINT set the stop: start-up ends early and cleanly, the running agent finishes its
   batch, then stops;
2. pin the CPU, open the status block (``status.<name>``, STARTING);
3. start-up work (the agent's factory and ``on_start``): a stop meanwhile exits 0 (STOPPED), a
   bad input (``StartFailed``, ``ValueError``) exits 2 (FAILED), anything else exits 1;
4. settle: ``gc.freeze`` the start-up objects, apply the scheduling policy, hold the PM QoS
   request (after the start-up work, so compiling, imports and recovery do not run real-time);
5. RUNNING, the heartbeat in the status block every ``HEARTBEAT_NS``;
6. the close: STOPPING, ``on_close``, STOPPED (or FAILED with exit 1 when the agent failed).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import ClassVar, Protocol

import msgspec

from shm.idle import ALIASES as IDLE_ALIASES
from shm.idle import IdleStrategy

from . import log
from .config import Section
from .status import State, StatusWriter

HEARTBEAT_NS = 100_000_000  # 100 ms
EXIT_FAILED = 1  # the agent failed (a broken invariant): supervisord restarts it
EXIT_BAD_START = 2  # bad config or input: a restart would fail the same way


def pin_cpu(cpu: int | None) -> int:
    """Pin this process to ``cpu`` when given and allowed; returns the CPU or -1."""
    if cpu is None or cpu < 0:
        return -1
    try:
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (OSError, ValueError) as exc:
        log.warn("pin_refused", cpu=cpu, reason=str(exc))
        return -1


def parse_sched(spec: str) -> tuple[str, int]:
    """``"fifo:10"``, ``"rr:10"``, ``"nice:-5"`` or ``""`` -> (policy, value); ValueError names the spec."""
    if not spec:
        return "", 0
    policy, _, value = spec.partition(":")
    limits = {"fifo": (1, 99), "rr": (1, 99), "nice": (-20, 19)}
    if policy not in limits:
        raise ValueError(f"sched must be fifo:N, rr:N, nice:N or empty: sched={spec!r}")
    try:
        v = int(value)
    except ValueError:
        raise ValueError(f"sched needs an integer after the colon: sched={spec!r}") from None
    lo, hi = limits[policy]
    if not lo <= v <= hi:
        raise ValueError(f"sched {policy} value must be in {lo}..{hi}: sched={spec!r}")
    return policy, v


def check_idle_sched(idle: str, sched: str) -> None:
    """``idle`` is a known alias, and one that never parks (``spin``, ``yield``) is not paired with
    a real-time ``sched``: such a process holds its CPU at that priority, and every other process
    at the same priority there (the rest of the hot path) waits for it, while RT throttling
    leaves the ordinary ones 5%. Spin belongs on an isolated core under the normal scheduler
    (``b25 affinity``)."""
    if idle not in IDLE_ALIASES:
        raise ValueError(f"idle must be one of {', '.join(IDLE_ALIASES)}: idle={idle!r}")
    policy, _ = parse_sched(sched)
    if idle in ("spin", "yield") and policy in ("fifo", "rr"):
        raise ValueError(f"idle={idle!r} never parks, and under sched={sched!r} it would hold its CPU at real-time "
                         f"priority and starve the processes beside it: use idle='backoff' with sched={sched!r}, "
                         f"or idle={idle!r} with sched='' (or 'nice:N') on an isolated core")


def check_loop_period_ms(name: str, ms: float) -> None:
    """A period an event-loop timer (``loop.call_later``) repeats at: 0 (off) or >= 1 ms.

    uvloop's timers (libuv) count whole milliseconds and round, so a shorter ``call_later`` that
    re-arms itself fires on every loop turn: a spin, which at SCHED_FIFO starves every other
    process at its priority on that CPU (docs/decisions/003-never-spin-under-fifo.md)."""
    if ms != 0 and not ms >= 1.0:
        raise ValueError(f"{name} must be 0 (off) or at least 1 ms (the event loop's timers count "
                         f"whole milliseconds; shorter re-armed timers spin the CPU): {name}={ms}")


def freeze_gc() -> int:
    """Collect once, then move every object alive now into the permanent generation
    (``gc.freeze``); returns how many were frozen. Call it once start-up is done.

    Why: the start-up objects (numba, msgspec, aiohttp, the config) would otherwise be walked by
    every later full collection, a stall of tens of milliseconds in the hot path; the price is
    that frozen objects are never freed (docs/decisions/012-gc-freeze.md).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def apply_sched(spec: str) -> str:
    """Put this process under the scheduling policy ``spec`` (see ``parse_sched``); returns what
    was applied ("" = nothing asked or refused).

    It sets every thread the process has now, and threads started later inherit it; call it
    after start-up work (compiling, recovery) so that work does not run real-time. Why SCHED_FIFO for
    the hot path on a shared machine: a blocking hot process (``backoff``) woken under
    SCHED_FIFO runs at once instead of queueing behind the simulator, risk or a test run, and a
    process it wakes at the same priority does not preempt it; the price is that it must never
    spin (docs/decisions/002-sched-fifo-hot-path.md).
    Refused (no CAP_SYS_NICE, RLIMIT_RTPRIO 0) it logs once and the process runs on as it was.
    """
    policy, v = parse_sched(spec)
    if not policy:
        return ""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    try:
        for tid in tids:
            try:
                if policy == "nice":
                    os.setpriority(os.PRIO_PROCESS, tid, v)  # Linux keeps nice per thread
                else:
                    pol = os.SCHED_FIFO if policy == "fifo" else os.SCHED_RR
                    os.sched_setscheduler(tid, pol, os.sched_param(v))
            except ProcessLookupError:
                continue  # a thread that ended meanwhile
    except OSError as exc:
        log.warn("sched_refused", sched=spec, reason=exc.strerror or str(exc))
        return ""
    log.info("sched_applied", sched=spec)
    return spec


def hold_cpu_latency(us: int) -> int | None:
    """Ask the kernel (PM QoS, ``/dev/cpu_dma_latency``) to keep every idle CPU in an idle state
    whose exit latency is at most ``us`` microseconds, for as long as this process holds the
    returned descriptor (the request ends when the process does). ``us < 0``: ask nothing.

    ``0`` makes idle CPUs poll instead of halting: on a VM with guest halt-polling off, a halted
    vCPU gives its core back to the host, and a wake-up into it goes through the host. Polling
    cuts those wake-ups' cost and tails, at the cost of power: idle CPUs never sleep, and the vCPU
    looks busy to the host (docs/decisions/001-pm-qos.md). b25.toml's market_data holds 0.
    Refused (the device is root-only) it logs once and returns None.
    """
    if us < 0:
        return None
    import struct

    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
        os.write(fd, struct.pack("i", us))
    except OSError as exc:
        log.warn("cpu_latency_refused", us=us, reason=exc.strerror or str(exc))
        return None
    log.info("cpu_latency_held", us=us)
    return fd


class StartFailed(Exception):
    """Start-up cannot complete for a reason a restart would not cure (the message says which
    input and why): the runner marks the process FAILED and exits 2. ``ValueError`` (and so
    ``ConfigError``) counts as this too."""


def exit_bad_config(name: str, exc: Exception) -> int:
    """A config that cannot be used: one plain line on stderr (it names file, section, field and
    reason), exit status 2."""
    print(f"{name}: {exc}", file=sys.stderr)
    return EXIT_BAD_START


class Runtime(Section):
    """``[<section>.runtime]``: how the runner runs a process, one struct for every service.

    ``cpu`` (pinned at start, -1 none) and ``sched`` (``parse_sched``, applied once start-up work
    is done) apply to every process; ``idle`` (its idle strategy) and ``keep_warm_ms`` (the
    keep-warm tick, 0 off) to the agents that have them (``agent_fields``). A service subclasses
    this to set its own defaults and checks; setting a field its agent does not read is an error."""

    cpu: int = -1
    idle: str = "backoff"
    sched: str = ""  # "fifo:N" | "rr:N" | "nice:N" | "": see apply_sched
    keep_warm_ms: float = 0.0
    agent_fields: ClassVar[tuple[str, ...]] = ()  # which of idle and keep_warm_ms the process reads

    def __post_init__(self) -> None:
        check_idle_sched(self.idle, self.sched)
        if not self.keep_warm_ms >= 0:
            raise ValueError(f"keep_warm_ms must be 0 (off) or more: keep_warm_ms={self.keep_warm_ms}")
        for f in msgspec.structs.fields(self):
            if f.name in ("idle", "keep_warm_ms") and f.name not in self.agent_fields \
                    and getattr(self, f.name) != f.default:
                raise ValueError(f"{f.name} does not apply to this process (it reads cpu, sched"
                                 f"{''.join(', ' + a for a in self.agent_fields)}): {f.name}={getattr(self, f.name)!r}")


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it between duty cycles."""

    def __init__(self) -> None:
        self.stop = False
        self.signal = 0

    def __call__(self, signum: int, _frame: object = None) -> None:
        self.stop = True
        self.signal = signum


def install_signal_stop(callback: Callable[[int, object], None]) -> None:
    signal.signal(signal.SIGTERM, callback)
    signal.signal(signal.SIGINT, callback)


class NoStatus:
    """The status block of a process run without an instance (``b25 sim`` in a terminal): none."""

    def set_state(self, state: State) -> None:
        pass

    def set_config_hash(self, config_hash: str) -> None:
        pass

    def beat(self, work: int = 0) -> None:
        pass

    def close(self, unlink: bool = False) -> None:
        pass


class Lifecycle:
    """What both runners do around an agent: pin and status block at start, ``settle`` after the
    start-up work, the start failure, the close."""

    def __init__(self, name: str, instance: str | None, runtime: Runtime, config_hash: str = "",
                 cpu_latency_us: int = -1) -> None:
        self.name = name
        self.runtime = runtime
        self.cpu_latency_us = cpu_latency_us
        cpu = pin_cpu(runtime.cpu)
        self.status: StatusWriter | NoStatus = (StatusWriter(instance, name, cpu, config_hash) if instance
                                                else NoStatus())
        self._cpu_latency_fd: int | None = None

    def settle(self) -> None:
        """Start-up is done: freeze its objects out of the collector, then go real-time."""
        log.info("gc_frozen", objects=freeze_gc())  # start-up objects: never walked again
        apply_sched(self.runtime.sched)
        self._cpu_latency_fd = hold_cpu_latency(self.cpu_latency_us)

    def start_failed(self, exc: BaseException) -> int:
        """Log why start-up failed, mark the process FAILED; returns the exit status."""
        bad_input = isinstance(exc, (StartFailed, ValueError))
        reason = str(exc) or repr(exc)
        log.error("start_failed", agent=self.name, reason=reason)
        if bad_input:
            print(f"{self.name}: {reason}", file=sys.stderr)
        self.status.set_state(State.FAILED)
        return EXIT_BAD_START if bad_input else EXIT_FAILED

    def close(self, state: State | None = None) -> None:
        """Write the final state (when given), end the PM QoS request, close the status block."""
        if state is not None:
            self.status.set_state(state)
        if self._cpu_latency_fd is not None:
            os.close(self._cpu_latency_fd)  # the request ends with the descriptor
            self._cpu_latency_fd = None
        self.status.close()


class Agent(Protocol):
    """A polling process (see the module docstring); ``idle`` is its idle strategy."""

    name: str
    idle: IdleStrategy

    def on_start(self) -> None: ...
    def do_work(self) -> int: ...
    def on_heartbeat(self) -> None: ...
    def on_close(self) -> None: ...


class Startup:
    """What an agent's factory sees while it starts: whether a stop arrived, the status block."""

    def __init__(self, stop: StopFlag, status: StatusWriter | NoStatus) -> None:
        self._stop = stop
        self.status = status

    @property
    def stopping(self) -> bool:
        return self._stop.stop


def run_process(name: str, instance: str, runtime: Runtime, start: Callable[[Startup], Agent | None],
                config_hash: str = "") -> int:
    """Run the polling process ``name`` (the steps in the module docstring); returns its exit status.

    ``start`` builds the agent (it may wait, e.g. for the venue's instruments, looking at
    ``Startup.stopping``); it returns None when a stop came first, having closed what it opened.
    Once an agent exists its ``on_close`` runs exactly once, whatever happens after."""
    stop = StopFlag()
    install_signal_stop(stop)
    life = Lifecycle(name, instance, runtime, config_hash)
    agent: Agent | None = None
    try:
        try:
            agent = start(Startup(stop, life.status))
            if agent is not None and not stop.stop:
                agent.on_start()
        except Exception as exc:
            code = life.start_failed(exc)
            if agent is not None:
                agent.on_close()
            return code
        if agent is None or stop.stop:
            if agent is not None:
                agent.on_close()
            life.status.set_state(State.STOPPED)
            log.info("stopped_before_ready", agent=name, signal=stop.signal)
            return 0
        life.settle()
        return run_agent(agent, life.status, stop)
    finally:
        life.close()


def run_agent(agent: Agent, status: StatusWriter | NoStatus, stop: StopFlag) -> int:
    """The duty cycle: ``do_work``, the idle strategy, a heartbeat every ``HEARTBEAT_NS``, until
    ``stop``; then ``on_close``. Returns the exit status (0 on a clean stop)."""
    status.set_state(State.RUNNING)
    log.info("agent_started", agent=agent.name, pid=os.getpid())
    idle = agent.idle
    total = 0
    next_beat = time.monotonic_ns()
    try:
        while not stop.stop:
            n = agent.do_work()
            total += n
            now = time.monotonic_ns()
            if now >= next_beat:
                status.beat(total)
                agent.on_heartbeat()
                next_beat = now + HEARTBEAT_NS
            idle.idle(n)
    except Exception as exc:  # a broken invariant: exit non-zero so supervisord restarts us
        status.set_state(State.FAILED)
        log.error("agent_failed", agent=agent.name, error=repr(exc))
        agent.on_close()
        return EXIT_FAILED
    status.set_state(State.STOPPING)
    agent.on_close()
    status.set_state(State.STOPPED)
    log.info("agent_stopped", agent=agent.name, signal=stop.signal, work=total)
    return 0
