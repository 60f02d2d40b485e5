"""Shared pieces of the trading-side tests: a WsSession that records, a seeded market, and
``TradingApi``: the simulator's REST handler driven in-process with raw, signed request strings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from procs.exchange_sim.trading.config import AccountConfig, TradingConfig
from procs.exchange_sim.trading.orderapi import build_trading
from procs.exchange_sim.trading.settable_market import SettableMarket
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from procs.venue.binance.signing import TEST_ACCOUNT, sign

ROOT = Path(__file__).resolve().parents[2]
SYM = "BTCUSDT"
KEY, SECRET = TEST_ACCOUNT


class Session:
    """A WsSession that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = False

    def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def close(self) -> None:
        self.closed = True


def seeded_market() -> SettableMarket:
    """BTCUSDT with five 1-lot levels a side around 60000.00."""
    market = SettableMarket(load_exchange_info(ROOT / "procs/exchange_sim/exchange_info_default.json"))
    for i in range(5):
        market.set_level(SYM, True, 5999900 - i * 100, 1000)
        market.set_level(SYM, False, 6000100 + i * 100, 1000)
    return market


# How a client sends a signed request's params: binance-futures-connector puts every param in the
# query string; python-binance puts POST/PUT/DELETE params in a form body (DELETE too); some
# clients split them between both.
Style = Literal["query", "body", "split"]
STYLES: tuple[Style, ...] = ("query", "body", "split")


class TradingApi:
    """The trading side on a ``seeded_market`` with its clocks on the market's (fixed) clock."""

    def __init__(self, exchange_info: dict | None = None, **cfg: Any) -> None:
        self.market = seeded_market()
        cfg.setdefault("accounts", [AccountConfig()])
        cfg.setdefault("timestamp_clock", "market")  # the hand-driven market's clock is fixed
        cfg.setdefault("listen_key_clock", "market")
        cfg.setdefault("countdown_clock", "market")
        self.cfg = TradingConfig(**cfg)
        if exchange_info is None:
            exchange_info = json.loads((ROOT / "procs/exchange_sim/exchange_info_default.json").read_text())
        self.rest, self.ws = build_trading(self.market, self.cfg, exchange_info)

    def raw(self, method: str, path: str, query: str = "", body: str = "", key: str | None = KEY
            ) -> tuple[int, Any, dict]:
        headers = {"X-MBX-APIKEY": key} if key else {}
        st, data, hdrs = asyncio.run(self.rest.handle_rest(method, path, query, body, headers))
        return st, json.loads(data), hdrs

    def signed(self, method: str, path: str, in_body: bool = False, secret: str = SECRET, style: Style | None = None,
               **params: Any) -> tuple[int, Any, dict]:
        params.setdefault("timestamp", self.market.now_ms())
        if style is None:
            style = "body" if in_body else "query"
        if style == "split":  # the symbol in the query, the rest in the body: signed over query + body
            q = urlencode({k: v for k, v in params.items() if k == "symbol"})
            b = urlencode({k: v for k, v in params.items() if k != "symbol"})
            return self.raw(method, path, q, b + "&signature=" + sign(secret, q + b))
        text = urlencode(params)
        text += "&signature=" + sign(secret, text)
        return self.raw(method, path, "" if style == "body" else text, text if style == "body" else "")

    def new(self, **params: Any) -> tuple[int, Any, dict]:
        p = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
             "price": "59000"}
        p.update(params)
        return self.signed("POST", "/fapi/v1/order", **p)

    def ok(self, method: str, path: str, style: Style | None = None, **params: Any) -> Any:
        """A signed request that must succeed; its body."""
        st, body, _ = self.signed(method, path, style=style, **params)
        assert st == 200, (method, path, body)
        return body

    def error(self, method: str, path: str, style: Style | None = None, **params: Any) -> int:
        """A signed request that must fail with HTTP 400; its error code."""
        st, body, _ = self.signed(method, path, style=style, **params)
        assert st == 400 and set(body) == {"code", "msg"}, (method, path, st, body)
        return body["code"]
