"""A deterministic b25 instance for TUI tests: every segment the panels read, filled by the test
(the producers are the test's own; no b25 process runs)."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path

import numpy as np

from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.core.registry import (
    EXEC,
    MD_TRADE,
    RISK_STATE,
    SIGNALS,
    alerts_name,
    book_state_name,
    build_registry,
)
from procs.core.status import State, StatusWriter
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from shm.counters import Counters

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTH = 20
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z: fixed wall-clock stamps keep the screen stable


def instruments() -> dict[str, Instrument]:
    return load_exchange_info(ROOT / "procs" / "exchange_sim" / "exchange_info_default.json")


class Counter(IntEnum):
    INTENTS = 0


class Hist(IntEnum):
    DECIDE = 0


class World:
    def __init__(self, instance: str) -> None:
        self.instance = instance
        reg = build_registry(DEPTH)
        self.book = reg.writer(instance, book_state_name("BTCUSDT"))
        self.exec = reg.producer(instance, EXEC)
        self.trades = reg.producer(instance, MD_TRADE)
        self.signals = reg.producer(instance, SIGNALS)
        self.alerts = reg.producer(instance, alerts_name("risk"))
        self.risk = reg.writer(instance, RISK_STATE)
        self.status = {p: StatusWriter(instance, p) for p in ("market_data", "strategy", "execution", "risk")}
        for s in self.status.values():
            s.set_state(State.RUNNING)
        self.counters = Counters.create(instance, "strategy", Counter, Hist)
        self.order_seq = 0

    # -- fillers ------------------------------------------------------------------------------
    def set_book(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], update_id: int = 1) -> None:
        rec = self.book.records
        self.book.begin()
        r = rec[0]
        rec[0] = np.zeros((), rec.dtype)
        r["symbol_id"], r["update_id"], r["n_bids"], r["n_asks"] = 0, update_id, len(bids), len(asks)
        for i, (p, q) in enumerate(bids):
            r["bid_px"][i], r["bid_qty"][i] = p, q
        for i, (p, q) in enumerate(asks):
            r["ask_px"][i], r["ask_qty"][i] = p, q
        self.book.end()

    def order_event(self, kind: int, side: int, price: int, qty: int, coid: bytes, last_qty: int = 0,
                    symbol_id: int = 0, strategy_id: int = 0, client_tag: int = 0) -> None:
        self.order_seq += 1
        recs = self.exec.records
        i = self.exec.try_claim()
        assert i >= 0
        recs[i] = np.zeros((), recs.dtype)
        r = recs[i]
        r["event_seq"], r["kind"], r["symbol_id"], r["side"], r["order_type"] = self.order_seq, kind, symbol_id, side, M.LIMIT
        r["price"], r["qty"], r["cum_qty"], r["last_px"], r["last_qty"] = price, qty, last_qty, price, last_qty
        r["client_order_id"] = coid
        r["strategy_id"], r["client_tag"] = strategy_id, client_tag
        self.exec.publish()

    def trade(self, trade_id: int, price: int, qty: int, sell: bool, dt_ms: int) -> None:
        ts = T0 + dt_ms * 1_000_000
        assert self.trades.try_publish(0, trade_id, price, qty, ts, ts, ts, M.TRADE_BUYER_MAKER if sell else 0)

    def set_risk(self, state: int, position: int, max_position: int) -> None:
        rec = self.risk.records
        self.risk.begin()
        rec[0] = np.zeros((), rec.dtype)
        rec["trading_state"][0] = state
        rec["position"][0][0] = position
        rec["max_position"][0][0] = max_position
        rec["max_open_orders"][0] = 10
        rec["equity_e8"][0] = 10_000 * 10**8
        self.risk.end()

    def beat(self) -> None:
        for s in self.status.values():
            s.beat()

    def make_stale(self, proc: str) -> None:
        w = self.status[proc].w
        w.begin()
        w.records["heartbeat_ns"][0] -= 60_000_000_000
        w.end()

    def standard(self) -> None:
        """The scene the snapshot shows: a 5-level book, an own order, trades, risk, a signal, an alert."""
        self.set_book(bids=[(6_000_000 - 10 * i, 1000 + 100 * i) for i in range(5)],
                      asks=[(6_000_010 + 10 * i, 500 + 100 * i) for i in range(5)])
        self.order_event(M.ORDER_ACCEPTED, M.BUY, 5_999_980, 20, b"b25-m-1")
        self.order_event(M.ORDER_ACCEPTED, M.SELL, 6_000_050, 10, b"b25-m-2")
        self.order_event(M.ORDER_FILLED, M.SELL, 6_000_050, 10, b"b25-m-2", last_qty=10)
        for k in range(6):
            self.trade(100 + k, 6_000_000 + 10 * (k % 2), 5 + k, sell=bool(k % 2), dt_ms=250 * k)
        self.set_risk(M.ACTIVE, -10, 100)
        assert self.signals.try_publish(1, 0, T0, 0.25, 2, -10, 0.0, 7)
        assert self.alerts.try_publish(T0, M.ALERT_WARN, 3, 0, 0.5, b"position near limit")
        for ns in (3_000, 4_000, 5_000, 40_000):
            self.counters.record(Hist.DECIDE, ns)

    def close(self) -> None:
        for x in (self.book, self.exec, self.trades, self.signals, self.alerts, self.risk, self.counters):
            x.close(unlink=True)
        for s in self.status.values():
            s.close(unlink=True)
