"""Shared pieces of the trading-side tests: a WsSession that records, a seeded market."""

from __future__ import annotations

import json
from pathlib import Path

from procs.core.instruments import load_exchange_info
from procs.exchange_sim.trading.settable_market import SettableMarket

ROOT = Path(__file__).resolve().parents[2]
SYM = "BTCUSDT"
KEY, SECRET = "b25-test-key", "b25-test-secret"


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
