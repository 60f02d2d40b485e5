"""The dead-man switch: the venue cancels a symbol's orders if execution stops refreshing it.

While a symbol has open orders, its countdown (``[execution] dead_man_s``) is armed before the
first order is written and refreshed every ``dead_man_refresh_s``; a symbol that has had none
for a whole ``dead_man_refresh_s`` is disarmed (a countdown of 0), so an idle symbol costs no
request weight and a quoting symbol costs one request per refresh however often its orders all
close (a market maker's cancel-and-replace would otherwise arm and disarm on every quote: 313
requests of weight 10 in 100 s in a chaos run, enough with a 2 s open-orders poll to spend the
venue's 2400-a-minute IP weight and get 429s). A refresh the venue
does not take is retried at the next tick and counted. If execution dies and does not come back
within the countdown, the venue cancels what it left working; a clean stop cancels everything
first and then disarms (``ExecutionAgent.on_close``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from procs.core import log
from procs.venue.messages import REPLY_OK, Reply
from procs.venue.protocols import OrderGateway

from .counters import Counter


class DeadMan:
    """Arms, refreshes and disarms the venue's countdown per symbol."""

    def __init__(self, gateway: OrderGateway, countdown_s: float, refresh_s: float, counters: object,
                 spend: Callable[[int, int], bool]) -> None:
        self.gateway = gateway
        self.countdown_ms = int(countdown_s * 1000)
        self.refresh_ns = int(refresh_s * 1e9)
        self.c = counters
        self.spend = spend  # (weight, orders) -> False when the limiter has no room now
        self.armed: dict[str, int] = {}  # symbol -> monotonic ns its countdown was last (re)armed
        self.inflight: set[str] = set()
        self.busy_at: dict[str, int] = {}  # symbol -> monotonic ns of the last tick it had open orders

    @property
    def enabled(self) -> bool:
        return self.countdown_ms > 0

    def ensure(self, symbol: str, now_ns: int | None = None) -> None:
        """An order of ``symbol`` is about to be written: arm its countdown if it is not."""
        if self.enabled and symbol not in self.armed and symbol not in self.inflight:
            self._send(symbol, self.countdown_ms, time.monotonic_ns() if now_ns is None else now_ns)

    def tick(self, open_symbols: set[str], now_ns: int | None = None) -> None:
        """Refresh the countdown of every symbol with open orders that is due; disarm the rest."""
        if not self.enabled:
            return
        now = time.monotonic_ns() if now_ns is None else now_ns
        for symbol in open_symbols:
            self.busy_at[symbol] = now
            if symbol in self.inflight:
                continue
            at = self.armed.get(symbol)
            if at is None or now - at >= self.refresh_ns:
                self._send(symbol, self.countdown_ms, now)
        for symbol in [s for s in self.armed if s not in open_symbols and s not in self.inflight
                       and now - self.busy_at.get(s, 0) >= self.refresh_ns]:
            self._send(symbol, 0, now)

    def disarm_all(self) -> list[str]:
        """Disarm every armed symbol (a clean stop, after its cancel-all); the symbols asked."""
        symbols = [s for s in self.armed if s not in self.inflight]
        now = time.monotonic_ns()
        for s in symbols:
            self._send(s, 0, now)
        return symbols

    @property
    def busy(self) -> bool:
        return bool(self.inflight)

    def _send(self, symbol: str, countdown_ms: int, sent: int) -> None:
        """Ask the venue; ``sent`` (monotonic ns, now) is when its countdown starts, not at its answer."""
        if not self.spend(*self.gateway.dead_man_cost):
            return  # no room in the venue's limits now: the next tick tries again
        self.inflight.add(symbol)
        t = self.gateway.arm_dead_man(symbol, countdown_ms, lambda r: self._answer(symbol, countdown_ms, sent, r))
        if not t:
            self.inflight.discard(symbol)
            return
        self.c.inc(Counter.DEAD_MAN_ARMS)  # type: ignore[attr-defined]

    def _answer(self, symbol: str, countdown_ms: int, sent: int, r: Reply) -> None:
        self.inflight.discard(symbol)
        if r.outcome != REPLY_OK:
            self.c.inc(Counter.DEAD_MAN_FAILURES)  # type: ignore[attr-defined]
            log.once(f"dead_man_failed:{symbol}:{r.venue_code}", "warn", "dead_man_failed", symbol=symbol,
                     countdown_ms=countdown_ms, outcome=r.outcome, venue_code=r.venue_code, msg=r.msg,
                     action="tried again at the next tick")
            return
        if countdown_ms:
            if symbol not in self.armed:
                log.info("dead_man_armed", symbol=symbol, countdown_ms=countdown_ms)
            self.armed[symbol] = sent
        else:
            self.armed.pop(symbol, None)
            log.info("dead_man_disarmed", symbol=symbol)
        self.c.set(Counter.DEAD_MAN_SYMBOLS, len(self.armed))  # type: ignore[attr-defined]
