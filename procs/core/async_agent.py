"""The asyncio runner: the same life as ``agent.run_process`` for a process built on an event
loop (market_data, execution, monitor, exchange_sim), on uvloop.

An ``AsyncAgent`` is built by an async factory (start-up work that awaits: the venue's instruments,
compiling, recovery), then ``serve(run)`` keeps it in service until ``run.stop`` is set and
``on_close()`` takes it down. The runner owns the signals, the CPU pin, the status block and its
heartbeat (``work()`` and ``on_heartbeat()`` every ``HEARTBEAT_NS``), ``gc.freeze`` and the
scheduling policy after start-up, and the exit status (see ``agent``'s module docstring).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import uvloop

from . import log
from .agent import EXIT_FAILED, HEARTBEAT_NS, Lifecycle, NoStatus, Runtime
from .status import State, StatusWriter

T = TypeVar("T")


class Stopped(Exception):
    """A stop arrived while ``AsyncRun.until_stop`` was waiting: the wait was cancelled."""


class AsyncAgent(Protocol):
    """A process on an event loop (see the module docstring)."""

    name: str

    async def serve(self, run: AsyncRun) -> None: ...
    def work(self) -> int: ...
    def on_heartbeat(self) -> None: ...
    async def on_close(self) -> None: ...


class AsyncRun:
    """The runner's side an async agent talks to: the stop, timers that end with it, RUNNING,
    failure. Built by the runner inside the event loop."""

    def __init__(self, name: str, status: StatusWriter | NoStatus) -> None:
        self.name = name
        self.status = status
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.signal = 0
        self.failure: BaseException | None = None
        self._on_stop: list[Callable[[], object]] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._signalled, sig)
        # SIGHUP: a config reload where the agent takes one (``on_hangup``), never the default exit
        self._on_hangup: Callable[[], object] | None = None
        self._hangup_pending = False
        self.loop.add_signal_handler(signal.SIGHUP, self._hungup)

    def _hungup(self) -> None:
        if self._on_hangup is not None:
            self._on_hangup()
        else:
            self._hangup_pending = True  # start-up is not done, or the agent does not reload
            log.info("sighup_held", agent=self.name, reason="no reload handler (yet)")

    def on_hangup(self, callback: Callable[[], object]) -> None:
        """SIGHUP calls ``callback`` (the agent's reload); one that came during start-up runs it now."""
        self._on_hangup = callback
        if self._hangup_pending:
            self._hangup_pending = False
            callback()

    def _signalled(self, signum: int) -> None:
        self.signal = signum
        self.request_stop()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    def request_stop(self) -> None:
        """Stop the process cleanly (SIGTERM, a Shutdown command): ``serve`` returns, the close runs."""
        if self.stop.is_set():
            return
        self.stop.set()
        for callback in self._on_stop:
            callback()

    def on_stop(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the stop is requested (e.g. a feed that must end its read loop);
        at once when it already was (a SIGTERM during the start-up work)."""
        if self.stop.is_set():
            callback()
            return
        self._on_stop.append(callback)

    def fail(self, exc: BaseException) -> None:
        """A broken invariant: stop, and exit 1 (FAILED) so supervisord restarts the process."""
        if self.failure is None:
            self.failure = exc
            log.error("agent_failed", agent=self.name, error=repr(exc))
        self.request_stop()

    def running(self) -> None:
        """The agent is in service: the status block says RUNNING."""
        self.status.set_state(State.RUNNING)

    async def until_stop(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the stop comes first (then cancel it and raise ``Stopped``)."""
        task = asyncio.ensure_future(awaitable)
        waiter = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            return task.result()
        task.cancel()
        try:
            await task  # let it run its clean-up (finally blocks) before we go on
        except (asyncio.CancelledError, Exception):
            pass
        raise Stopped

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the stop comes first."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    def every(self, seconds: float, callback: Callable[[], object], first_after: float | None = None) -> None:
        """Call ``callback`` every ``seconds`` on the loop until the stop (first after
        ``first_after``, default one period; 0 = now)."""

        def tick() -> None:
            if self.stop.is_set():
                return  # shutting down: what the callback touches may be closing
            callback()
            if not self.stop.is_set():
                self.loop.call_later(seconds, tick)

        delay = seconds if first_after is None else first_after
        if delay <= 0:
            tick()
        else:
            self.loop.call_later(delay, tick)


def run_async_process(name: str, instance: str | None, runtime: Runtime,
                      start: Callable[[AsyncRun], Coroutine[Any, Any, AsyncAgent]], config_hash: str = "",
                      cpu_latency_us: int = -1) -> int:
    """Run the asyncio process ``name`` on uvloop; returns its exit status. ``start`` builds the
    agent (a stop meanwhile cancels it: it must close what it opened, e.g. in ``finally``);
    without an ``instance`` there is no status block. ``cpu_latency_us``: ``hold_cpu_latency``."""
    return uvloop.run(_run(name, instance, runtime, start, config_hash, cpu_latency_us))


async def _run(name: str, instance: str | None, runtime: Runtime,
               start: Callable[[AsyncRun], Coroutine[Any, Any, AsyncAgent]], config_hash: str,
               cpu_latency_us: int) -> int:
    life = Lifecycle(name, instance, runtime, config_hash, cpu_latency_us)
    final: State | None = None
    try:
        run = AsyncRun(name, life.status)
        try:
            agent = await run.until_stop(start(run))
        except Stopped:
            log.info("stopped_before_ready", agent=name, signal=run.signal)
            final = State.STOPPED
            return 0
        except Exception as exc:
            return life.start_failed(exc)
        life.settle()
        _beat(run, agent)
        try:
            await agent.serve(run)
        except Stopped:
            log.info("stopped_before_ready", agent=name, signal=run.signal)
        except Exception as exc:
            run.fail(exc)
        run.request_stop()
        life.status.set_state(State.STOPPING)
        work = agent.work()  # before the close: it may read what the close releases
        try:
            await agent.on_close()
        except Exception as exc:  # a close that breaks leaves the process FAILED, not half-stopped
            run.fail(exc)
        final = State.FAILED if run.failure is not None else State.STOPPED
        log.info("agent_stopped", agent=name, signal=run.signal, work=work, failed=run.failure is not None)
        return EXIT_FAILED if run.failure is not None else 0
    finally:
        life.close(final)


def _beat(run: AsyncRun, agent: AsyncAgent) -> None:
    """The heartbeat: the status block's work count and the agent's own liveness stamps."""

    def beat() -> None:
        run.status.beat(agent.work())
        agent.on_heartbeat()

    run.every(HEARTBEAT_NS / 1e9, beat, first_after=0)
