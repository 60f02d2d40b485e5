"""Client-side rate limiting: token buckets from the venue's request limits, corrected by what
the exchange reports it counted, plus the 429 back-off.

Each limit (request weight per minute, orders per 10 s / per minute) is a token bucket of
``limit * safety`` tokens refilled at ``limit * safety / interval``. The exchange counts in fixed
windows aligned to the epoch, so a full bucket at a window start could still overrun a window
that is already partly used: every answer's usage (``Reply.usage``: what the venue says it
counted) sets the window's known count, and a request is allowed only when both the bucket and
the window have room. A 429 pauses everything (cancels wait too: the exchange said stop) for
``Retry-After`` or an exponential back-off.
"""

from __future__ import annotations

from dataclasses import dataclass

from procs.venue.messages import RateLimit, RateUsage


@dataclass(slots=True)
class Bucket:
    kind: str  # "weight" | "orders" (RateLimit.kind)
    interval_ms: int
    limit: int
    capacity: float
    tokens: float
    rate_per_ms: float
    last_ms: int = 0
    window: int = -1
    window_used: int = 0

    def _refill(self, now_ms: int) -> None:
        if now_ms > self.last_ms:
            self.tokens = min(self.capacity, self.tokens + (now_ms - self.last_ms) * self.rate_per_ms)
            self.last_ms = now_ms
        w = now_ms // self.interval_ms
        if w != self.window:
            self.window, self.window_used = w, 0

    def wait_ms(self, now_ms: int, n: int) -> float:
        """0 when ``n`` units may be spent now, else how long to wait."""
        if n <= 0:
            return 0.0
        self._refill(now_ms)
        if self.window_used + n > self.capacity:
            return float((self.window + 1) * self.interval_ms - now_ms)
        if self.tokens < n:
            return (n - self.tokens) / self.rate_per_ms
        return 0.0

    def spend(self, now_ms: int, n: int) -> None:
        if n <= 0:
            return
        self._refill(now_ms)
        self.tokens -= n
        self.window_used += n

    def observe(self, now_ms: int, used: int) -> None:
        """The exchange says ``used`` units were counted in the current window."""
        self._refill(now_ms)
        if used > self.window_used:
            self.window_used = used


class RateLimiter:
    """All buckets of one account plus the 429 pause."""

    def __init__(self, rate_limits: list[RateLimit], safety: float = 0.9, backoff_s: float = 1.0,
                 backoff_max_s: float = 30.0) -> None:
        self.buckets: list[Bucket] = []
        for rl in rate_limits:
            if rl.kind not in ("weight", "orders") or rl.interval_ms <= 0 or rl.limit <= 0:
                continue
            cap = max(1.0, rl.limit * safety)
            self.buckets.append(Bucket(rl.kind, rl.interval_ms, rl.limit, cap, cap, cap / rl.interval_ms))
        # per kind, so a request asks only the buckets it spends from (a place: ORDERS; a cancel
        # or query: REQUEST_WEIGHT): one call per bucket that counts, on the per-request path
        self._orders = [b for b in self.buckets if b.kind == "orders"]
        self._weight = [b for b in self.buckets if b.kind != "orders"]
        self.paused_until_ms = 0
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._next_backoff_s = backoff_s
        self.throttled = 0  # times a request had to wait for the buckets

    def _find(self, kind: str, interval_ms: int) -> Bucket | None:
        for b in self.buckets:
            if b.kind == kind and b.interval_ms == interval_ms:
                return b
        return None

    def wait_ms(self, now_ms: int, weight: int, orders: int) -> float:
        """0 when a request of this weight and order count may go now, else ms to wait."""
        if now_ms < self.paused_until_ms:
            return float(self.paused_until_ms - now_ms)
        worst = 0.0
        if orders > 0:
            for b in self._orders:
                w = b.wait_ms(now_ms, orders)
                if w > worst:
                    worst = w
        if weight > 0:
            for b in self._weight:
                w = b.wait_ms(now_ms, weight)
                if w > worst:
                    worst = w
        return worst

    def usage(self, now_ms: int) -> float:
        """The fullest window's known use as a fraction of the exchange's limit (0 with no buckets)."""
        worst = 0.0
        for b in self.buckets:
            if now_ms // b.interval_ms == b.window:  # a window that has not rolled over since it was counted
                worst = max(worst, b.window_used / b.limit)
        return worst

    def spend(self, now_ms: int, weight: int, orders: int) -> None:
        if orders > 0:
            for b in self._orders:
                b.spend(now_ms, orders)
        if weight > 0:
            for b in self._weight:
                b.spend(now_ms, weight)

    def observe(self, now_ms: int, usage: list[RateUsage]) -> None:
        """What the venue says it counted in the current windows (a reply's ``usage``)."""
        for u in usage:
            b = self._find(u.kind, u.interval_ms)
            if b is not None:
                b.observe(now_ms, u.used)

    def on_429(self, now_ms: int, retry_after_s: float | None = None) -> float:
        """Pause every request; returns the pause in seconds (Retry-After when the exchange
        gave one, else an exponential back-off that resets on the next success)."""
        if retry_after_s is not None and retry_after_s > 0:
            pause = retry_after_s
        else:
            pause = self._next_backoff_s
            self._next_backoff_s = min(self.backoff_max_s, self._next_backoff_s * 2)
        self.paused_until_ms = max(self.paused_until_ms, now_ms + int(pause * 1000))
        return pause

    def on_success(self) -> None:
        self._next_backoff_s = self.backoff_s
