"""Agent runner: the one loop every polling process uses (STYLE.md example 7).

An agent implements ``on_start()``, ``do_work() -> int`` (work items done; 0 = idle) and
``on_close()``. The runner handles SIGTERM/SIGINT (finish the current batch, then stop), CPU
pinning, the heartbeat in the process's status block and the idle strategy. Processes built on
asyncio (market_data, execution) use ``install_signal_stop`` and ``Heartbeat`` directly.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Callable
from typing import Protocol

from shm.idle import ALIASES as IDLE_ALIASES
from shm.idle import IdleStrategy

from . import log
from .status import State, StatusWriter

HEARTBEAT_NS = 100_000_000  # 100 ms


class Agent(Protocol):
    name: str

    def on_start(self) -> None: ...
    def do_work(self) -> int: ...
    def on_close(self) -> None: ...


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


def run_agent(agent: Agent, idle: IdleStrategy, status: StatusWriter,
              on_heartbeat: Callable[[], None] | None = None) -> int:
    """Run ``agent`` until SIGTERM/SIGINT; returns the exit code (0 on a clean stop)."""
    flag = StopFlag()
    install_signal_stop(flag)
    agent.on_start()
    status.set_state(State.RUNNING)
    log.info("agent_started", agent=agent.name, pid=os.getpid())
    total = 0
    next_beat = time.monotonic_ns()
    try:
        while not flag.stop:
            n = agent.do_work()
            total += n
            now = time.monotonic_ns()
            if now >= next_beat:
                status.beat(total)
                if on_heartbeat:
                    on_heartbeat()
                next_beat = now + HEARTBEAT_NS
            idle.idle(n)
    except Exception as exc:  # a broken invariant: exit non-zero so supervisord restarts us
        status.set_state(State.FAILED)
        log.error("agent_failed", agent=agent.name, error=repr(exc))
        agent.on_close()
        return 1
    status.set_state(State.STOPPING)
    agent.on_close()
    status.set_state(State.STOPPED)
    log.info("agent_stopped", agent=agent.name, signal=flag.signal, work=total)
    return 0
