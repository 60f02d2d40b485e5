"""A remote consumer of b25's market data over NATS: the top of book per symbol, rebuilt from the
bridge's ``b25.<instance>.md.book.<SYMBOL>`` messages (docs/bridge.md).

It needs only nats-py and msgspec (no b25 code), as a notebook or dashboard on another host would:

    python scripts/remote_top_of_book.py --url nats://b25-host:4222 --instance main [--count 10] [--json]

One line per Book: symbol, best bid and ask (price and quantity as exact decimals), spread, and
how many updates the bridge conflated into it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from decimal import Decimal
from typing import Any

import msgspec
import nats


def decode(data: bytes) -> dict[str, Any]:
    """A bridge message in either encoding (JSON starts with '{', msgpack never does)."""
    return msgspec.json.decode(data) if data[:1] == b"{" else msgspec.msgpack.decode(data)


def scaled(units: int, scale: int) -> Decimal:
    """Integer ticks or lots -> the exact decimal (a tick is 10**-scale)."""
    return Decimal(units).scaleb(-scale)


def top_of_book(msg: dict[str, Any]) -> dict[str, Any]:
    """The best levels of one Book message, as strings of exact decimals ("" for an empty side)."""
    ps, qs = msg["price_scale"], msg["qty_scale"]
    bid = msg["bids"][0] if msg["bids"] else None
    ask = msg["asks"][0] if msg["asks"] else None
    out = {"symbol": msg["symbol"], "seq": msg["seq"], "conflated": msg.get("conflated", 0),
           "bid": str(scaled(bid[0], ps)) if bid else "", "bid_qty": str(scaled(bid[1], qs)) if bid else "",
           "ask": str(scaled(ask[0], ps)) if ask else "", "ask_qty": str(scaled(ask[1], qs)) if ask else ""}
    out["spread"] = str(scaled(ask[0] - bid[0], ps)) if bid and ask else ""
    return out


async def follow(url: str, instance: str, count: int, as_json: bool, user: str = "", password: str = "") -> int:
    auth = {"user": user, "password": password} if user else {}
    nc = await nats.connect(url, **auth)
    tops: dict[str, dict[str, Any]] = {}  # the latest top of each symbol
    seen = 0
    done = asyncio.Event()

    async def on_book(msg: Any) -> None:
        book = decode(msg.data)
        if done.is_set() or book.get("type") != "book" or book.get("v") != 1:
            return  # another message or a schema this script does not know
        top = tops[book["symbol"]] = top_of_book(book)
        if as_json:
            print(json.dumps(top), flush=True)
        else:
            print(f"{top['symbol']:<10} {top['bid_qty']:>10} @ {top['bid']:<12} | {top['ask']:>12} @ "
                  f"{top['ask_qty']:<10} spread {top['spread']} (+{top['conflated']} conflated)", flush=True)
        nonlocal seen
        seen += 1
        if count and seen >= count:
            done.set()

    await nc.subscribe(f"b25.{instance}.md.book.*", cb=on_book)
    try:
        await done.wait()
    finally:
        await nc.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="nats://127.0.0.1:4222")
    ap.add_argument("--instance", default="main")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--count", type=int, default=0, help="exit after N books (0: run until Ctrl-C)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    a = ap.parse_args(argv)
    try:
        return asyncio.run(follow(a.url, a.instance, a.count, a.json, a.user, a.password))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
