"""A venue restart: the simulator's accounts rebuilt from its own order log.

With ``[sim_trading] restore = true`` (and an ``order_log`` file) a simulator that starts again,
after a crash or a ``restart``, comes back as an exchange does after an outage: wallets,
positions, trade history (``userTrades``), income and the order and trade id counters are what
the log's TRADE records make them, and the session (``b25SimSession`` in exchangeInfo) is the
one the log was started with. Open orders do not survive: each order the log leaves open gets an
``EXPIRED`` record with ``"reason": "venue_restart"``, so the log tells how every order ended.
Every order stays queryable by id or client order id with its last status, as the exchange keeps
its closed orders: a client that sent an order and never heard back learns that it was accepted,
what it filled and that it ended, and must not send it again (a -2013 there reads "never arrived",
and a resend would trade the same intent twice). Conditional (algo) orders vanish.
Symbol settings (leverage, margin type, hedge mode) return to their configured defaults.

The log's first record of a session is ``{"event": "SESSION", "session": ...}``; it is written to
the file only, as the in-memory log (``/sim/order_log``) holds orders.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procs.core import log

from .matching import SimOrder

if TYPE_CHECKING:
    from .venue import Venue

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass
class Restored:
    """What a restore found in the log."""

    session: str = ""
    records: int = 0
    trades: int = 0
    orders: int = 0  # orders rebuilt (queryable with their last status)
    vanished: list[str] = field(default_factory=list)  # client order ids closed as venue_restart
    skipped: int = 0  # lines that were not JSON objects (a torn last line after a crash)


def new_session() -> str:
    import os

    return f"{time.time_ns():x}-{os.getpid()}"


def restore(venue: Venue, path: str | Path) -> Restored:
    """Rebuild ``venue``'s accounts and id counters from the order log at ``path`` (its records
    also become the in-memory log), close the orders it leaves open, and return what was found.
    A missing or empty file is a first start: a new session is recorded."""
    res = Restored()
    last: dict[tuple[str, int], dict[str, Any]] = {}  # (symbol, orderId) -> its latest record
    first_ms: dict[tuple[str, int], int] = {}  # (symbol, orderId) -> the time of its first record
    quote: dict[tuple[str, int], int] = {}  # (symbol, orderId) -> sum of price ticks x lots over its trades
    p = Path(path)
    text = p.read_text(errors="replace") if p.exists() else ""
    if text and not text.endswith("\n"):
        venue.write_log_line_raw("\n")  # a torn last line (a SIGKILL mid-write) must not swallow the next record
    lines = text.splitlines()
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            res.skipped += 1
            continue
        if not isinstance(rec, dict):
            res.skipped += 1
            continue
        event = rec.get("event")
        if event == "SESSION":
            res.session = res.session or str(rec.get("session", ""))
            continue
        res.records += 1
        venue.order_log.append(rec)
        if "orderId" not in rec or "symbol" not in rec:
            continue  # an algo order's record: it does not survive the restart
        symbol, oid = str(rec["symbol"]), int(rec["orderId"])
        venue.next_order_id[symbol] = max(venue.next_order_id.get(symbol, 1), oid + 1)
        last[(symbol, oid)] = rec
        first_ms.setdefault((symbol, oid), int(rec.get("ts", 0)))
        if event == "TRADE":
            quote[(symbol, oid)] = quote.get((symbol, oid), 0) + _replay_trade(venue, rec)
            res.trades += 1
    for key, rec in list(last.items()):
        if rec.get("status") in OPEN_STATUSES:
            closed = {**rec, "ts": venue.market.now_ms(), "event": "EXPIRED", "status": "EXPIRED",
                      "reason": "venue_restart"}
            for k in ("lastQty", "lastPrice", "tradeId", "maker", "fee", "realizedPnl", "ts_recv_ns"):
                closed.pop(k, None)
            venue._write_log(closed)
            res.vanished.append(str(rec.get("clientOrderId", "")))
            last[key] = closed
    for key, rec in last.items():  # in the log's order, so by_cid ends on a client id's newest order
        if _rebuild_order(venue, rec, first_ms[key], quote.get(key, 0)):
            res.orders += 1
    if not res.session:
        res.session = new_session()
        venue.write_log_line({"event": "SESSION", "session": res.session, "ts": int(time.time() * 1000)})
    log.info("venue_restored", path=str(p), session=res.session, records=res.records, trades=res.trades,
             orders=res.orders, vanished=len(res.vanished), skipped_lines=res.skipped)
    return res


def _rebuild_order(venue: Venue, rec: dict[str, Any], time_ms: int, cum_quote: int) -> bool:
    """The closed order of its last record, registered for queries (never for matching)."""
    inst = venue.market.instruments.get(str(rec["symbol"]))
    if inst is None:
        return False
    o = SimOrder(account=str(rec.get("account", "default")), symbol=inst.symbol, order_id=int(rec["orderId"]),
                 client_order_id=str(rec.get("clientOrderId", "")), is_buy=rec.get("side") == "BUY",
                 type=str(rec.get("type", "LIMIT")), tif=str(rec.get("timeInForce", "GTC")),
                 price_ticks=inst.price_to_ticks(str(rec.get("price", "0"))),
                 qty_lots=inst.qty_to_lots(str(rec.get("origQty", "0"))), reduce_only=bool(rec.get("reduceOnly")),
                 time_ms=time_ms, position_side=str(rec.get("positionSide", "BOTH")))
    o.status = str(rec.get("status", "EXPIRED"))
    o.filled_lots = inst.qty_to_lots(str(rec.get("executedQty", "0")))
    o.cum_quote = cum_quote
    o.update_ms = int(rec.get("ts", time_ms))
    o.orig_type = str(rec.get("origType", o.type))
    o.stop_ticks = inst.price_to_ticks(str(rec["stopPrice"])) if "stopPrice" in rec else 0
    venue.orders[(inst.symbol, o.order_id)] = o
    venue.by_cid[(o.account, inst.symbol, o.client_order_id)] = o
    return True


def _replay_trade(venue: Venue, rec: dict[str, Any]) -> int:
    """One TRADE record into its account, position, trade history, income and trade ids; returns
    its price ticks x lots (the order's cumulative quote in the matching engine's units)."""
    symbol = str(rec["symbol"])
    inst = venue.market.instruments.get(symbol)
    if inst is None:
        return 0
    acct = venue.account_named(str(rec["account"]))
    ticks = inst.price_to_ticks(str(rec["lastPrice"]))
    lots = inst.qty_to_lots(str(rec["lastQty"]))
    fee = Decimal(str(rec.get("fee", "0")))
    is_buy = rec.get("side") == "BUY"
    side = str(rec.get("positionSide", "BOTH"))
    now = int(rec.get("ts", 0))
    trade_id = int(rec["tradeId"])
    realized = acct.apply_fill(inst, is_buy, side, ticks, lots, fee, now)
    eng = venue.engine(symbol)
    eng.next_trade_id = max(eng.next_trade_id, trade_id + 1)
    venue.book_trade(acct, inst, int(rec["orderId"]), is_buy, side, ticks, lots, fee, realized, bool(rec.get("maker")),
                     trade_id, now)
    return ticks * lots


__all__ = ["Restored", "restore"]
