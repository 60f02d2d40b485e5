"""Config of the simulator's trading side: accounts, fees, limits, order log, fill model.

Default test account (documented in the README; it exists only in the simulator):
``procs.venue.binance.signing.TEST_ACCOUNT``, balance 100000 USDT, leverage 20.

TOML section ``[sim_trading]``::

    [sim_trading]
    maker_fee_bps = "2"
    taker_fee_bps = "5"
    order_log = "/tmp/b25-sim-orders.jsonl"
    keep_closed_orders = 2000   # closed orders (and algo orders) still queryable (older: -2013); open ones always are
    keep_trades = 1000          # userTrades rows per account and symbol
    keep_income = 1000          # income rows per account
    [[sim_trading.accounts]]
    name = "alice"
    api_key = "K"
    api_secret = "S"
    balances = { USDT = "5000" }
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec

from procs.core.config import Section
from procs.venue.binance.signing import TEST_ACCOUNT

DEFAULT_API_KEY, DEFAULT_API_SECRET = TEST_ACCOUNT


class AccountConfig(Section):
    """One simulated account (one API key pair, one cross-margin wallet)."""

    name: str = "default"
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    balances: dict[str, str] = msgspec.field(default_factory=lambda: {"USDT": "100000"})
    leverage: int = 20

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ValueError(f"api_key and api_secret must not be empty: account={self.name}")
        if not 1 <= self.leverage <= 125:
            raise ValueError(f"leverage must be 1..125: account={self.name} leverage={self.leverage}")
        for asset, amount in self.balances.items():
            _decimal(amount, f"balances.{asset}")


class TradingConfig(Section):
    """The trading side of exchange_sim (matching, order API, user-data streams)."""

    accounts: list[AccountConfig] = msgspec.field(default_factory=lambda: [AccountConfig()])
    # Binance USD-M VIP0 is 0.02% maker / 0.05% taker; decimal text so fees stay exact.
    maker_fee_bps: str = "2"
    taker_fee_bps: str = "5"
    # Rate limits as in exchangeInfo.rateLimits; weight is counted for the whole server
    # (Binance counts it per IP, and a simulator has one client host).
    weight_limit_1m: int = 2400
    order_limit_10s: int = 300
    order_limit_1m: int = 1200
    # Clock of the timestamp/recvWindow rule: "wall" = time.time() (default: the rule is about
    # the client's clock and network delay, and a replay's market clock is not the client's);
    # "market" = market.now_ms() (deterministic tests, clients that follow /fapi/v1/time);
    # "off" = no timing check.
    timestamp_clock: Literal["market", "wall", "off"] = "wall"
    listen_key_ttl_ms: int = 3_600_000  # a key unkept this long gets listenKeyExpired (shorten it for tests)
    # Listen keys expire on the wall clock by default, so a fast replay does not expire a
    # client's key between its (wall-clock) keepalives.
    listen_key_clock: Literal["market", "wall"] = "wall"
    # append-only JSON lines; the records live in the file only (GET /sim/order_log reads it back);
    # "" = in memory only
    order_log: str = ""
    # a start with an existing order_log is a venue restart: accounts, trades, income and ids are
    # rebuilt from it, the orders it leaves open are closed (EXPIRED, reason venue_restart) and the
    # session is kept (procs/exchange_sim/trading/restore.py). false: every start is a fresh venue
    restore: bool = False
    # Queue model for resting orders (see procs/exchange_sim/trading/matching.py): "conservative" shrinks the
    # queue ahead only when the level shrinks below it; "prorata" also removes a pro-rata share
    # of every non-trade decrease.
    queue_model: Literal["conservative", "prorata"] = "conservative"
    # True: liquidity taken by a simulated order is hidden from later simulated orders until
    # the market itself removes that much from the level (see matching.py).
    market_impact: bool = True
    book_depth: int = 1000  # levels an aggressive order may walk
    # Conditional types (STOP_MARKET, ...) on POST /fapi/v1/order, which live USD-M serves on the algo
    # service only (decision 031); false answers -4120 there as the live exchange does.
    conditional_on_order_endpoint: bool = True
    # Clock of POST /fapi/v1/countdownCancelAll: "wall" (default: the client's heartbeats run on
    # wall time) or "market" (hand-driven tests).
    countdown_clock: Literal["market", "wall"] = "wall"
    # What the venue remembers, so a long run stays the same size: the newest closed orders (and as many
    # closed algo orders) stay queryable (older ones answer -2013 "Order does not exist.", as Binance forgets
    # CANCELED/EXPIRED orders without fills after 3 days; open orders are always kept), and the newest trades per account and symbol
    # (GET /fapi/v1/userTrades) and income rows per account (GET /fapi/v1/income; both answer at
    # most 1000 rows a request).
    keep_closed_orders: int = 2000
    keep_trades: int = 1000
    keep_income: int = 1000

    def __post_init__(self) -> None:
        _decimal(self.maker_fee_bps, "maker_fee_bps")
        _decimal(self.taker_fee_bps, "taker_fee_bps")
        if not self.accounts:
            raise ValueError("at least one account is needed")
        for name in ("keep_closed_orders", "keep_trades", "keep_income"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (how many to keep): {name}={getattr(self, name)}")
        if self.restore and not self.order_log:
            raise ValueError("restore needs order_log: the file the venue is rebuilt from")


def _decimal(text: str, field: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {field}={text!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {field}={text!r}")
    return d
