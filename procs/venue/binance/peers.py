"""How the peer baselines of ``b25 bench`` read and speak Binance (the peers are not b25: each
does what its own stack would do with the exchange's wire format).

* The book bench's recorded stream (a ``<ts> <json>`` hftbacktest recording: the REST snapshot
  and the ``@depth`` diffs that continue it), and what each peer decodes from a frame: the
  naive peer ``json.loads`` it and takes the level lists; nautilus_trader's Binance adapter
  decodes it with msgspec (``PeerDepth``). Only msgspec and the stdlib are imported here: the
  nautilus peer runs this in its own venv.
* The exec bench's bare client: one signed WS API ``order.place`` in flight at a time; its
  ``order.modify`` and REST batch cancel; the venue's count of used request weight.
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


async def bare_amend_and_batch(ws_api_url: str, rest_url: str, key: str, secret: str, symbol: str, qty: str,
                               price_ticks: int, n_amend: int, rounds: int) -> dict:
    """The bare client's amend and batch cancel: ``n_amend`` WS API ``order.modify`` of one
    resting order, one at a time (round trips), and ``rounds`` times 10 resting orders placed
    then canceled by one REST ``DELETE /fapi/v1/batchOrders`` (send -> answer). Prices are
    ticks of 0.01."""
    import hashlib
    import hmac
    from urllib.parse import urlencode

    import aiohttp

    def sign(params: dict[str, str]) -> str:
        return hmac.new(secret.encode(), "&".join(f"{k}={params[k]}" for k in sorted(params)).encode(),
                        hashlib.sha256).hexdigest()

    def ws_request(i: int, method: str, **fields: str) -> str:
        params = {"symbol": symbol, "apiKey": key, "timestamp": str(int(time.time() * 1000)), **fields}
        params["signature"] = sign(params)
        return json.dumps({"id": i, "method": method, "params": params})

    def text(ticks: int) -> str:
        return f"{ticks / 100:.2f}"

    prefix = f"bb-{os.getpid()}"
    modify: list[int] = []
    batch: list[float] = []
    async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": key}) as s, s.ws_connect(ws_api_url) as ws:
        cid = f"{prefix}-amend"
        await ws.send_str(ws_request(0, "order.place", side="BUY", type="LIMIT", timeInForce="GTC", quantity=qty,
                                     price=text(price_ticks), newClientOrderId=cid))
        await ws.receive()
        for i in range(n_amend):
            msg = ws_request(i + 1, "order.modify", side="BUY", quantity=qty, price=text(price_ticks + 1 + i % 2),
                             origClientOrderId=cid)
            t = time.monotonic_ns()
            await ws.send_str(msg)
            await ws.receive()
            modify.append(time.monotonic_ns() - t)
        await ws.send_str(ws_request(n_amend + 1, "order.cancel", origClientOrderId=cid))
        await ws.receive()
        for r in range(rounds):
            cids = [f"{prefix}-{r}-{k}" for k in range(10)]
            for k, c in enumerate(cids):
                await ws.send_str(ws_request(10_000 + k, "order.place", side="BUY", type="LIMIT", timeInForce="GTC",
                                             quantity=qty, price=text(price_ticks - k), newClientOrderId=c))
                await ws.receive()
            q = urlencode({"symbol": symbol, "origClientOrderIdList": json.dumps(cids, separators=(",", ":")),
                           "timestamp": str(int(time.time() * 1000))})
            q += "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
            t0 = time.monotonic_ns()
            async with s.delete(f"{rest_url}/fapi/v1/batchOrders?{q}") as resp:
                await resp.read()
            batch.append((time.monotonic_ns() - t0) / 1e6)
    a = sorted(modify)
    b = sorted(batch)
    return {"modify_rtt_p50_us": round(a[len(a) // 2] / 1000, 1) if a else 0.0,
            "batch_cancel_10_ms": round(b[len(b) // 2], 2) if b else 0.0}


def used_weight(rest_url: str, key: str, secret: str, symbol: str = "BTCUSDT") -> int:
    """The request weight the venue counted this minute (``X-MBX-USED-WEIGHT-1M``), read from a
    signed ``GET /fapi/v1/openOrders?symbol=`` (weight 1, counted in it: subtract it)."""
    import hashlib
    import hmac
    import urllib.request
    from urllib.parse import urlencode

    q = urlencode({"symbol": symbol, "timestamp": str(int(time.time() * 1000))})
    q += "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{rest_url}/fapi/v1/openOrders?{q}", headers={"X-MBX-APIKEY": key})
    with urllib.request.urlopen(req, timeout=5) as r:
        return int(r.headers["X-MBX-USED-WEIGHT-1M"])
