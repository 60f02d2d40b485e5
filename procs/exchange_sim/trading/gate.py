"""What every trading request passes first: API key, signature, timing, rate limits, faults.

Rate limits use fixed windows on the simulated clock (1 minute for request weight, 10 s and
1 minute for orders), like Binance's interval windows. Request weight is counted for the whole
server (Binance counts per IP; a simulator has one client host); order counts per account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from procs.exchange_sim.trading.accounts import Account
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.signing import ApiError
from procs.exchange_sim.wallclock import wall_ms

FAULTS = ("slow_ack", "drop_ack", "rate_limit", "error_unknown", "unavailable", "disconnect_on_order")


def authenticate(
    accounts: dict[str, Account], cfg: TradingConfig, now_ms: int, api_key: str | None,
    params: dict[str, Any], verify: Callable[[str], bool] | None,
) -> Account:
    """The account of a request; raises ApiError. ``verify=None`` = API key only (USER_STREAM)."""
    if not api_key:
        raise ApiError(-2014, "API-key format invalid.", 401)
    acct = accounts.get(api_key)
    if acct is None:
        raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    if verify is None:
        return acct
    ts_raw = params.get("timestamp")
    try:
        ts = int(ts_raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
                       ) from None
    if not params.get("signature"):
        raise ApiError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    try:
        window = int(params.get("recvWindow", 5000))
    except (TypeError, ValueError):
        raise ApiError(-1102, "Mandatory parameter 'recvWindow' was not sent, was empty/null, or malformed."
                       ) from None
    if window > 60000:
        raise ApiError(-1131, "recvWindow must be less than 60000")
    if cfg.timestamp_clock != "off":
        server = now_ms if cfg.timestamp_clock == "market" else wall_ms()
        if ts >= server + 1000:
            raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server - ts > window:
            raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
    if not verify(acct.secret):
        raise ApiError(-1022, "Signature for this request is not valid.")
    return acct


class RateLimiter:
    """Fixed-window request-weight and order counters."""

    def __init__(self, cfg: TradingConfig) -> None:
        self.cfg = cfg
        self.weight_window = -1
        self.weight_used = 0
        self.orders: dict[str, list[int]] = {}  # account -> [win10, n10, win60, n60]

    def add_weight(self, now_ms: int, weight: int) -> int:
        """Count a request's weight; returns the minute's total (over the limit = 429)."""
        win = now_ms // 60_000
        if win != self.weight_window:
            self.weight_window, self.weight_used = win, 0
        self.weight_used += weight
        return self.weight_used

    def used_weight(self, now_ms: int) -> int:
        return self.weight_used if now_ms // 60_000 == self.weight_window else 0

    def order_counts(self, account: str, now_ms: int) -> tuple[int, int]:
        st = self.orders.get(account)
        if st is None:
            return 0, 0
        n10 = st[1] if st[0] == now_ms // 10_000 else 0
        n60 = st[3] if st[2] == now_ms // 60_000 else 0
        return n10, n60

    def add_order(self, account: str, now_ms: int, n10_cost: int = 1, n60_cost: int = 1) -> tuple[int, int]:
        """Count one order request (a batch counts more on the 10 s counter); raises
        ApiError(-1015, 429) when a window is already full."""
        n10, n60 = self.order_counts(account, now_ms)
        if n10 >= self.cfg.order_limit_10s:
            raise ApiError(-1015, f"Too many new orders; current limit is {self.cfg.order_limit_10s} orders "
                                  "per TEN_SECONDS.", 429)
        if n60 >= self.cfg.order_limit_1m:
            raise ApiError(-1015, f"Too many new orders; current limit is {self.cfg.order_limit_1m} orders "
                                  "per MINUTE.", 429)
        self.orders[account] = [now_ms // 10_000, n10 + n10_cost, now_ms // 60_000, n60 + n60_cost]
        return n10 + n10_cost, n60 + n60_cost

    def rate_limits(self, account: str, now_ms: int) -> list[dict[str, Any]]:
        """The WebSocket API ``rateLimits`` array."""
        n10, n60 = self.order_counts(account, now_ms)
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.cfg.weight_limit_1m, "count": self.used_weight(now_ms)},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": self.cfg.order_limit_10s, "count": n10},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.cfg.order_limit_1m, "count": n60},
        ]


def too_many_requests(cfg: TradingConfig) -> ApiError:
    return ApiError(-1003, f"Too many requests; current limit of IP is {cfg.weight_limit_1m} requests per "
                           "minute. Please use the websocket for live updates to avoid polling the API.", 429)


class Faults:
    """Injected faults for order requests (place and cancel), armed by ``POST /sim/trade_fault``.

    ``{"fault": name, "count": n, "ms": t, "scope": "rest"|"ws"|"all"}``; count -1 = until
    cleared; ``{"fault": "clear"}`` disarms all. Names:
    slow_ack (answer after ms), drop_ack (act, never answer; REST answers 408 -1007 after ms),
    rate_limit (429 -1003, not acted on), error_unknown (act, then 503 "Unknown error"),
    unavailable (503 "Service Unavailable.", not acted on), disconnect_on_order (WS: act, then
    close the connection without an answer). ``disconnect`` closes every WS API connection now.
    """

    def __init__(self) -> None:
        self.armed: dict[str, dict[str, Any]] = {}
        self.fired: dict[str, int] = {}

    def arm(self, spec: dict[str, Any]) -> None:
        name = spec.get("fault")
        if name == "clear":
            self.armed.clear()
            return
        if name not in FAULTS:
            raise ApiError(-1102, f"unknown fault {name!r}; known: {', '.join(FAULTS + ('disconnect', 'clear'))}")
        scope = spec.get("scope", "all")
        if scope not in ("rest", "ws", "all"):
            raise ApiError(-1102, f"unknown scope {scope!r}")
        self.armed[name] = {"count": int(spec.get("count", 1)), "ms": int(spec.get("ms", 0)), "scope": scope}

    def take(self, scope: str) -> dict[str, int]:
        """The faults that hit this order request (name -> ms), counting them down."""
        hit: dict[str, int] = {}
        for name, f in list(self.armed.items()):
            if f["scope"] not in ("all", scope):
                continue
            hit[name] = f["ms"]
            self.fired[name] = self.fired.get(name, 0) + 1
            if f["count"] > 0:
                f["count"] -= 1
                if f["count"] == 0:
                    del self.armed[name]
        return hit
