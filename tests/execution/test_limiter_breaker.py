"""Token-bucket limiter (with exchange usage corrections, 429 pause) and the circuit breaker."""

from __future__ import annotations

from procs.execution import breaker as B
from procs.execution.limiter import RateLimiter
from procs.venue.binance.exchange_info import rate_limits
from procs.venue.binance.usage import from_headers, from_rate_limits

LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
          {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10},
          {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}]
T0 = 1_000_000_000_000  # a 10 s / 1 min window start


def test_limiter_when_bucket_empty_then_waits_for_refill() -> None:
    rl = RateLimiter(rate_limits(LIMITS), safety=1.0)
    for _ in range(10):
        assert rl.wait_ms(T0, 0, 1) == 0
        rl.spend(T0, 0, 1)
    assert rl.wait_ms(T0, 0, 1) > 0
    assert rl.wait_ms(T0, 1, 0) == 0  # weight is a separate bucket


def test_limiter_when_exchange_reports_usage_then_window_is_respected() -> None:
    rl = RateLimiter(rate_limits(LIMITS), safety=1.0)
    rl.observe(T0 + 100, from_rate_limits([{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                                            "limit": 10, "count": 10}]))
    w = rl.wait_ms(T0 + 100, 0, 1)
    assert 9000 <= w <= 9900  # until the exchange's 10 s window ends
    assert rl.wait_ms(T0 + 10_000, 0, 1) == 0
    rl2 = RateLimiter(rate_limits(LIMITS), safety=1.0)
    rl2.observe(T0, from_headers({"X-MBX-ORDER-COUNT-10S": "10", "X-MBX-USED-WEIGHT-1M": "5"}))
    assert rl2.wait_ms(T0, 0, 1) > 0


def test_limiter_usage_when_windows_fill_then_reports_the_fullest_until_it_rolls_over() -> None:
    rl = RateLimiter(rate_limits(LIMITS), safety=0.9)
    assert rl.usage(T0) == 0.0
    for _ in range(8):
        rl.spend(T0, 1, 1)
    assert rl.usage(T0 + 5) == 0.8  # 8 of the 10-second window's 10 orders (the exchange's limit, not ours)
    rl.observe(T0 + 5, from_headers({"X-MBX-USED-WEIGHT-1M": "2160"}))
    assert rl.usage(T0 + 5) == 0.9  # the weight window is fuller now
    assert rl.usage(T0 + 60_000) == 0.0  # every window has rolled over since
    assert RateLimiter([]).usage(T0) == 0.0


def test_limiter_when_429_then_pauses_with_growing_backoff_or_retry_after() -> None:
    rl = RateLimiter(rate_limits(LIMITS), backoff_s=0.5, backoff_max_s=2.0)
    assert rl.on_429(T0) == 0.5
    assert rl.wait_ms(T0, 1, 0) == 500
    assert rl.on_429(T0) == 1.0 and rl.on_429(T0) == 2.0 and rl.on_429(T0) == 2.0
    rl.on_success()
    assert rl.on_429(T0 + 10_000) == 0.5
    assert rl.on_429(T0 + 20_000, retry_after_s=3.0) == 3.0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_when_failures_reach_threshold_then_opens_probes_and_closes() -> None:
    clock = Clock()
    seen: list[tuple[int, int]] = []
    b = B.Breaker(3, 1.0, lambda old, new, n: seen.append((old, new)), clock)
    for _ in range(2):
        b.failure()
    assert b.state == B.CLOSED and b.allow_new()
    b.success()
    for _ in range(3):
        b.failure()
    assert b.state == B.OPEN and not b.allow_new()
    clock.t = 1.0
    assert b.allow_new() and b.state == B.HALF_OPEN  # the probe
    assert not b.allow_new()  # only one
    b.failure()
    assert b.state == B.OPEN and not b.allow_new()
    clock.t = 2.5
    assert b.allow_new()
    b.success()
    assert b.state == B.CLOSED and b.allow_new()
    assert seen == [(B.CLOSED, B.OPEN), (B.OPEN, B.HALF_OPEN), (B.HALF_OPEN, B.OPEN), (B.OPEN, B.HALF_OPEN),
                    (B.HALF_OPEN, B.CLOSED)]
    assert b.opens == 2
