"""A strategy engine on real shm rings in this process: the test plays market_data (md.book,
md.trade producers), execution (orders.strategy consumer, exec producer) and the clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from procs.core import messages as M
from procs.core.config import convert
from procs.core.registry import EXEC, MD_BOOK, MD_TRADE, ORDERS_STRATEGY, SIGNALS, build_registry
from procs.strategy.clock import ManualClock
from procs.strategy.config import StrategyEngineConfig
from procs.strategy.engine import Counter, Engine, Hist
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from shm.counters import Counters, read_counters
from shm.inspect import clean

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE_INFO = ROOT / "procs" / "exchange_sim" / "exchange_info_default.json"
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTH = 20
BTC, ETH = 0, 1


def engine_config(strategies: list[dict[str, Any]], **engine: Any) -> StrategyEngineConfig:
    """[strategy] for a test; cpu, idle, sched and keep_warm_ms go to its runtime table."""
    engine.setdefault("state_file", "-")
    engine.setdefault("adopt_timeout_s", 600.0)
    runtime = {k: engine.pop(k) for k in ("cpu", "idle", "sched", "keep_warm_ms") if k in engine}
    return convert({"strategies": strategies, **engine, "runtime": runtime}, StrategyEngineConfig)


class Harness:
    """Producers of md.book/md.trade/exec, the consumer of orders.strategy, and the engine."""

    def __init__(self, instance: str, strategies: list[dict[str, Any]], read_config: Any = None,
                 with_exec: bool = True, venue_session: str = "", answer_report: bool = False,
                 **engine: Any) -> None:
        self.instance = instance
        self.reg = build_registry(DEPTH)
        self.book = self.reg.producer(instance, MD_BOOK)
        self.trade = self.reg.producer(instance, MD_TRADE)
        self.exec = self.reg.producer(instance, EXEC) if with_exec else None
        self.counters = Counters.create(instance, "strategy", Counter, Hist)
        self.clock = ManualClock(1_000_000_000)
        self.cfg = engine_config(strategies, **engine)
        self.engine = Engine(self.cfg, instance, SYMBOLS, load_exchange_info(EXCHANGE_INFO), DEPTH, self.counters,
                             read_config=read_config, clock=self.clock, venue_session=venue_session)
        self.orders = self.reg.consumer(instance, ORDERS_STRATEGY, "execution")
        self.signals = self.reg.consumer(instance, SIGNALS, None)
        self._held: list[dict[str, int]] = []  # intents read while looking for the report request
        self.engine.open()
        self.seq = 0
        self.event_seq = 0
        # open() asks execution for the orders a previous process left working: left unanswered
        # (engine_config asks again only after 600 s) unless answer_report (empty) or the test answers
        self.report_requests = self._report_requests()
        if answer_report and self.exec is not None:
            self.report([], self.report_requests[-1])

    def restart(self, strategies: list[dict[str, Any]] | None = None, **engine: Any) -> Engine:
        """A SIGKILL of the strategy process and its restart: the engine is dropped as it is
        (nothing closed, saved or cancelled), a new one opens on the same rings and state file
        (``strategies``/``engine`` settings replace the old ones); returns the dropped engine."""
        old = self.engine
        cfg = self.cfg if strategies is None and not engine else engine_config(
            strategies if strategies is not None else [msgspec.to_builtins(e) for e in self.cfg.strategies],
            **{**{"state_file": self.cfg.state_file, "adopt_timeout_s": self.cfg.adopt_timeout_s}, **engine})
        self.cfg = cfg
        self.engine = Engine(cfg, self.instance, SYMBOLS, load_exchange_info(EXCHANGE_INFO), DEPTH, self.counters,
                             clock=self.clock)
        self.engine.open()
        self.report_requests = self._report_requests()
        return old

    def _report_requests(self) -> list[dict[str, int]]:
        """The REPORT_ORDERS intents written so far; the others stay for the next ``intents()``."""
        written = self.intents()
        self._held = [i for i in written if i["kind"] != M.REPORT_ORDERS]
        return [i for i in written if i["kind"] == M.REPORT_ORDERS]

    # -- market data --------------------------------------------------------------------------
    def publish_book(self, sid: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], flags: int = 0,
                     ts_recv: int = 0) -> dict[str, int]:
        self.seq += 1
        slot = self.book.try_claim()
        r = self.book.records
        r[slot] = np.zeros((), r.dtype)
        for name, val in (("symbol_id", sid), ("update_id", 1000 + self.seq), ("ts_event", 1), ("flags", flags),
                          ("seq", self.seq), ("n_bids", len(bids)), ("n_asks", len(asks))):
            r[name][slot] = val
        for k, (p, q) in enumerate(bids):
            r["bid_px"][slot, k], r["bid_qty"][slot, k] = p, q
        for k, (p, q) in enumerate(asks):
            r["ask_px"][slot, k], r["ask_qty"][slot, k] = p, q
        import time
        recv = ts_recv or time.monotonic_ns()
        r["ts_recv"][slot] = recv
        r["ts_pub"][slot] = time.monotonic_ns()
        self.book.publish()
        return {"seq": self.seq, "ts_recv": recv, "ts_pub": int(r["ts_pub"][slot])}

    def publish_trade(self, sid: int, price: int, qty: int, buyer_maker: bool = False) -> None:
        import time
        self.trade.try_publish(sid, 1, price, qty, 1, time.monotonic_ns(), time.monotonic_ns(),
                               M.TRADE_BUYER_MAKER if buyer_maker else 0)

    # -- execution's side ---------------------------------------------------------------------
    def intents(self) -> list[dict[str, int]]:
        """Every intent written since the last call, as dicts (the batch is committed)."""
        out, self._held = self._held, []
        while True:
            b = self.orders.poll()
            if not len(b):
                break
            out += [{n: int(rec[n]) for n in M.OrderIntent.names if n != "_pad"} for rec in b]
            self.orders.commit()
        return out

    def event(self, intent: dict[str, int], kind: int, last_px: int = 0, last_qty: int = 0, cum_qty: int = 0,
              fee_e8: int = 0, reason: int = 0) -> None:
        """Publish an OrderEvent about the order ``intent`` created."""
        assert self.exec is not None
        self.event_seq += 1
        slot = self.exec.try_claim()
        assert slot >= 0
        r = self.exec.records
        r[slot] = np.zeros((), r.dtype)
        vals = {"event_seq": self.event_seq, "kind": kind, "strategy_id": intent["strategy_id"],
                "symbol_id": intent["symbol_id"], "side": intent["side"], "order_type": intent["order_type"],
                "client_tag": intent["client_tag"], "order_id": 5000 + intent["client_tag"] % 1000,
                "price": intent["price"], "qty": intent["qty"], "cum_qty": cum_qty, "last_px": last_px,
                "last_qty": last_qty, "fee_e8": fee_e8, "reason": reason, "intent_id": intent["intent_id"],
                "source": M.SOURCE_STRATEGY}
        for k, v in vals.items():
            r[k][slot] = v
        self.exec.publish()

    def report(self, orders: list[dict[str, int]], request: dict[str, int] | None = None, status: int = 1,
               source: int = M.SOURCE_STRATEGY) -> None:
        """Execution's answer to a REPORT_ORDERS ``request`` (None: its own report after a
        restart): one ORDER_OPEN per order (``orders`` are intents, with an optional "cum_qty"),
        then ORDERS_REPORTED."""
        assert self.exec is not None
        for o in orders:
            self.exec.try_publish(0, M.ORDER_OPEN, o["strategy_id"], o["symbol_id"], o["side"], o["order_type"],
                                  o["client_tag"], 7000 + o["client_tag"] % 1000, o["price"], o["qty"],
                                  o.get("cum_qty", 0), 0, 0, 0, o.get("status", status), o["tif"], 0, 0, 0, 0, 0,
                                  o["intent_id"], source, M.FLAG_RECOVERED, f"b25-1-{o['client_tag']}".encode(), 0)
        self.exec.try_publish(0, M.ORDERS_REPORTED, -1, -1, 0, 0, 0, 0, 0, len(orders), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                              0, request["intent_id"] if request else 0, M.SOURCE_STRATEGY if request else 0, 0, b"", 0)

    def accept(self, intent: dict[str, int]) -> None:
        self.event(intent, M.ORDER_ACCEPTED)

    def fill(self, intent: dict[str, int], qty: int | None = None, px: int | None = None, fee_e8: int = 0,
             cum: int | None = None) -> None:
        q = intent["qty"] if qty is None else qty
        c = q if cum is None else cum
        self.event(intent, M.ORDER_FILLED if c >= intent["qty"] else M.ORDER_PARTIALLY_FILLED,
                   last_px=intent["price"] if px is None else px, last_qty=q, cum_qty=c, fee_e8=fee_e8)

    # -- engine -------------------------------------------------------------------------------
    def work(self) -> int:
        return self.engine.do_work()

    def signals_read(self) -> list[dict[str, Any]]:
        b = self.signals.poll()
        self.signals.commit()
        return [{n: rec[n].item() for n in M.Signal.names} for rec in b]

    def counter(self, name: str) -> int:
        c, _ = read_counters(self.counters.seg)
        return c[name]

    def hist_count(self, name: str) -> int:
        _, h = read_counters(self.counters.seg)
        return int(h[name].sum())

    def close(self) -> None:
        self.engine.close()
        self.orders.close()
        self.signals.close()
        for p in (self.book, self.trade, self.exec):
            if p is not None:
                p.close()
        self.counters.close()
        removed, refused = clean(self.instance, force=True)
        assert not refused


# a plugin that raises in on_book after ``fail_after`` books (isolation and reload tests)
RAISER = """
from procs.strategy import BUY, Strategy, StrategyConfig

class RaiserConfig(StrategyConfig):
    fail_after: int = 1

class Raiser(Strategy):
    def __init__(self, config, api):
        super().__init__(config, api)
        self.n = 0

    def on_book(self, book):
        self.n += 1
        if self.n > self.config.fail_after:
            raise RuntimeError("boom in on_book")
        self.api.submit_limit(book.symbol_id, BUY, book.best_bid - 100, 1)
"""
