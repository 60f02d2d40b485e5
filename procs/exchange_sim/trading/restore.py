"""A venue restart: the simulator's accounts rebuilt from its own order log.

With ``[sim_trading] restore = true`` (and an ``order_log`` file) a simulator that starts again,
after a crash or a ``restart``, comes back as an exchange does after an outage: wallets,
positions, trade history (``userTrades``), income and the order and trade id counters are what
the log's TRADE records make them, and the session (``b25SimSession`` in exchangeInfo) is the
one the log was started with. Open orders do not survive: each order the log leaves open gets an
``EXPIRED`` record with ``"reason": "venue_restart"``, so the log tells how every order ended and
a client that asks for the order finds it gone (-2013). Conditional (algo) orders vanish too.
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

if TYPE_CHECKING:
    from .venue import Venue

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass
class Restored:
    """What a restore found in the log."""

    session: str = ""
    records: int = 0
    trades: int = 0
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
        if event == "TRADE":
            _replay_trade(venue, rec)
            res.trades += 1
    for rec in last.values():
        if rec.get("status") in OPEN_STATUSES:
            closed = {**rec, "ts": venue.market.now_ms(), "event": "EXPIRED", "status": "EXPIRED",
                      "reason": "venue_restart"}
            for k in ("lastQty", "lastPrice", "tradeId", "maker", "fee", "realizedPnl", "ts_recv_ns"):
                closed.pop(k, None)
            venue._write_log(closed)
            res.vanished.append(str(rec.get("clientOrderId", "")))
    if not res.session:
        res.session = new_session()
        venue.write_log_line({"event": "SESSION", "session": res.session, "ts": int(time.time() * 1000)})
    log.info("venue_restored", path=str(p), session=res.session, records=res.records, trades=res.trades,
             vanished=len(res.vanished), skipped_lines=res.skipped)
    return res


def _replay_trade(venue: Venue, rec: dict[str, Any]) -> None:
    """One TRADE record into its account, position, trade history, income and trade ids."""
    symbol = str(rec["symbol"])
    inst = venue.market.instruments.get(symbol)
    if inst is None:
        return
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


__all__ = ["Restored", "restore"]
