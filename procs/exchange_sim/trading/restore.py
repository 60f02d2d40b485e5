"""A venue restart: the simulator's accounts rebuilt from its own order log.

With ``[sim_trading] restore = true`` (and an ``order_log`` file) a simulator that starts again,
after a crash or a ``restart``, comes back as an exchange does after an outage: wallets,
positions, trade history (``userTrades``), income and the order and trade id counters are what
the log's TRADE records make them, and the session (``b25SimSession`` in exchangeInfo) is the
one the log was started with. Open orders do not survive: each order the log leaves open gets an
``EXPIRED`` record with ``"reason": "venue_restart"``, so the log tells how every order ended.
Every order stays queryable by id or client order id with its last status, as the exchange keeps
its closed orders (the newest ``[sim_trading] keep_closed_orders`` of them, as while running): a client that sent an order and never heard back learns that it was accepted,
what it filled and that it ended, and must not send it again (a -2013 there reads "never arrived",
and a resend would trade the same intent twice). Conditional (algo) orders vanish.
Symbol settings (leverage, margin type, hedge mode) return to their configured defaults.

The log's first record of a session is ``{"event": "SESSION", "session": ...}``; it is a line of
the file only, not an order record (``/sim/order_log`` serves orders). After a restore the venue's
log (``/sim/order_log``) begins at the file's start: the records restored are the file's own.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import OrderedDict
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
    also become the venue's log), close the orders it leaves open, and return what was found.
    A missing or empty file is a first start: a new session is recorded."""
    res = Restored()
    keep = venue.cfg.keep_closed_orders
    opened: dict[tuple[str, int], dict[str, Any]] = {}  # (symbol, orderId) -> latest record, order open
    # (symbol, orderId) -> latest record of the newest `keep` closed orders, oldest closed first
    closed: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
    first_ms: dict[tuple[str, int], int] = {}  # (symbol, orderId) -> the time of its first record
    quote: dict[tuple[str, int], int] = {}  # (symbol, orderId) -> sum of price ticks x lots over its trades

    def close(key: tuple[str, int], rec: dict[str, Any]) -> None:
        opened.pop(key, None)
        closed[key] = rec
        closed.move_to_end(key)
        while len(closed) > keep:  # forgotten as the running venue forgets it (Venue.keep_closed)
            gone, _ = closed.popitem(last=False)
            first_ms.pop(gone, None)
            quote.pop(gone, None)

    p = Path(path)
    own_file = bool(venue.order_log.path) and os.path.abspath(venue.order_log.path) == os.path.abspath(p)
    if own_file:  # the records are in the venue's file already: its log begins at the file's start
        venue.order_log.include_file()
    with p.open("rb") if p.exists() else io.BytesIO() as lines:
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
            if not own_file:
                venue.order_log.append(rec)
            if "orderId" not in rec or "symbol" not in rec:
                continue  # an algo order's record: it does not survive the restart
            symbol, oid = str(rec["symbol"]), int(rec["orderId"])
            key = (symbol, oid)
            venue.next_order_id[symbol] = max(venue.next_order_id.get(symbol, 1), oid + 1)
            first_ms.setdefault(key, int(rec.get("ts", 0)))
            if event == "TRADE":
                quote[key] = quote.get(key, 0) + _replay_trade(venue, rec)
                res.trades += 1
            if rec.get("status") in OPEN_STATUSES:
                opened[key] = rec
            else:
                close(key, rec)
    for key, rec in list(opened.items()):
        ended = {**rec, "ts": venue.market.now_ms(), "event": "EXPIRED", "status": "EXPIRED",
                 "reason": "venue_restart"}
        for k in ("lastQty", "lastPrice", "tradeId", "maker", "fee", "realizedPnl", "ts_recv_ns"):
            ended.pop(k, None)
        venue._write_log(ended)
        res.vanished.append(str(rec.get("clientOrderId", "")))
        close(key, ended)
    for key, rec in closed.items():  # oldest closed first, so by_cid ends on a client id's newest order
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
    venue.keep_closed(o)
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
