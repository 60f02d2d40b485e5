"""The ``[strategy]`` config section: engine settings and the list of strategies to run.

```toml
[strategy]
signal_interval_ms = 100

[[strategy.strategies]]
id = "mm_btc"                                  # unique; names the strategy in logs and state
class = "strategies.market_maker:MarketMaker"  # "module:Class"
symbols = ["BTCUSDT"]                          # from [deploy] symbols
params = { quote_qty = "0.001", spread_ticks = 4 }  # decoded into the strategy's own Config
```

``params`` is decoded by the loader into the strategy's Config struct (``forbid_unknown_fields``),
so a misspelled parameter fails naming the field, at start and on reload.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from procs.core.agent import Runtime
from procs.core.config import Section


class StrategyEntry(Section):
    """One strategy instance: which class, which symbols, which parameters."""

    id: str
    class_path: str = msgspec.field(name="class")
    symbols: list[str]
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    enabled: bool = True
    num: int = 0  # OrderIntent.strategy_id; 0 = derived from id (crc32), stable across restarts
    # open orders a previous process of this strategy left working (learnt from execution after a
    # restart of either): "cancel" them, or "adopt" them into the working set (on_order_event
    # with FLAG_RECOVERED; the strategy then manages them as its own)
    recovered_orders: Literal["cancel", "adopt"] = "cancel"

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"strategy id must be [A-Za-z0-9_-]+: id={self.id!r}")
        if ":" not in self.class_path:
            raise ValueError(f"class must be 'module:Class': id={self.id} class={self.class_path!r}")
        if not self.symbols:
            raise ValueError(f"a strategy needs at least one symbol: id={self.id}")
        if self.num < 0:
            raise ValueError(f"num must be >= 0: id={self.id} num={self.num}")

    @property
    def number(self) -> int:
        """The strategy's numeric id in ring records (OrderIntent/OrderEvent/Signal.strategy_id)."""
        return self.num or strategy_number(self.id)

    def fingerprint(self) -> str:
        """Hash of this entry: a reload rebuilds only the entries whose fingerprint changed."""
        return hashlib.sha256(msgspec.json.encode(msgspec.to_builtins(self), order="sorted")).hexdigest()[:16]


MIN_PARK_MS = 0.1  # shortest idle park the engine settings may ask for
MAX_WAKE_WATCH_US = 1000.0  # longest wake-up watch: market_data publishes a book ~15 us after its prewake


class StrategyRuntime(Runtime):
    """``[strategy.runtime]``: cpu, sched (applied once strategies are loaded), idle, and
    ``keep_warm_ms``: with no event for this long, run the per-event code on scratch data
    (Engine.keep_warm) and park at most this long; 0 = off."""

    keep_warm_ms: float = 1.0
    agent_fields: ClassVar[tuple[str, ...]] = ("idle", "keep_warm_ms")

    def __post_init__(self) -> None:
        # it bounds how long the idle strategy parks: a park much shorter than the duty cycle it
        # separates makes the idle loop a spin, at the hot path's real-time priority
        if self.keep_warm_ms != 0 and not self.keep_warm_ms >= MIN_PARK_MS:
            raise ValueError(f"keep_warm_ms must be 0 (off) or at least {MIN_PARK_MS} ms (it bounds the idle park; "
                             f"shorter parks spin the CPU): keep_warm_ms={self.keep_warm_ms}")
        super().__post_init__()


class StrategyEngineConfig(Section):
    """The strategy process: its agent and what it runs."""

    strategies: list[StrategyEntry] = msgspec.field(default_factory=list)
    signal_interval_ms: int = 100  # per strategy and symbol: at most one Signal per interval unless the decision changes
    cancel_on_pause: bool = True  # a strategy paused by an exception has its open orders cancelled
    cancel_on_stop: bool = True  # SIGTERM cancels every open order the engine knows
    max_md_per_cycle: int = 256  # bounded work per duty cycle so exec is drained often
    attach_timeout_s: float = 0.0  # wait for md.*/exec at start; after that retried each second
    # positions/P&L snapshot; "" = run/strategy/<instance>.state.json, "-" = none. The status file
    # (state, orders, last error per strategy: GET /api/strategies) goes beside it as <name>.status.json
    state_file: str = ""
    state_save_interval_s: float = 5.0  # snapshot this often when something changed (and at stop)
    pnl_log_interval_s: float = 60.0  # one strategy_pnl line per strategy this often (0 = never)
    timer_resolution_ms: float = 10.0  # longest the idle strategy parks: timers fire at most this late
    # wake execution as a routed book arrives, before the strategies run, so its wake-up
    # overlaps their work (shm.ring.Producer.prewake)
    prewake: bool = True
    # after a producer's wake-up finds md.* empty (market_data's prewake: a frame is being
    # decoded), watch the md cursors this long for the record instead of running duty cycles
    # meanwhile (Engine.on_wake); 0 = off
    wake_watch_us: float = 150.0
    # after execution denies one of a strategy's orders for the system's state (halted,
    # recovering, risk unavailable, breaker open, journal full) or its order rate
    # ([risk] max_orders_per_s), hold its new orders this long (ERR_HELD) instead of writing each
    # to be denied: a market maker requoting every book otherwise had 1354 intents denied in
    # about 4 s while halted, and 12 for every order sent at the rate limit, each journaled. 0 = off
    deny_hold_ms: float = 200.0
    # after a start, the open orders execution holds for our strategies are reported and each
    # adopted or cancelled; a report not answered in this long is asked for again (and logged)
    adopt_timeout_s: float = 5.0
    # replay harness (``b25 replay``) only: timers, cooldowns and client tags run on the
    # simulator's ``sim.clock`` block (procs/core/simclock.py) and the lockstep gauges are kept
    sim_clock: bool = False
    runtime: StrategyRuntime = msgspec.field(default_factory=lambda: StrategyRuntime())
    # a reload takes every other field (procs.core.reload); these are read once, at start
    restart_only: ClassVar[frozenset[str]] = frozenset({"runtime", "attach_timeout_s", "timer_resolution_ms",
                                                        "state_file", "sim_clock"})

    def __post_init__(self) -> None:
        ids = [s.id for s in self.strategies]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"strategy ids must be unique: duplicate={','.join(dup)}")
        nums = [s.number for s in self.strategies]
        if len(set(nums)) != len(nums):
            raise ValueError(f"strategy numbers collide (set num explicitly): "
                             f"nums={dict(zip(ids, nums, strict=True))}")
        if self.signal_interval_ms < 0 or self.max_md_per_cycle <= 0:
            raise ValueError(f"bad engine setting: signal_interval_ms={self.signal_interval_ms} "
                             f"max_md_per_cycle={self.max_md_per_cycle}")
        # both bound how long the idle strategy parks: a park much shorter than the duty cycle
        # it separates makes the idle loop a spin, at the hot path's real-time priority
        if not self.timer_resolution_ms >= MIN_PARK_MS:
            raise ValueError(f"timer_resolution_ms must be at least {MIN_PARK_MS} ms (it bounds the idle park; "
                             f"shorter parks spin the CPU): timer_resolution_ms={self.timer_resolution_ms}")
        if not 0 < self.adopt_timeout_s <= 600:
            raise ValueError(f"adopt_timeout_s must be > 0 and <= 600: adopt_timeout_s={self.adopt_timeout_s}")
        if not 0 <= self.deny_hold_ms <= 60_000:
            raise ValueError(f"deny_hold_ms must be 0 (off) to 60000: deny_hold_ms={self.deny_hold_ms}")
        if not 0 <= self.wake_watch_us <= MAX_WAKE_WATCH_US:
            raise ValueError(f"wake_watch_us must be 0 (off) to {MAX_WAKE_WATCH_US} (a watch spins at the hot path's "
                             f"priority): wake_watch_us={self.wake_watch_us}")

    def section_hash(self) -> str:
        """sha256 of the decoded section (canonical JSON): the applied config version."""
        return hashlib.sha256(msgspec.json.encode(msgspec.to_builtins(self), order="sorted")).hexdigest()[:16]


def status_file(cfg: StrategyEngineConfig, instance: str) -> Path | None:
    """Where the engine writes what each strategy is doing (``Engine.status``), which the
    monitor's GET /api/strategies reads: beside the state file (``<name>.status.json``; default
    ``run/strategy/<instance>.status.json``); None when ``state_file = "-"`` (no files)."""
    if cfg.state_file == "-":
        return None
    p = Path(cfg.state_file or f"run/strategy/{instance}.state.json")
    return p.with_name(p.name.removesuffix(".json").removesuffix(".state") + ".status.json")


def strategy_number(sid: str) -> int:
    """A stable positive int for a strategy id (what execution and risk see)."""
    return zlib.crc32(sid.encode()) & 0x7FFFFFFF or 1


def strategy_names(config: str | None) -> dict[int, str]:
    """strategy_id (as in ring records) -> strategy id string, for readers such as the TUI."""
    from procs.core.config import load_section

    cfg = load_section(config, "strategy", StrategyEngineConfig)
    return {e.number: e.id for e in cfg.strategies}
