"""How the peer baselines of ``b25 bench`` read and speak Binance (the peers are not b25: each
does what its own stack would do with the exchange's wire format).

* The book bench's recorded stream (a ``<ts> <json>`` hftbacktest recording: the REST snapshot
  and the ``@depth`` diffs that continue it), and what each peer decodes from a frame: the
  naive peer ``json.loads`` it and takes the level lists; nautilus_trader's Binance adapter
  decodes it with msgspec (``PeerDepth``). Only msgspec and the stdlib are imported here: the
  nautilus peer runs this in its own venv.
* The exec bench's bare client: one signed WS API ``order.place`` in flight at a time.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import time
from pathlib import Path

import msgspec

_U = re.compile(rb'"u":(\d+)')


class PeerDepth(msgspec.Struct, rename={"bids": "b", "asks": "a", "update_id": "u", "ts_ms": "E"}):
    """What a nautilus_trader Binance adapter decodes from a depth frame (msgspec, as it does)."""

    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    update_id: int = 0
    ts_ms: int = 0


class PeerEnvelope(msgspec.Struct):
    data: PeerDepth


class PeerSnapshot(msgspec.Struct):
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


def naive_levels(raw: bytes) -> tuple[list, list]:
    """The naive peer's decode: ``json.loads`` and the bid and ask lists."""
    d = json.loads(raw)["data"]
    return d["b"], d["a"]


def count_levels(frames: list[bytes]) -> int:
    return sum(len(b) + len(a) for b, a in map(naive_levels, frames))


def load_depth_stream(path: Path) -> tuple[bytes, list[bytes], int]:
    """(snapshot body, depth frames with u >= the snapshot's id in arrival order, level updates)."""
    snap = b""
    depth: list[bytes] = []
    with gzip.open(path, "rb") as f:
        for line in f:
            raw = line.split(b" ", 1)[1].rstrip(b"\n")
            if raw.startswith(b'{"lastUpdateId"'):
                snap = raw
            elif b"@depth" in raw[:40]:
                depth.append(raw)
    last_id = int(json.loads(snap)["lastUpdateId"])
    frames = [r for r in depth if int(_U.search(r).group(1)) >= last_id]  # type: ignore[union-attr]
    return snap, frames, count_levels(frames)


async def bare_ws_client(ws_api_url: str, key: str, secret: str, symbol: str, qty: str, price_text: str, n: int,
                         gap_ms: float, n_burst: int) -> tuple[list[int], float]:
    """IOC buys of ``qty`` at ``price_text`` over aiohttp, one in flight at a time, signed with
    the stdlib's hmac: (round trips in ns of ``n`` paced requests, requests/s of ``n_burst``)."""
    import hashlib
    import hmac

    import aiohttp

    def signed(i: int) -> str:
        params = {"symbol": symbol, "side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "quantity": qty,
                  "price": price_text, "newClientOrderId": f"bl-{os.getpid()}-{i}", "apiKey": key,
                  "timestamp": str(int(time.time() * 1000))}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return json.dumps({"id": i, "method": "order.place", "params": params})

    rtts: list[int] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_api_url) as ws:
        for i in range(n):
            msg = signed(i)
            t = time.monotonic_ns()
            await ws.send_str(msg)
            await ws.receive()
            rtts.append(time.monotonic_ns() - t)
            await asyncio.sleep(gap_ms / 1000)
        t0 = time.monotonic()
        for i in range(n_burst):
            await ws.send_str(signed(n + i))
            await ws.receive()
        rate = n_burst / (time.monotonic() - t0) if n_burst else 0.0
    return rtts, rate
