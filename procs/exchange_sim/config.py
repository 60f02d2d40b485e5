"""Configuration of the exchange simulator's market side: the ``[sim]`` TOML section.

Example (every field has a default; unknown fields fail at start)::

    [sim]
    rest_port = 9731            # 0 = ephemeral; the "listening" log line gives the real ports
    ws_port = 9732
    symbols = ["BTCUSDT", "ETHUSDT"]
    source = "generator"        # or "replay"
    replay = ["../shared/data/real/hftbacktest-binance/usdm/btcusdt_20240718.gz"]
    speed = 1.0                 # replay pace multiplier; 0 = as fast as the slowest reader

    [sim.latency]               # lockstep replay only (procs/exchange_sim/latency.py); these are the defaults
    feed = "recorded"
    entry = "lognormal 4ms 0.56"
    response = "lognormal 4ms 0.56"
    seed = 1

    [sim.generator]
    seed = 1
    msg_rate = 5000             # depth events per second over all symbols

    [[sim.faults]]
    fault = "drop_diff"
    symbol = "BTCUSDT"
    after_s = 10
    every_s = 30

The trading side reads its own ``[sim_trading]`` section (``procs.exchange_sim.trading.config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from procs.core.agent import Runtime
from procs.core.config import Section, load_section
from procs.exchange_sim.latency import LatencySection

DEFAULT_EXCHANGE_INFO = str(Path(__file__).with_name("exchange_info_default.json"))


def write_exchange_info(path: Path, limit: int) -> Path:
    """The default exchangeInfo with every ``rateLimits`` limit set to ``limit``, written to
    ``path`` (a benchmark's simulator that must not throttle; b25's own limiter follows it)."""
    import json

    info = json.loads(Path(DEFAULT_EXCHANGE_INFO).read_text())
    for rl in info.get("rateLimits", []):
        rl["limit"] = limit
    path.write_text(json.dumps(info))
    return path


class FaultSpec(Section):
    """One fault to inject, from config (``[[sim.faults]]``) or ``POST /sim/fault``.

    ``after_s`` delays a config fault from start; ``every_s`` > 0 repeats it.
    """

    fault: Literal[
        "drop_diff", "duplicate_diff", "reorder_diff", "seq_gap", "disconnect", "stall",
        "slow_snapshot", "malformed_frame", "rest_429", "rest_5xx", "price_jump", "wide_spread",
    ]
    symbol: str = ""  # "" = every symbol (diff faults) / every connection (disconnect, stall)
    count: int = 1  # diffs, frames or REST requests affected
    seconds: float = 1.0  # stall length, snapshot delay
    after_s: float = 0.0
    every_s: float = 0.0
    status: int = 503  # HTTP status of rest_5xx
    bps: float = 0.0  # price_jump: the move (negative = down); wide_spread: the spread kept for ``seconds``


class GeneratorConfig(Section):
    """The seeded synthetic market."""

    seed: int = 1
    msg_rate: float = 200.0  # depth events per second over all symbols (trades on top); <= 0 = as fast as read
    depth_levels: int = 50  # levels per side kept near the mid
    trade_prob: float = 0.15  # share of events that are an aggressive order hitting the touch
    cancel_prob: float = 0.35
    drift_ticks: float = 0.3  # stdev of the fair-price random walk per event, in exchange ticks
    start_prices: dict[str, str] = msgspec.field(default_factory=lambda: {"BTCUSDT": "60000", "ETHUSDT": "3000"})
    mean_lots: int = 0  # mean added size in exchange steps; 0 = ~10 * min qty
    tick_mult: dict[str, int] = msgspec.field(default_factory=dict)  # coarser price grid per symbol
    # mark-price model: each mark interval the mark moves this share of the way to the mid
    # (1.0 = the mid); it lags the last trade as the exchange's mark does
    mark_smoothing: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 < self.mark_smoothing <= 1.0:
            raise ValueError(f"mark_smoothing must be in (0, 1]: mark_smoothing={self.mark_smoothing}")


class SimConfig(Section):
    """The market side of exchange_sim: sockets, symbols, market source, faults."""

    host: str = "127.0.0.1"
    rest_port: int = 9731
    ws_port: int = 9732
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"])
    exchange_info: str = DEFAULT_EXCHANGE_INFO  # JSON body or a cryptofeed ``*.0`` file
    source: Literal["generator", "replay"] = "generator"
    replay: list[str] = msgspec.field(default_factory=list)  # recordings, played in order as one stream
    speed: float = 1.0  # replay pace multiplier; 0 = as fast as the slowest subscriber reads
    replay_wait_subscriber: bool = True  # start the replay clock at the first subscription
    generator: GeneratorConfig = msgspec.field(default_factory=GeneratorConfig)
    faults: list[FaultSpec] = msgspec.field(default_factory=list)
    weight_limit_1m: int = 2400  # REQUEST_WEIGHT per minute before a real 429
    max_ws_buffer: int = 64 * 1024 * 1024  # a subscriber further behind than this is disconnected
    ws_max_msgs_per_s: int = 10  # client->server messages per market connection (exchange: 10; 0 = no limit)
    mark_interval_ms: int = 1000
    # latency trace (procs.exchange_sim.trace; GET/POST /sim/trace): off by default, costs nothing then
    trace: bool = False  # stamp written depth frames and received orders from the start
    trace_capacity: int = 100_000  # entries kept per ring (frames, orders); oldest dropped first
    # -- the replay harness (``b25 replay``, procs/tools/replay); every field is off by default ----------
    sim_clock: bool = False  # write the recording's time to the ``sim.clock`` block of the --instance
    start_paused: bool = False  # the market source waits for ``POST /sim/resume`` (or step)
    lockstep: bool = False  # serve recorded event N+1 only once the pipeline is quiescent (needs sim_clock)
    replay_limit: int = 0  # serve only the first N recorded frames (0 = all)
    # lockstep only: the latencies of market data, order requests and answers (procs/exchange_sim/latency.py)
    latency: LatencySection = msgspec.field(default_factory=LatencySection)
    runtime: Runtime = msgspec.field(default_factory=Runtime)  # [sim.runtime]: cpu and sched

    def __post_init__(self) -> None:
        if self.lockstep and not self.sim_clock:
            raise ValueError("lockstep needs sim_clock = true: it waits for the pipeline on the simulated clock: "
                             "sim_clock=false")
        if self.trace_capacity < 1:
            raise ValueError(f"trace_capacity must be >= 1: trace_capacity={self.trace_capacity}")
        if self.replay_limit < 0:
            raise ValueError(f"replay_limit must be >= 0: replay_limit={self.replay_limit}")


def _resolve(base: Path, name: str) -> str:
    p = Path(name)
    if p.is_absolute() or not (base / p).exists():
        return name
    return str(base / p)


def load_sim_config(path: str | Path | None) -> SimConfig:
    """The ``[sim]`` section; relative replay / exchange_info paths are taken from the config
    file's directory when they exist there, else from the working directory."""
    cfg = load_section(path, "sim", SimConfig)
    if path is None:
        return cfg
    base = Path(path).resolve().parent
    latency = cfg.latency
    if latency.file:
        latency = msgspec.structs.replace(latency, file=_resolve(base, latency.file))
    return msgspec.structs.replace(
        cfg, replay=[_resolve(base, r) for r in cfg.replay], exchange_info=_resolve(base, cfg.exchange_info),
        latency=latency,
    )
