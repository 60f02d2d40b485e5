"""Crisis mode's four triggers, watched from what risk already reads (no I/O).

* **volatility**: the standard deviation of one-second log returns of a symbol's mid over the
  last ``crisis_volatility_window_s``, in bps, above ``crisis_max_volatility_bps`` (at least
  ``MIN_RETURNS`` returns first);
* **spread**: a symbol's best bid/ask spread, in bps of the mid, above ``crisis_max_spread_bps``
  for ``crisis_spread_for_s`` without a break;
* **feed**: a symbol risk holds a position in had no good book (none at all, or only resyncing
  ones) for ``crisis_max_feed_age_s``;
* **drawdown velocity**: equity fell more than ``crisis_max_drawdown_velocity`` (quote) below its
  highest point within the last ``crisis_drawdown_window_s``.

``check`` returns the triggers that *became* true since the last call (edge-triggered): the
engine holds REDUCING on each and an operator clears it, and a condition that is still there
when the operator clears it does not fire again until it has gone away once — otherwise a
60-second volatility window would put risk back into crisis for a minute after every release.
Thresholds of 0 switch a trigger off.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

VOLATILITY = 1
SPREAD = 2
FEED = 4
DRAWDOWN_VELOCITY = 8
NAMES = {VOLATILITY: "volatility", SPREAD: "spread", FEED: "feed_stale", DRAWDOWN_VELOCITY: "drawdown_velocity"}
MIN_RETURNS = 5
SAMPLE_NS = 1_000_000_000  # one price sample per symbol per second, one equity sample per second


def names(mask: int) -> str:
    return ",".join(n for bit, n in NAMES.items() if mask & bit) or "-"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``[risk] crisis_*`` in the units the watch uses (0 = that trigger is off)."""

    max_volatility_bps: float = 0.0
    volatility_window_s: float = 60.0
    max_spread_bps: float = 0.0
    spread_for_s: float = 2.0
    max_feed_age_s: float = 0.0
    max_drawdown_velocity: float = 0.0  # quote
    drawdown_window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Firing:
    trigger: int
    symbol_id: int  # -1 for the account (drawdown velocity)
    value: float  # the measured figure (bps, seconds, quote)
    text: str


class CrisisWatch:
    """Per symbol mid samples, spread episodes, book times; equity samples; the active set."""

    def __init__(self, n_symbols: int, thresholds: Thresholds, now_ns: int) -> None:
        self.n = n_symbols
        self.t = thresholds
        self.samples: list[deque[tuple[int, float]]] = [deque() for _ in range(n_symbols)]  # (ns, mid)
        self.mid = [0.0] * n_symbols
        self.spread_bps = [0.0] * n_symbols
        self.wide_since = [0] * n_symbols  # ns the spread went over the threshold (0: it is not)
        self.last_book_ns = [now_ns] * n_symbols  # a missing book counts from the start
        self.equity: deque[tuple[int, float]] = deque()
        self.active = 0  # triggers true at the last check (bitmask)
        self.volatility_bps = [0.0] * n_symbols  # the last figures, for risk.state and the log
        self.drawdown_velocity = 0.0

    def reconfigure(self, thresholds: Thresholds) -> None:
        self.t = thresholds

    # -- inputs ---------------------------------------------------------------------------------
    def on_book(self, sid: int, bid: int, ask: int, now_ns: int) -> None:
        """A good (not resyncing) book's best bid and ask in ticks (0 for an empty side)."""
        self.last_book_ns[sid] = now_ns
        if bid <= 0 or ask <= 0:
            return
        mid = (bid + ask) / 2.0
        self.mid[sid] = mid
        self.spread_bps[sid] = (ask - bid) / mid * 1e4
        s = self.samples[sid]
        if not s or now_ns - s[-1][0] >= SAMPLE_NS:
            s.append((now_ns, mid))

    def on_equity(self, equity: float, now_ns: int) -> None:
        e = self.equity
        if not e or now_ns - e[-1][0] >= SAMPLE_NS:
            e.append((now_ns, equity))

    # -- measures -------------------------------------------------------------------------------
    def volatility(self, sid: int, now_ns: int) -> float:
        """Stdev of the one-second log returns in the window, bps (0 with too few)."""
        s = self.samples[sid]
        horizon = now_ns - int(self.t.volatility_window_s * 1e9)
        while s and s[0][0] < horizon:
            s.popleft()
        if len(s) < MIN_RETURNS + 1:
            return 0.0
        prices = [p for _, p in s]
        rets = [math.log(b / a) for a, b in zip(prices, prices[1:], strict=False)]
        mean = sum(rets) / len(rets)
        var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
        return math.sqrt(var) * 1e4

    def velocity(self, now_ns: int, equity: float) -> float:
        """Quote lost from the highest equity of the window to now (>= 0)."""
        e = self.equity
        horizon = now_ns - int(self.t.drawdown_window_s * 1e9)
        while e and e[0][0] < horizon:
            e.popleft()
        peak = max((v for _, v in e), default=equity)
        return max(0.0, peak - equity)

    # -- the check ------------------------------------------------------------------------------
    def check(self, now_ns: int, positions: list[int], equity: float, symbols: list[str]) -> list[Firing]:
        """Triggers that became true since the last check (``positions``: signed lots per symbol)."""
        t = self.t
        now_active = 0
        found: list[Firing] = []
        for sid in range(self.n):
            sym = symbols[sid]
            if t.max_volatility_bps > 0:
                v = self.volatility_bps[sid] = self.volatility(sid, now_ns)
                if v > t.max_volatility_bps:
                    now_active |= VOLATILITY
                    found.append(Firing(VOLATILITY, sid, v, f"{sym} volatility {v:.1f} bps (1 s returns over "
                                        f"{t.volatility_window_s:g} s) > {t.max_volatility_bps:g} bps"))
            if t.max_spread_bps > 0:
                wide = self.spread_bps[sid] > t.max_spread_bps and now_ns - self.last_book_ns[sid] < SAMPLE_NS * 5
                if not wide:
                    self.wide_since[sid] = 0
                elif not self.wide_since[sid]:
                    self.wide_since[sid] = now_ns
                if wide and now_ns - self.wide_since[sid] >= t.spread_for_s * 1e9:
                    now_active |= SPREAD
                    sp = self.spread_bps[sid]
                    found.append(Firing(SPREAD, sid, sp, f"{sym} spread {sp:.1f} bps > {t.max_spread_bps:g} bps "
                                        f"for {t.spread_for_s:g} s"))
            if t.max_feed_age_s > 0 and positions[sid]:
                age = (now_ns - self.last_book_ns[sid]) / 1e9
                if age > t.max_feed_age_s:
                    now_active |= FEED
                    found.append(Firing(FEED, sid, age, f"{sym} no good book for {age:.1f} s "
                                        f"(> {t.max_feed_age_s:g} s) with a position open"))
        self.on_equity(equity, now_ns)
        if t.max_drawdown_velocity > 0:
            dv = self.drawdown_velocity = self.velocity(now_ns, equity)
            if dv > t.max_drawdown_velocity:
                now_active |= DRAWDOWN_VELOCITY
                found.append(Firing(DRAWDOWN_VELOCITY, -1, dv, f"equity fell {dv:.2f} within "
                                    f"{t.drawdown_window_s:g} s (> {t.max_drawdown_velocity:g})"))
        rising = now_active & ~self.active
        self.active = now_active
        out: list[Firing] = []
        for f in found:  # the first firing of each trigger that rose
            if rising & f.trigger:
                out.append(f)
                rising &= ~f.trigger
        return out
