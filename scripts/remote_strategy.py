"""A remote strategy: it trades through b25's pre-trade checks from another host, over NATS.

It reads the book from ``b25.<instance>.md.book.<SYMBOL>``, sends order intents to
``b25.<instance>.intent.<strategy>`` (answered by an ``intent_ack``), follows its orders on
``b25.<instance>.exec.<strategy>`` and sends a heartbeat every second: if it stops (killed, or its
host is gone) for ``[bridge] remote_dead_s``, b25 cancels its orders. It needs only nats-py and
msgspec. The b25 side: ``[bridge] intents = true``, the strategy id in ``remote_strategies``, and a
NATS user allowed to publish on the intent subject (docs/bridge.md).

    python scripts/remote_strategy.py --url nats://b25-host:4222 --user trader --password ... \\
        --strategy remote_demo --symbol BTCUSDT --qty 2 --offset-ticks 100 [--probe-qty 100]

It places one passive BUY ``--offset-ticks`` below the best bid (``--qty`` in lots), optionally
first an order of ``--probe-qty`` lots to see the checks deny it, then keeps the order working and
heartbeats for ``--seconds`` (0: until Ctrl-C), cancelling it at the end. Every answer and order
event is printed as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import msgspec
import nats


def decode(data: bytes) -> dict[str, Any]:
    return msgspec.json.decode(data) if data[:1] == b"{" else msgspec.msgpack.decode(data)


def say(what: str, **fields: Any) -> None:
    print(json.dumps({"what": what, **fields}), flush=True)


class RemoteStrategy:
    def __init__(self, nc: Any, instance: str, strategy: str, symbol: str) -> None:
        self.nc = nc
        self.intent_subject = f"b25.{instance}.intent.{strategy}"
        self.book_subject = f"b25.{instance}.md.book.{symbol}"
        self.exec_subject = f"b25.{instance}.exec.{strategy}"
        self.symbol = symbol
        self.last_id = 0
        self.tag = 0

    def next_id(self) -> int:
        """A growing intent id that survives a restart of this script: the wall clock in ns."""
        self.last_id = max(self.last_id + 1, time.time_ns())
        return self.last_id

    async def request(self, intent: dict[str, Any]) -> dict[str, Any]:
        reply = await self.nc.request(self.intent_subject, msgspec.json.encode(intent), timeout=5)
        return decode(reply.data)

    async def submit(self, book: dict[str, Any], side: str, price: int, qty: int) -> dict[str, Any]:
        self.tag += 1
        return await self.request({"type": "submit", "intent_id": self.next_id(), "ts_wall": time.time_ns(),
                                   "symbol": self.symbol, "side": side, "order_type": "LIMIT", "tif": "GTC",
                                   "price": price, "qty": qty, "price_scale": book["price_scale"],
                                   "qty_scale": book["qty_scale"], "client_tag": self.tag})

    async def cancel_all(self) -> dict[str, Any]:
        return await self.request({"type": "cancel_all", "intent_id": self.next_id(), "symbol": self.symbol})

    async def heartbeat(self) -> None:
        await self.nc.publish(self.intent_subject, msgspec.json.encode({"type": "heartbeat", "ts_wall": time.time_ns()}))


async def run(a: argparse.Namespace) -> int:
    auth = {"user": a.user, "password": a.password} if a.user else {}
    nc = await nats.connect(a.url, **auth)
    try:
        strat = RemoteStrategy(nc, a.instance, a.strategy, a.symbol)

        async def on_event(msg: Any) -> None:
            e = decode(msg.data)
            say("order_event", kind=e["kind"], client_tag=e["client_tag"], intent_id=e["intent_id"],
                client_order_id=e["client_order_id"], reason=e["reason_name"] or e["reason"], price=e["price"],
                qty=e["qty"], source=e["source"])

        await nc.subscribe(strat.exec_subject, cb=on_event)
        books = await nc.subscribe(strat.book_subject)
        book = decode((await books.next_msg(timeout=30)).data)
        await books.unsubscribe()
        best_bid = book["bids"][0][0]
        say("book", bid=best_bid, price_scale=book["price_scale"], qty_scale=book["qty_scale"])
        if a.probe_qty:
            say("ack", of="probe", **await strat.submit(book, "BUY", best_bid - a.offset_ticks, a.probe_qty))
        say("ack", of="order", **await strat.submit(book, "BUY", best_bid - a.offset_ticks, a.qty))
        end = time.monotonic() + a.seconds if a.seconds else float("inf")
        while time.monotonic() < end:
            await strat.heartbeat()
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        say("ack", of="cancel_all", **await strat.cancel_all())
        await asyncio.sleep(0.5)  # the cancel's order events
        return 0
    finally:
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="nats://127.0.0.1:4222")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--instance", default="main")
    ap.add_argument("--strategy", default="remote_demo", help="an id in [bridge] remote_strategies")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--qty", type=int, default=2, help="lots (the book message's qty_scale)")
    ap.add_argument("--offset-ticks", type=int, default=100, help="how far below the best bid to bid")
    ap.add_argument("--probe-qty", type=int, default=0, help="first send an order of this many lots (e.g. over a limit)")
    ap.add_argument("--seconds", type=float, default=0, help="keep the order and heartbeat this long (0: until Ctrl-C)")
    a = ap.parse_args(argv)
    try:
        return asyncio.run(run(a))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
