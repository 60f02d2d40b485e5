"""``/ws``: the monitor's read-only dashboard feed for many clients (aiohttp WebSocket).

A client subscribes to topics, each at its own maximum rate; the server sends the *latest* state
of each subscription at most that often (conflation per client), so a slow client loses
intermediate frames, never memory, and never slows the others: each client has its own sender
task and nothing queues for it but the newest value of what it asked for. The feed reads shared
memory as an observer (state blocks through their seqlock, rings without a consumer slot), once
per ``[monitor] feed_poll_ms`` for all clients together, and only while someone is subscribed
(docs/decisions/034-dashboard-feed-conflation.md).

Messages are JSON objects with a ``type`` field; the schema is in docs/feed.md. Off loopback (the
monitor bound to another address, or a client from one) the ops token is required:
``Authorization: Bearer <token>`` or ``/ws?token=<token>``.

client -> server  {"type": "subscribe", "topic": T, "symbol": S?, "depth": N?, "max_hz": F?}
                  {"type": "unsubscribe", "topic": T, "symbol": S?}   {"type": "ping", "id": X?}
server -> client  welcome | subscribed | unsubscribed | error | pong | book | trades | orders |
                  positions | risk | alerts | latency | processes
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from aiohttp import WSMsgType, web

from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.core.registry import ALERT_PRODUCERS, EXEC, MD_TRADE, alerts_name, book_state_name
from shm.counters import summary_us

from .config import MonitorConfig
from .orders import event_dict
from .shmview import InstanceView


class Source(Protocol):
    """What the feed reads of the monitor (``procs.monitor.ops.Monitor``)."""

    cfg: MonitorConfig
    view: InstanceView
    symbols: list[str]
    token: str

    def symbol_name(self, sid: int) -> str: ...
    def positions(self) -> dict[str, Any]: ...
    def risk(self) -> dict[str, Any] | None: ...

# topic -> default maximum rate (Hz); 0 = as it happens (alerts)
TOPICS = {"book": 10.0, "trades": 10.0, "orders": 10.0, "positions": 4.0, "risk": 4.0, "alerts": 0.0,
          "latency": 1.0, "processes": 1.0}
PER_SYMBOL = ("book", "trades")
STREAMS = ("trades", "orders", "alerts")  # event topics: a client gets what came since its last message
MAX_DEPTH = 50
HISTORY = 1000  # events kept per stream for clients that fall behind (older ones are counted as dropped)
MAX_SUBSCRIPTIONS = 64
# A client whose unsent bytes exceed this gets nothing new until they drain: with a small kernel send
# buffer (SNDBUF_BYTES) the frames waiting for a slow client stay a few, and what it gets next is the
# newest state, not a backlog of old ones
BACKLOG_BYTES = 16 * 1024
SNDBUF_BYTES = 64 * 1024

_enc = msgspec.json.Encoder()


class Request(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    topic: str = ""
    symbol: str = ""
    depth: int = 10
    max_hz: float | None = None
    id: Any = None


def loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Stream:
    """Events of one topic (one symbol for trades) with a running sequence; bounded."""

    events: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    seq: int = 0  # sequence of the newest event

    def add(self, items: list[dict]) -> None:
        for item in items:
            self.seq += 1
            self.events.append((self.seq, item))

    def since(self, seq: int) -> tuple[list[dict], int]:
        """(events after ``seq``, how many of those were already gone)."""
        if seq >= self.seq:
            return [], 0
        oldest = self.events[0][0] if self.events else self.seq + 1
        dropped = max(0, oldest - seq - 1)
        return [e for s, e in self.events if s > seq], dropped


@dataclass
class Subscription:
    topic: str
    symbol: str
    depth: int
    interval_s: float
    sent_at: float = -1e9
    sent_version: Any = None  # the snapshot version (or stream sequence) last sent

    @property
    def key(self) -> tuple[str, str, int]:
        """What the reader keeps for it: (topic, symbol, depth), "" and 0 where they do not apply."""
        return (self.topic, self.symbol, self.depth)


class Client:
    """One WebSocket: its subscriptions and the task that sends what is due."""

    def __init__(self, ws: web.WebSocketResponse, remote: str, transport: Any = None) -> None:
        self.ws = ws
        self.remote = remote
        self.transport = transport
        self.subs: dict[tuple[str, str], Subscription] = {}
        self.wake = asyncio.Event()
        self.sent = 0
        self.skipped = 0  # rounds held back because the client had not taken the last ones yet

    def backlogged(self) -> bool:
        """Whether what was sent before still waits in our buffer (the client reads slower than we send)."""
        t = self.transport
        return t is not None and not t.is_closing() and t.get_write_buffer_size() > BACKLOG_BYTES


class Feed:
    """The shared reader and the clients (see the module docstring)."""

    def __init__(self, mon: Source, instruments: dict[str, Instrument] | None = None) -> None:
        self.mon = mon
        self.cfg = mon.cfg
        self.instruments = instruments or {}
        self.clients: set[Client] = set()
        self.snapshots: dict[tuple, tuple[Any, str]] = {}  # (topic, symbol, depth) -> (version, JSON text)
        self.streams: dict[tuple[str, str], Stream] = {}
        self._computed_at: dict[str, float] = {}
        self._wanted: dict[tuple, float] | None = None  # recomputed when a subscription changes
        self.armed: dict[tuple, set[Client]] = {}  # key -> clients with a due subscription waiting for it to change
        self._book_dtype = M.book_update_dtype(mon.view.depth)
        self._task: asyncio.Task | None = None
        self.messages = 0
        self.view = InstanceView(mon.view.instance, mon.view.depth)  # its own ring cursors, not the monitor's
        self._exec = self.view.ring(EXEC, M.OrderEvent)
        self._trades = self.view.ring(MD_TRADE, M.Trade)
        self._alerts = {p: self.view.ring(alerts_name(p), M.Alert) for p in ALERT_PRODUCERS}

    # -- the shared reader ----------------------------------------------------------------------
    def wanted(self) -> dict[tuple, float]:
        """Every (topic, symbol, depth) some client subscribes to -> the shortest interval asked."""
        if self._wanted is None:
            out: dict[tuple, float] = {}
            for c in self.clients:
                for s in c.subs.values():
                    out[s.key] = min(out.get(s.key, 1e9), s.interval_s)
            self._wanted = out
        return self._wanted

    def read(self, now: float) -> set[tuple]:
        """Update the snapshots and streams someone wants; the keys that changed."""
        wanted = self.wanted()
        topics = {k[0] for k in wanted}
        changed: set[tuple] = set()
        for key, interval in wanted.items():
            topic, symbol, depth = key
            if topic == "book":
                if self._book(symbol, depth):
                    changed.add(key)
            elif topic not in STREAMS and now - self._computed_at.get(topic, -1e9) >= interval:
                self._computed_at[topic] = now
                if self._snapshot(topic):
                    changed.add(key)
        for topic in STREAMS:
            if topic in topics:
                changed |= self._read_stream(topic)
        return changed

    def _read_stream(self, topic: str) -> set[tuple]:
        """Take the ring's new records into the topic's stream(s); the keys that got any."""
        if topic == "trades":
            return {("trades", symbol, 0) for symbol in self._poll_trades()}
        if topic == "orders":
            batch = self._exec.poll(limit=4096)
            self.stream("orders", "").add([event_dict(e) | {"symbol": self.mon.symbol_name(int(e["symbol_id"]))}
                                           for e in batch])
            return {("orders", "", 0)} if len(batch) else set()
        got = False
        for proc, ring in self._alerts.items():
            recs = ring.poll(limit=256)
            self.stream("alerts", "").add([self._alert(proc, a) for a in recs])
            got |= bool(len(recs))
        return {("alerts", "", 0)} if got else set()

    def stream(self, topic: str, symbol: str) -> Stream:
        s = self.streams.get((topic, symbol))
        if s is None:
            s = self.streams[(topic, symbol)] = Stream()
        return s

    def _book(self, symbol: str, depth: int) -> bool:
        got = self.view.state(book_state_name(symbol), self._book_dtype).read()
        if got is None:
            return False
        rec, version = got[0][0], got[1]
        key = ("book", symbol, depth)
        old = self.snapshots.get(key)
        if old is not None and old[0] == version:
            return False
        inst = self.instruments.get(symbol)
        nb, na = min(int(rec["n_bids"]), depth), min(int(rec["n_asks"]), depth)
        msg = {"type": "book", "symbol": symbol, "seq": int(rec["seq"]), "update_id": int(rec["update_id"]),
               "ts_pub_ns": int(rec["ts_pub"]), "resyncing": bool(int(rec["flags"]) & M.BOOK_RESYNCING),
               "bids": [[_px(inst, int(p)), _qty(inst, int(q))] for p, q in zip(rec["bid_px"][:nb], rec["bid_qty"][:nb],
                                                                              strict=True)],
               "asks": [[_px(inst, int(p)), _qty(inst, int(q))] for p, q in zip(rec["ask_px"][:na], rec["ask_qty"][:na],
                                                                              strict=True)]}
        self.snapshots[key] = (version, _enc.encode(msg).decode())
        return True

    def _poll_trades(self) -> set[str]:
        recs = self._trades.poll(limit=4096)
        by_symbol: dict[str, list[dict]] = {}
        for t in recs:
            symbol = self.mon.symbol_name(int(t["symbol_id"]))
            inst = self.instruments.get(symbol)
            by_symbol.setdefault(symbol, []).append({
                "trade_id": int(t["trade_id"]), "price": _px(inst, int(t["price"])), "qty": _qty(inst, int(t["qty"])),
                "aggressor": "sell" if int(t["flags"]) & M.TRADE_BUYER_MAKER else "buy",
                "ts_event_ms": int(t["ts_event"]) // 1_000_000, "ts_pub_ns": int(t["ts_pub"])})
        for symbol, rows in by_symbol.items():
            self.stream("trades", symbol).add(rows)
        return set(by_symbol)

    def _snapshot(self, topic: str) -> bool:
        body = self._compute(topic)
        text = _enc.encode({"type": topic, **body}).decode()
        key = (topic, "", 0)
        old = self.snapshots.get(key)
        if old is not None and old[1] == text:
            return False
        self.snapshots[key] = ((old[0] + 1) if old else 1, text)
        return True

    def _compute(self, topic: str) -> dict[str, Any]:
        mon = self.mon
        if topic == "positions":
            return mon.positions()
        if topic == "risk":
            return {"risk": mon.risk()}
        if topic == "latency":
            return {"stages": [{"proc": proc, "stage": stage, **summary_us(counts)}
                               for proc, (_c, hists) in sorted(mon.view.all_counters().items())
                               for stage, counts in hists.items()]}
        if topic == "processes":
            return {"processes": mon.view.statuses(mon.cfg.required, mon.cfg.stale_after_s)}
        raise ValueError(topic)

    def _alert(self, proc: str, a: Any) -> dict[str, Any]:
        return {"ts": int(a["ts"]) / 1e9, "proc": proc, "level": int(a["level"]), "code": int(a["code"]),
                "symbol": self.mon.symbol_name(int(a["symbol_id"])), "value": float(a["value"]),
                "text": bytes(a["text"]).rstrip(b"\0").decode(errors="replace")}

    async def run(self) -> None:
        """The reader loop: while anyone is subscribed, read every feed_poll_ms and wake the clients."""
        period = self.cfg.feed_poll_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            if self.clients:
                for key in self.read(loop.time()):
                    for c in self.armed.pop(key, ()):
                        c.wake.set()
            await asyncio.sleep(period)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for c in list(self.clients):
            await c.ws.close()
        self.view.close()

    # -- one client -----------------------------------------------------------------------------
    def due(self, c: Client, now: float) -> tuple[list[str], float]:
        """(messages to send now, seconds until the next subscription may send). A subscription that
        may send but has nothing new is armed: the reader wakes the client when its key changes."""
        out: list[str] = []
        wait = 1.0
        for s in c.subs.values():
            next_at = s.sent_at + s.interval_s
            if now < next_at:
                wait = min(wait, next_at - now)
                continue
            msg = self._message(s)
            if msg is not None:
                out.append(msg)
                s.sent_at = now
                if s.interval_s:
                    wait = min(wait, s.interval_s)
                    continue
            self.armed.setdefault(s.key, set()).add(c)
        return out, wait

    def _message(self, s: Subscription) -> str | None:
        if s.topic in STREAMS:
            stream = self.stream(s.topic, s.symbol)
            events, dropped = stream.since(s.sent_version)
            if not events:
                return None
            s.sent_version = stream.seq
            body: dict[str, Any] = {"type": s.topic, s.topic: events, "dropped": dropped}
            if s.symbol:
                body["symbol"] = s.symbol
            return _enc.encode(body).decode()
        snap = self.snapshots.get(s.key)
        if snap is None or snap[0] == s.sent_version:
            return None
        s.sent_version = snap[0]
        return snap[1]

    async def serve(self, c: Client) -> None:
        """The client's sender: what is due, whenever the reader or the clock says so."""
        loop = asyncio.get_running_loop()
        while not c.ws.closed:
            if c.backlogged():  # conflate: its subscriptions stay due, and get the newest once it has read
                c.skipped += 1
                await asyncio.sleep(self.cfg.feed_poll_ms / 1000)
                continue
            msgs, wait = self.due(c, loop.time())
            for m in msgs:
                await c.ws.send_str(m)  # a slow client waits here, alone; its snapshots keep being replaced
                c.sent += 1
                self.messages += 1
            c.wake.clear()
            try:
                await asyncio.wait_for(c.wake.wait(), wait)
            except TimeoutError:
                pass

    def handle(self, c: Client, raw: str) -> dict[str, Any] | None:
        """A client's request -> the answer (None for none); errors name the field."""
        try:
            req = msgspec.json.decode(raw, type=Request)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return {"type": "error", "error": f"bad request: {exc}", "field": ""}
        if req.type == "ping":
            return {"type": "pong", "id": req.id, "ts_ns": time.monotonic_ns()}
        if req.type not in ("subscribe", "unsubscribe"):
            return {"type": "error", "error": f"unknown type {req.type!r}: subscribe, unsubscribe or ping",
                    "field": "type"}
        if req.topic not in TOPICS:
            return {"type": "error", "error": f"unknown topic {req.topic!r}; topics: {', '.join(TOPICS)}",
                    "field": "topic"}
        symbol = req.symbol if req.topic in PER_SYMBOL else ""
        if req.topic in PER_SYMBOL and symbol not in self.mon.symbols:
            return {"type": "error", "error": f"unknown symbol {req.symbol!r}; symbols: {', '.join(self.mon.symbols)}",
                    "field": "symbol"}
        key = (req.topic, symbol)
        self._wanted = None
        if req.type == "unsubscribe":
            c.subs.pop(key, None)
            return {"type": "unsubscribed", "topic": req.topic, "symbol": symbol}
        hz = TOPICS[req.topic] if req.max_hz is None else req.max_hz
        if not 0 <= hz <= self.cfg.feed_max_hz:
            return {"type": "error", "error": f"max_hz must be 0..{self.cfg.feed_max_hz} (0 = as it happens)",
                    "field": "max_hz"}
        if req.topic == "book" and not 1 <= req.depth <= min(MAX_DEPTH, self.mon.view.depth):
            return {"type": "error", "error": f"depth must be 1..{min(MAX_DEPTH, self.mon.view.depth)}",
                    "field": "depth"}
        if key not in c.subs and len(c.subs) >= MAX_SUBSCRIPTIONS:
            return {"type": "error", "error": f"at most {MAX_SUBSCRIPTIONS} subscriptions", "field": "topic"}
        sub = Subscription(req.topic, symbol, req.depth if req.topic == "book" else 0, 1 / hz if hz else 0.0)
        if req.topic in STREAMS:  # a new subscriber gets what comes from now on
            self._read_stream(req.topic)
            sub.sent_version = self.stream(req.topic, symbol).seq
        else:
            self._computed_at.pop(req.topic, None)  # a first snapshot at once
        c.subs[key] = sub
        return {"type": "subscribed", "topic": req.topic, "symbol": symbol, "max_hz": hz,
                **({"depth": req.depth} if req.topic == "book" else {})}

    def authorized(self, request: web.Request) -> bool:
        if loopback(self.cfg.host) and loopback(request.remote):
            return True
        if not self.mon.token:
            return False
        auth = request.headers.get("Authorization", "")
        given = auth.partition(" ")[2].strip() if auth.lower().startswith("bearer ") else request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self.mon.token.encode())

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            raise web.HTTPForbidden(reason="off loopback the feed needs the ops token: "
                                           "Authorization: Bearer <token> or /ws?token=<token>")
        if len(self.clients) >= self.cfg.feed_max_clients:
            raise web.HTTPServiceUnavailable(reason=f"feed full: [monitor] feed_max_clients={self.cfg.feed_max_clients}")
        # no per-message deflate: each message is encoded once for every client, compressing it per
        # client would cost more CPU than sending it (loopback and LAN viewers)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=16 * 1024, compress=False)
        await ws.prepare(request)
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
        c = Client(ws, request.remote or "", transport)
        self.clients.add(c)
        self.start()
        sender = asyncio.get_running_loop().create_task(self.serve(c))
        try:
            await ws.send_str(_enc.encode({"type": "welcome", "topics": TOPICS, "symbols": self.mon.symbols,
                                           "max_hz": self.cfg.feed_max_hz}).decode())
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                answer = self.handle(c, msg.data)
                if answer is not None:
                    await ws.send_str(_enc.encode(answer).decode())
                c.wake.set()
        finally:
            self.clients.discard(c)
            self._wanted = None
            for waiting in self.armed.values():
                waiting.discard(c)
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, ConnectionResetError):
                pass
        return ws


def _px(inst: Instrument | None, ticks: int) -> str | int:
    return inst.ticks_to_price(ticks) if inst is not None else ticks


def _qty(inst: Instrument | None, lots: int) -> str | int:
    return inst.lots_to_qty(lots) if inst is not None else lots
