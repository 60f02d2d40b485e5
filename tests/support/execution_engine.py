"""Execution's engine in one process over the real Binance gateway with a recording transport:
the counters, exec-ring and wire stand-ins, ``make`` (an engine over a fresh journal),
``submit`` (one intent) and ``run``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procs.core import messages as M
from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO
from procs.execution import recovery
from procs.execution.config import ExecutionConfig
from procs.execution.engine import Engine, EventSink
from procs.execution.journal import Journal, read_journal
from procs.execution.limiter import RateLimiter
from procs.execution.pretrade import RiskLimits
from procs.venue.binance.config import BinanceUsdmConfig
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from procs.venue.binance.exchange_info import rate_limits
from procs.venue.binance.gateway import OrderGateway
from procs.venue.binance.rest import WireReply
from procs.venue.binance.signing import Signer
from procs.venue.messages import REPLY_OK

INFO = json.loads(Path(DEFAULT_EXCHANGE_INFO).read_text())
INSTR = load_exchange_info(INFO)


class Counts(dict):
    def inc(self, k: int, n: int = 1) -> None:
        self[k.name.lower()] = self.get(k.name.lower(), 0) + n

    def set(self, k: int, v: int) -> None:
        self[k.name.lower()] = v

    def record(self, k: int, ns: int) -> None:
        pass


class Producer:
    def __init__(self, full_for: int = 0) -> None:
        self.out: list[tuple] = []
        self.full_for = full_for

    def try_publish(self, *vals: Any) -> bool:
        if self.full_for > 0:
            self.full_for -= 1
            return False
        self.out.append(vals)
        return True


class Wire:
    """The gateway's REST transport, recording requests; the test answers them by hand (a
    ``WireReply``, as the exchange's answer comes off the wire)."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, Callable[[WireReply], None]]] = []
        self.calls: list[tuple[str, str, dict]] = []
        self.call_replies: dict[str, WireReply] = {}

    def send(self, method: str, params: dict, cb: Callable[[WireReply], None]) -> int:
        self.sent.append((method, params, cb))
        return 1

    async def call(self, method: str, path: str, params: dict | None = None, signed: bool = True) -> WireReply:
        self.calls.append((method, path, params or {}))
        return self.call_replies.get(path, WireReply(REPLY_OK, 200, []))


def make(tmp: Path, journal: str = "j") -> tuple[Engine, Producer, Wire, Counts]:
    prod, wire, c = Producer(), Wire(), Counts()
    gateway = OrderGateway(BinanceUsdmConfig(), Signer("k", "s"), prefer_ws=False, rest=wire)  # type: ignore[arg-type]
    eng = Engine(ExecutionConfig(transport="rest", dead_man_s=0), [INSTR["BTCUSDT"], INSTR["ETHUSDT"]],
                 Journal(tmp / journal, "never"), EventSink(prod, lambda: c.inc(type("K", (), {"name": "WAITS"}))),
                 c, RiskLimits.permissive, gateway, RateLimiter(rate_limits(INFO["rateLimits"])))
    recovery.rebuild(eng, read_journal(tmp / journal)[0])
    recovery.start_epoch(eng)
    eng.ready = True
    return eng, prod, wire, c


def submit(eng: Engine, seq: int, tag: int, qty: int = 2, ring: int = 0) -> None:
    eng.on_intent(ring, seq, (seq, M.SUBMIT_ORDER, M.SOURCE_STRATEGY, 1, 0, M.BUY, M.LIMIT, M.GTC, 5_000_000, qty,
                              0, tag, 0, 0, 0, 0, 0, 0), 0)


def run(coro_fn: Callable[[], None]) -> None:
    async def main() -> None:
        coro_fn()
    asyncio.run(main())
