"""Fault injection: what is armed, what was injected, and the questions the streams ask.

Diff faults (``drop_diff``, ``duplicate_diff``, ``reorder_diff``, ``seq_gap``) are armed per
symbol ("" = any symbol) and consumed one depth event at a time by whichever depth stream of
that symbol sends next. ``seq_gap`` delivers the event with a wrong ``pu`` (a sequence break
without data loss), ``drop_diff`` loses the data too. REST faults (``rest_429``, ``rest_5xx``,
``slow_snapshot``) are consumed per request. ``disconnect``, ``stall`` and
``malformed_frame`` act on the market-stream sessions at once through hooks the server
installs. Market faults move the generated market itself: ``price_jump`` shifts the fair price
and the whole book by ``bps`` in one depth event (volatility, a drawdown on a position),
``wide_spread`` keeps the touch ``bps`` apart for ``seconds`` (a spread blow-out). A stall keeps connections open and sends nothing for ``seconds``; the frames it
withholds are lost (as when the exchange's feed hiccups), so a client sees a ``pu`` break when
data resumes and must resync.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from procs.core import log
from procs.exchange_sim.config import FaultSpec

DIFF_FAULTS = ("drop_diff", "duplicate_diff", "reorder_diff", "seq_gap")
MARKET_FAULTS = ("price_jump", "wide_spread")  # the generated market itself moves (not the replay)
FAULT_NAMES = DIFF_FAULTS + MARKET_FAULTS + (
    "disconnect", "stall", "slow_snapshot", "malformed_frame", "rest_429", "rest_5xx",
)


class Faults:
    """Armed faults and counters of every fault actually injected."""

    def __init__(self) -> None:
        # (fault, symbol) -> remaining count; symbol "" matches any symbol
        self.armed: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()
        self.stall_until: dict[str, float] = {}  # symbol ("" = all) -> monotonic deadline
        self.snapshot_delay_s = 0.0
        self.rest_5xx_status = 503
        self.stalled_frames = 0
        # set by the server: (symbol) -> number of sessions affected
        self.on_disconnect: Callable[[str], int] = lambda symbol: 0
        self.on_malformed: Callable[[str, int], int] = lambda symbol, count: 0
        # (symbol, bps, seconds) -> number of symbols moved (0: the source cannot, a replay)
        self.on_market: Callable[[str, str, float, float], int] = lambda fault, symbol, bps, seconds: 0

    def arm(self, spec: FaultSpec) -> dict:
        """Arm or perform one fault; returns a small JSON-able acknowledgement."""
        f, sym = spec.fault, spec.symbol.upper()
        log.info("fault_armed", fault=f, symbol=sym, count=spec.count, seconds=spec.seconds)
        if f in DIFF_FAULTS or f in ("rest_429", "rest_5xx"):
            if f == "rest_5xx":
                self.rest_5xx_status = spec.status
                sym = ""  # REST faults hit the next requests whatever their symbol
            self.armed[(f, "" if f == "rest_429" else sym)] += spec.count
        elif f == "slow_snapshot":
            self.armed[(f, sym)] += spec.count
            self.snapshot_delay_s = spec.seconds
        elif f == "stall":
            self.stall_until[sym] = time.monotonic() + spec.seconds
            self.injected["stall"] += 1
        elif f == "disconnect":
            n = self.on_disconnect(sym)
            self.injected["disconnect"] += 1
            return {"fault": f, "sessions": n}
        elif f in MARKET_FAULTS:
            n = self.on_market(f, sym, spec.bps, spec.seconds)
            if n:
                self.injected[f] += 1
            return {"fault": f, "symbols": n}
        elif f == "malformed_frame":
            n = self.on_malformed(sym, spec.count)
            self.injected["malformed_frame"] += spec.count
            return {"fault": f, "sessions": n}
        return {"fault": f, "armed": True}

    def _take(self, fault: str, symbol: str) -> bool:
        for key in ((fault, symbol), (fault, "")):
            if self.armed.get(key, 0) > 0:
                self.armed[key] -= 1
                if self.armed[key] == 0:
                    del self.armed[key]
                self.injected[fault] += 1
                return True
        return False

    def take_diff_fault(self, symbol: str) -> str | None:
        """The diff fault to apply to this symbol's next depth event, consuming it (hot path:
        a single dict truthiness check when nothing is armed)."""
        if not self.armed:
            return None
        for f in DIFF_FAULTS:
            if self._take(f, symbol):
                return f
        return None

    def stalled(self, symbol: str) -> bool:
        if not self.stall_until:
            return False
        now = time.monotonic()
        for key in (symbol, ""):
            until = self.stall_until.get(key)
            if until is not None:
                if now < until:
                    self.stalled_frames += 1
                    return True
                del self.stall_until[key]
        return False

    def take_rest_fault(self) -> str | None:
        if not self.armed:
            return None
        for f in ("rest_429", "rest_5xx"):
            if self._take(f, ""):
                return f
        return None

    def take_snapshot_delay(self, symbol: str) -> float:
        if self.armed and self._take("slow_snapshot", symbol):
            return self.snapshot_delay_s
        return 0.0

    def stats(self) -> dict:
        return {
            "injected": dict(self.injected),
            "armed": {f"{f}:{s or '*'}": n for (f, s), n in self.armed.items()},
            "stalled_frames": self.stalled_frames,
        }
