"""Agent runner: the one loop every polling process uses (STYLE.md example 7).

An agent implements ``on_start()``, ``do_work() -> int`` (work items done; 0 = idle) and
``on_close()``. The runner handles SIGTERM/SIGINT (finish the current batch, then stop), CPU
pinning, the heartbeat in the process's status block and the idle strategy. Processes built on
asyncio (market_data, execution) use ``install_signal_stop`` and ``Heartbeat`` directly.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Protocol

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
