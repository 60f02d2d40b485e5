"""The agent runners (procs.core.agent.run_process, procs.core.async_agent.run_async_process),
driven in this process with small agents: a SIGTERM stops cleanly after the batch, a stop during
start-up exits 0, a bad input exits 2 and a broken invariant 1, the status block tells each, and
the agent's close runs exactly once."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import uvloop

from procs.core.agent import NoStatus, Runtime, StartFailed, Startup, run_process
from procs.core.async_agent import AsyncRun, run_async_process
from procs.core.status import read_status
from shm.idle import SleepIdle
from shm.inspect import clean


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """The runners install signal handlers and freeze the collector: undo both after each test."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
    gc.unfreeze()


@pytest.fixture
def shm_instance(instance: str) -> Iterator[str]:
    """An instance whose status blocks (kept after a process ends, as a real one's are) go at teardown."""
    yield instance
    clean(instance, force=True)


class CountingAgent:
    """Does one work item per cycle; sends itself SIGTERM after ``stop_after`` cycles."""

    name = "counting"

    def __init__(self, stop_after: int = 5, fail_at: int = -1, fail_on_start: Exception | None = None) -> None:
        self.idle = SleepIdle()
        self.stop_after = stop_after
        self.fail_at = fail_at
        self.fail_on_start = fail_on_start
        self.cycles = 0
        self.after_stop = 0  # cycles run after the SIGTERM (the batch it interrupted ends first)
        self.heartbeats = 0
        self.closed = 0

    def on_start(self) -> None:
        if self.fail_on_start is not None:
            raise self.fail_on_start

    def do_work(self) -> int:
        self.cycles += 1
        if self.cycles == self.fail_at:
            raise RuntimeError("invariant broken")
        if self.cycles == self.stop_after:
            os.kill(os.getpid(), signal.SIGTERM)
            self.after_stop += 1  # the handler has run: this batch still finishes
        return 1

    def on_heartbeat(self) -> None:
        self.heartbeats += 1

    def on_close(self) -> None:
        self.closed += 1


def test_run_process_when_sigterm_then_batch_finishes_closes_once_and_exits_0(shm_instance: str) -> None:
    agent = CountingAgent(stop_after=5)
    rc = run_process("counting", shm_instance, Runtime(), lambda _s: agent, "abc")
    st = read_status(shm_instance, "counting")
    assert rc == 0 and agent.cycles == 5 and agent.after_stop == 1 and agent.closed == 1
    assert st is not None and st["state"] == "STOPPED" and 1 <= st["work"] <= 5  # beats count work items
    assert agent.heartbeats >= 1
    assert gc.get_freeze_count() > 0  # start-up objects frozen before the loop


def test_run_process_when_stopped_during_start_up_then_stopped_without_an_agent(shm_instance: str) -> None:
    def start(startup: Startup) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        assert startup.stopping  # what a factory waiting for exchangeInfo looks at
        return None

    assert run_process("counting", shm_instance, Runtime(), start) == 0
    assert read_status(shm_instance, "counting")["state"] == "STOPPED"


@pytest.mark.parametrize("exc, code", [(ValueError("limit max_notional=-1 must be > 0"), 2),
                                       (StartFailed("cannot read exchangeInfo file"), 2),
                                       (RuntimeError("bug"), 1)])
def test_run_process_when_start_up_fails_then_failed_with_exit_code_and_agent_closed(
        shm_instance: str, capsys: pytest.CaptureFixture[str], exc: Exception, code: int) -> None:
    agent = CountingAgent(fail_on_start=exc)
    assert run_process("counting", shm_instance, Runtime(), lambda _s: agent) == code
    assert read_status(shm_instance, "counting")["state"] == "FAILED"
    assert agent.closed == 1 and agent.cycles == 0
    err = capsys.readouterr().err
    assert '"start_failed"' in err and str(exc) in err


def test_run_process_when_do_work_raises_then_failed_exit_1_and_closed(shm_instance: str) -> None:
    agent = CountingAgent(stop_after=100, fail_at=3)
    assert run_process("counting", shm_instance, Runtime(), lambda _s: agent) == 1
    assert read_status(shm_instance, "counting")["state"] == "FAILED"
    assert agent.closed == 1


class AsyncCountingAgent:
    """Counts loop turns; stops itself (SIGTERM) or fails after ``turns``."""

    name = "acounting"

    def __init__(self, instance: str, turns: int = 3, fail: bool = False) -> None:
        self.instance = instance
        self.turns = turns
        self.fail = fail
        self.count = 0
        self.heartbeats = 0
        self.closed = 0
        self.status_while_serving = ""

    async def serve(self, run: AsyncRun) -> None:
        run.running()
        while not run.stopping:
            self.count += 1
            if self.count == self.turns:
                self.status_while_serving = (read_status(self.instance, self.name) or {}).get("state", "")
                if self.fail:
                    run.fail(RuntimeError("a source task died"))
                else:
                    os.kill(os.getpid(), signal.SIGTERM)
            await run.sleep(0.01)

    def work(self) -> int:
        return self.count

    def on_heartbeat(self) -> None:
        self.heartbeats += 1

    async def on_close(self) -> None:
        self.closed += 1


def _async_start(agent: AsyncCountingAgent) -> Callable[[AsyncRun], Coroutine[Any, Any, AsyncCountingAgent]]:
    async def start(_run: AsyncRun) -> AsyncCountingAgent:
        return agent

    return start


def test_run_async_process_when_sigterm_then_stops_clean_with_heartbeat(shm_instance: str) -> None:
    agent = AsyncCountingAgent(shm_instance, turns=3)
    rc = run_async_process("acounting", shm_instance, Runtime(), _async_start(agent))
    st = read_status(shm_instance, "acounting")
    assert rc == 0 and agent.closed == 1 and agent.status_while_serving == "RUNNING"
    assert st["state"] == "STOPPED" and agent.heartbeats >= 1


def test_run_async_process_when_agent_fails_then_failed_exit_1(shm_instance: str) -> None:
    agent = AsyncCountingAgent(shm_instance, turns=2, fail=True)
    assert run_async_process("acounting", shm_instance, Runtime(), _async_start(agent)) == 1
    assert read_status(shm_instance, "acounting")["state"] == "FAILED" and agent.closed == 1


def test_run_async_process_when_stopped_during_start_up_then_start_cleans_up_and_exits_0(shm_instance: str) -> None:
    cleaned = []

    async def start(run: AsyncRun) -> AsyncCountingAgent:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        try:
            await asyncio.sleep(30)  # waiting for the exchange
        finally:
            cleaned.append(True)
        raise AssertionError("not reached")

    assert run_async_process("acounting", shm_instance, Runtime(), start) == 0
    assert cleaned == [True] and read_status(shm_instance, "acounting")["state"] == "STOPPED"


def test_run_async_process_when_start_up_fails_then_exit_code_by_kind(shm_instance: str) -> None:
    async def bad_input(_run: AsyncRun) -> AsyncCountingAgent:
        raise ValueError("symbols not in exchangeInfo: symbols=XYZUSDT")

    async def port_taken(_run: AsyncRun) -> AsyncCountingAgent:
        raise OSError(98, "address already in use")

    assert run_async_process("acounting", shm_instance, Runtime(), bad_input) == 2
    assert read_status(shm_instance, "acounting")["state"] == "FAILED"
    assert run_async_process("acounting", shm_instance, Runtime(), port_taken) == 1


def test_run_async_process_without_instance_then_no_status_block(instance: str) -> None:
    agent = AsyncCountingAgent(instance, turns=2)
    assert run_async_process("acounting", None, Runtime(), _async_start(agent)) == 0
    assert agent.closed == 1 and read_status(instance, "acounting") is None


def test_async_run_on_stop_when_registered_before_or_after_the_stop_then_called_once() -> None:
    calls: list[str] = []

    async def scenario() -> None:
        run = AsyncRun("acounting", NoStatus())
        run.on_stop(lambda: calls.append("before"))
        run.request_stop()
        run.request_stop()  # a second SIGTERM: nothing more
        run.on_stop(lambda: calls.append("after"))  # a feed wired after a SIGTERM during start-up

    uvloop.run(scenario())
    assert calls == ["before", "after"]
