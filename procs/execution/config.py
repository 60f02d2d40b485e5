"""The ``[execution]`` config section: transport, journal, reconciliation, breaker and limiter
settings (where the venue is and whose account: ``[venue]``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from procs.core.agent import Runtime, check_loop_period_ms
from procs.core.config import Section


class ExecutionRuntime(Runtime):
    """``[execution.runtime]``: cpu, sched (applied after recovery), ``idle`` ("poll" intake only:
    "spin" never sleeps, a whole core; anything else backs off, 50 loop turns then 1 ms sleeps;
    "thread" intake parks on the ring semaphore) and ``keep_warm_ms``: with no intent for this
    long, run the intent -> request path on scratch data (risk read, check, journal frame to a
    scratch file, requests built and signed, nothing sent) so the next intent finds it warm
    (Engine.warm); 0 = off."""

    keep_warm_ms: float = 1.0
    agent_fields: ClassVar[tuple[str, ...]] = ("idle", "keep_warm_ms")

    def __post_init__(self) -> None:
        check_loop_period_ms("keep_warm_ms", self.keep_warm_ms)
        super().__post_init__()


class ExecutionConfig(Section):
    """How execution reaches the exchange and keeps its orders safe."""

    transport: Literal["ws", "rest"] = "ws"  # "ws" falls back to REST while the WS API is down
    request_timeout_s: float = 2.0  # no answer by then = outcome unknown (query before re-send)
    journal: str = ""  # "" = run/journal/<instance>/execution.journal
    fsync: Literal["always", "batch", "never"] = "batch"
    fsync_interval_ms: int = 50  # "batch": at most this long between fsyncs
    journal_rotate_mb: float = 64.0  # at start, a larger journal is compacted (the old one archived)
    # the journal file is preallocated this much at a time; when less than half of it is left and
    # the disk has no room for more, new orders are denied (journal_full) until it has: the rest
    # holds the events of the orders already out (docs/decisions/041-journal-full.md)
    journal_grow_mb: float = 1.0
    forget_closed_s: float = 600.0  # closed orders are kept in memory this long (late reports)
    reconcile: Literal["adopt", "cancel"] = "adopt"  # exchange orders unknown to b25
    recover_resend: bool = True  # journaled-but-never-arrived orders are re-sent (same id)
    breaker_failures: int = 5  # consecutive failures/timeouts that open the breaker
    breaker_cooldown_s: float = 2.0  # open -> half-open (one probe)
    limiter_safety: float = 0.9  # use at most this share of each exchange rate limit
    backoff_429_s: float = 1.0  # first pause after a 429 without Retry-After (doubles, capped)
    backoff_429_max_s: float = 30.0
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 5.0
    intent_wait: Literal["thread", "poll", "fd"] = "fd"  # how the loop learns of new intents
    # fail closed: while risk.state is missing, never written, or its producer is dead or has not
    # beaten for risk_stale_s, new orders are denied (risk_unavailable); cancels still go.
    # false: no risk.state means no limits (execution driven alone: its tests, bench exec)
    risk_required: bool = True
    risk_stale_s: float = 2.0
    # fd intake: woken by a strategy's prewake with no intent waiting yet, run the keep-warm
    # (Engine.warm) at once, so the intent that follows finds its path warm; off, because an intent
    # landing during the warm-up waits for it (docs/decisions/006-keep-warm-ticks.md)
    warm_on_prewake: bool = False
    # one log line per order state change, cancel request and request outcome (never per market
    # event): for chasing an order's history in a test or an incident; off in production
    trace_orders: bool = False
    # dead-man switch (procs.execution.deadman): the venue cancels a symbol's orders when this long
    # passes without a refresh (execution dead); refreshed every dead_man_refresh_s while the symbol
    # has open orders; 0 = off. Off in a replay (sim_clock): the venue's clock is the recording's
    dead_man_s: float = 10.0
    dead_man_refresh_s: float = 3.0
    # with the dead-man switch on, a clean stop cancels every open order first (then disarms it):
    # false leaves them working for the next start to reconcile, unguarded while execution is down
    cancel_on_stop: bool = True
    # replay harness (``b25 replay``) only: read time from the instance's ``sim.clock`` block (the
    # order-rate window follows the recording) and keep the lockstep gauges
    sim_clock: bool = False
    runtime: ExecutionRuntime = msgspec.field(default_factory=lambda: ExecutionRuntime())
    # every field is read once, at start (the journal, the gateway, the limiter, the breaker are
    # built from them): a reload that changes one is refused, naming it (procs.core.reload)
    restart_only: ClassVar[frozenset[str]] = frozenset()  # filled in below the class

    def __post_init__(self) -> None:
        if self.breaker_failures < 1:
            raise ValueError(f"breaker_failures must be >= 1: breaker_failures={self.breaker_failures}")
        if not 0.0 < self.limiter_safety <= 1.0:
            raise ValueError(f"limiter_safety must be in (0, 1]: limiter_safety={self.limiter_safety}")
        if not self.risk_stale_s > 0:
            raise ValueError(f"risk_stale_s must be > 0: risk_stale_s={self.risk_stale_s}")
        if self.dead_man_s < 0 or (self.dead_man_s and not 0 < self.dead_man_refresh_s <= self.dead_man_s / 2):
            raise ValueError(f"dead_man_s must be 0 (off) or > 0 with 0 < dead_man_refresh_s <= dead_man_s / 2: "
                             f"dead_man_s={self.dead_man_s} dead_man_refresh_s={self.dead_man_refresh_s}")
        if not 0.01 <= self.journal_grow_mb <= 1024:
            raise ValueError(f"journal_grow_mb must be 0.01..1024: journal_grow_mb={self.journal_grow_mb}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0: request_timeout_s={self.request_timeout_s}")


ExecutionConfig.restart_only = frozenset(ExecutionConfig.__struct_fields__)
