"""Market streams: who is subscribed to what (``Hub``) and the payloads sent to them (``Feed``).

A market source (generator or replay) changes the true book and then hands the same event to
the ``Feed``, which encodes it once per stream that has subscribers: ``@depth@0ms`` per event,
``@depth`` / ``@depth@100ms`` / ``@depth@500ms`` merged over their interval (each with its own
``pu`` chain, as on the exchange), ``@bookTicker`` when the top changes, ``@trade`` /
``@aggTrade`` per trade and ``@markPrice[@1s]`` on a timer. Frames a replay carries verbatim
are re-served as recorded, and the Feed then does not synthesize that stream. Diff faults are
applied here, at send time, so the true book is never corrupted by them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from procs.exchange_sim.faults import Faults
from procs.exchange_sim.market.true_book import Market, fixed
from procs.exchange_sim.trace import Trace

_FINAL_U = re.compile(rb'"u":(\d+)')
DEPTH_INTERVALS_MS = {"depth": 250, "depth@500ms": 500, "depth@100ms": 100}
# partial book depth: kind -> (levels, interval ms), e.g. "depth5", "depth20@100ms"
PARTIAL_KINDS = {
    f"depth{n}{suffix}": (n, ms) for n in (5, 10, 20) for suffix, ms in (("", 250), ("@500ms", 500), ("@100ms", 100))
}


class StreamSession(Protocol):
    """What the Hub needs from a WebSocket connection subscribed to market streams."""

    combined: bool
    paused: bool

    def send_bytes(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def stream_symbol(stream: str) -> str:
    return stream.split("@", 1)[0].upper()


class Hub:
    """Subscriptions of market sessions, and fan-out of one payload to every subscriber."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.subs: dict[str, set[StreamSession]] = {}
        self.sessions: set = set()  # every open market connection (disconnect / malformed faults)
        self.any_subscriber = asyncio.Event()  # a replay waits for its first listener
        self._prefix: dict[str, bytes] = {}
        self.frames_sent = 0
        self.paused = 0  # sessions whose transport asked us to stop writing
        self._writable = asyncio.Event()
        self._writable.set()
        self.on_new_stream: Callable[[str], None] = lambda stream: None
        # lockstep replay only: while ``hold`` is set, payloads wait in ``held`` for ``release()``
        self.hold = False
        self.held: list[tuple[str, str, bytes, int]] = []
        # the latency trace while it is on (procs.exchange_sim.trace binds it), else None: one test per payload
        self.trace: Trace | None = None

    def subscribe(self, session: StreamSession, stream: str) -> None:
        subs = self.subs.get(stream)
        if subs is None:
            subs = self.subs[stream] = set()
            self.on_new_stream(stream)
        subs.add(session)
        self.any_subscriber.set()

    def unsubscribe(self, session: StreamSession, stream: str) -> None:
        subs = self.subs.get(stream)
        if subs is not None:
            subs.discard(session)
            if not subs:
                del self.subs[stream]

    def drop_session(self, session: StreamSession, streams: Iterable[str]) -> None:
        for s in list(streams):
            self.unsubscribe(session, s)
        if session.paused:
            self.set_paused(session, False)
        if self.trace is not None:
            self.trace.dropped(session)

    def set_paused(self, session: StreamSession, paused: bool) -> None:
        if session.paused == paused:
            return
        session.paused = paused
        self.paused += 1 if paused else -1
        if self.paused == 0:
            self._writable.set()
        else:
            self._writable.clear()

    async def wait_writable(self) -> None:
        """Block while any subscriber's socket buffer is full (replay at speed 0)."""
        await self._writable.wait()

    def release(self) -> int:
        """Publish the payloads held back while ``hold`` was set (in order); returns how many."""
        held, self.held = self.held, []
        for stream, symbol, payload, u in held:
            self.publish(stream, symbol, payload, u)
        return len(held)

    def publish(self, stream: str, symbol: str, payload: bytes, u: int = 0) -> None:
        """Send ``payload`` to every subscriber of ``stream``; ``u`` (a depth event's final update
        id, 0 for anything else) is what the latency trace records when the write happens."""
        if self.hold:
            self.held.append((stream, symbol, payload, u))
            return
        subs = self.subs.get(stream)
        if not subs or self.faults.stalled(symbol):
            return
        prefix = self._prefix.get(stream)
        if prefix is None:
            prefix = self._prefix[stream] = b'{"stream":"' + stream.encode() + b'","data":'
        wrapped = None
        trace = self.trace if u else None
        for s in list(subs):
            if s.combined:
                if wrapped is None:
                    wrapped = prefix + payload + b"}"
                s.send_bytes(wrapped)
            else:
                s.send_bytes(payload)
            self.frames_sent += 1
            if trace is not None:
                trace.queued(s, symbol, u)


class _DepthAgg:
    """One interval depth stream of one symbol: changes merged since its last event."""

    __slots__ = ("stream", "symbol", "interval_s", "bids", "asks", "first_u", "last_u", "prev_u", "due")

    def __init__(self, stream: str, symbol: str, interval_ms: int) -> None:
        self.stream, self.symbol = stream, symbol
        self.interval_s = interval_ms / 1000.0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.first_u = 0
        self.last_u = 0
        self.prev_u = 0
        self.due = 0.0


class LevelEncoder:
    """``[["price","qty"],..]`` text for one instrument, with the decimal text of recent prices
    and quantities cached (the touch repeats the same few values all the time)."""

    __slots__ = ("ps", "qs", "_px", "_qty")

    def __init__(self, ps: int, qs: int) -> None:
        self.ps, self.qs = ps, qs
        self._px: dict[int, str] = {}
        self._qty: dict[int, str] = {}

    def encode(self, levels: Iterable[tuple[int, int]]) -> str:
        px_c, qty_c = self._px, self._qty
        out = []
        for p, q in levels:
            ptxt = px_c.get(p)
            if ptxt is None:
                if len(px_c) > 50_000:
                    px_c.clear()
                ptxt = px_c[p] = fixed(p, self.ps)
            qtxt = qty_c.get(q)
            if qtxt is None:
                if len(qty_c) > 50_000:
                    qty_c.clear()
                qtxt = qty_c[q] = fixed(q, self.qs)
            out.append(f'["{ptxt}","{qtxt}"]')
        return ",".join(out)


class Feed:
    """Encodes market events into the subscribed streams."""

    def __init__(self, market: Market, hub: Hub, faults: Faults) -> None:
        self.market, self.hub, self.faults = market, hub, faults
        self.raw_streams: set[str] = set()  # provided verbatim by a replay
        self._aggs: dict[str, _DepthAgg] = {}
        self._partials: dict[str, list] = {}  # stream -> [symbol, levels, interval_s, due, prev_u]
        self._held: dict[str, tuple[bytes, int]] = {}  # reorder_diff: the event sent after the next one
        self._top: dict[str, tuple[int, int, int, int]] = {}
        self._agg_trade_id = 1
        self._enc: dict[str, LevelEncoder] = {}
        self._mark_n = 0
        self.depth_events = 0
        hub.on_new_stream = self._on_new_stream

    def _on_new_stream(self, stream: str) -> None:
        sym, _, kind = stream.partition("@")
        interval = DEPTH_INTERVALS_MS.get(kind)
        symbol = sym.upper()
        partial = PARTIAL_KINDS.get(kind)
        if partial is not None and symbol in self.market.books and stream not in self.raw_streams:
            n, ms = partial
            self._partials[stream] = [symbol, n, ms / 1000.0, time.monotonic() + ms / 1000.0,
                                      self.market.books[symbol].last_u]
        if interval is not None and stream not in self.raw_streams and symbol in self.market.books:
            # The stream's pu chain starts at the book's current id: a client syncs from a
            # snapshot and the first-event rule, so the first pu is never checked.
            agg = self._aggs[stream] = _DepthAgg(stream, symbol, interval)
            agg.prev_u = self.market.books[symbol].last_u
            agg.due = time.monotonic() + agg.interval_s

    # -- depth --------------------------------------------------------------------------------
    def depth_event(
        self, symbol: str, first_u: int, last_u: int, prev_u: int, bids: list[tuple[int, int]],
        asks: list[tuple[int, int]], e_ms: int, t_ms: int,
    ) -> None:
        """One depth event already applied to the true book."""
        self.depth_events += 1
        sym_l = symbol.lower()
        subs = self.hub.subs
        s0 = sym_l + "@depth@0ms"
        if s0 in subs and s0 not in self.raw_streams:
            self.send_depth(s0, symbol, self._depth_payload(symbol, first_u, last_u, prev_u, bids, asks, e_ms, t_ms),
                            last_u)
        if self._aggs:
            for kind in DEPTH_INTERVALS_MS:
                agg = self._aggs.get(sym_l + "@" + kind)
                if agg is not None:
                    if not agg.first_u:
                        agg.first_u = first_u
                    agg.last_u = last_u
                    for p, q in bids:
                        agg.bids[p] = q
                    for p, q in asks:
                        agg.asks[p] = q
        tick = sym_l + "@bookTicker"
        if tick in subs and tick not in self.raw_streams:
            self._book_ticker(symbol, tick, last_u, e_ms, t_ms)

    def _depth_payload(
        self, symbol: str, first_u: int, last_u: int, prev_u: int, bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]], e_ms: int, t_ms: int,
    ) -> bytes:
        enc = self._enc.get(symbol)
        if enc is None:
            ins = self.market.instruments[symbol]
            enc = self._enc[symbol] = LevelEncoder(ins.price_scale, ins.qty_scale)
        return (
            f'{{"e":"depthUpdate","E":{e_ms},"T":{t_ms},"s":"{symbol}","U":{first_u},"u":{last_u},'
            f'"pu":{prev_u},"b":[{enc.encode(bids)}],"a":[{enc.encode(asks)}]}}'
        ).encode()

    def send_depth(self, stream: str, symbol: str, payload: bytes, u: int = 0) -> None:
        """Send one depth event (final update id ``u``; 0 = not known, not traced) on one
        stream, through the armed diff faults."""
        held = self._held.pop(stream, None)
        if held is not None:
            self.hub.publish(stream, symbol, payload, u)
            self.hub.publish(stream, symbol, held[0], held[1])
            return
        fault = self.faults.take_diff_fault(symbol)
        if fault is None:
            self.hub.publish(stream, symbol, payload, u)
        elif fault == "drop_diff":
            pass
        elif fault == "duplicate_diff":
            self.hub.publish(stream, symbol, payload, u)
            self.hub.publish(stream, symbol, payload, u)
        elif fault == "reorder_diff":
            self._held[stream] = (payload, u)
        elif fault == "seq_gap":
            msg = json.loads(payload)
            msg["pu"] = msg.get("pu", 0) - 1
            self.hub.publish(stream, symbol, json.dumps(msg, separators=(",", ":")).encode(), u)

    def flush_aggregates(self, now: float, e_ms: int) -> None:
        """Emit every interval depth stream whose interval has passed (called on a timer)."""
        for stream, agg in list(self._aggs.items()):
            if stream not in self.hub.subs:
                del self._aggs[stream]
                continue
            if now < agg.due:
                continue
            agg.due = now + agg.interval_s
            if not agg.first_u:
                continue
            bids = sorted(agg.bids.items(), reverse=True)
            asks = sorted(agg.asks.items())
            payload = self._depth_payload(agg.symbol, agg.first_u, agg.last_u, agg.prev_u, bids, asks, e_ms, e_ms)
            last_u = agg.prev_u = agg.last_u
            agg.first_u = 0
            agg.bids.clear()
            agg.asks.clear()
            self.send_depth(stream, agg.symbol, payload, last_u)

    def flush_partials(self, now: float, e_ms: int) -> None:
        """Partial book depth streams: the top N levels every interval, in the depthUpdate shape."""
        if not self._partials:
            return
        for stream, st in list(self._partials.items()):
            if stream not in self.hub.subs:
                del self._partials[stream]
                continue
            symbol, n, interval_s, due, prev_u = st
            if now < due:
                continue
            st[3] = now + interval_s
            book = self.market.books[symbol]
            bids, asks = book.top(n)
            st[4] = book.last_u
            self.hub.publish(stream, symbol, self._depth_payload(symbol, book.last_u, book.last_u, prev_u,
                                                                 bids, asks, e_ms, e_ms))

    def _book_ticker(self, symbol: str, stream: str, last_u: int, e_ms: int, t_ms: int) -> None:
        book = self.market.books[symbol]
        bb, ba = book.best_bid_px(), book.best_ask_px()
        if bb is None or ba is None:
            return
        top = (bb, book.bids[bb], ba, book.asks[ba])
        if self._top.get(symbol) == top:
            return
        self._top[symbol] = top
        ins = book.instrument
        ps, qs = ins.price_scale, ins.qty_scale
        self.hub.publish(stream, symbol, (
            f'{{"e":"bookTicker","u":{last_u},"s":"{symbol}","b":"{fixed(bb, ps)}","B":"{fixed(top[1], qs)}",'
            f'"a":"{fixed(ba, ps)}","A":"{fixed(top[3], qs)}","T":{t_ms},"E":{e_ms}}}'
        ).encode())

    # -- trades and mark ----------------------------------------------------------------------
    def trade(self, symbol: str, trade_id: int, px: int, qty: int, buyer_is_maker: bool, t_ms: int) -> None:
        self.market.trade_log.append((symbol, trade_id, px, qty, buyer_is_maker, t_ms))
        sym_l = symbol.lower()
        subs = self.hub.subs
        s_t, s_a = sym_l + "@trade", sym_l + "@aggTrade"
        if s_t not in subs and s_a not in subs:
            return
        ins = self.market.instruments[symbol]
        p, q = fixed(px, ins.price_scale), fixed(qty, ins.qty_scale)
        m = "true" if buyer_is_maker else "false"
        if s_t in subs and s_t not in self.raw_streams:
            self.hub.publish(s_t, symbol, (
                f'{{"e":"trade","E":{t_ms},"T":{t_ms},"s":"{symbol}","t":{trade_id},"p":"{p}","q":"{q}",'
                f'"X":"MARKET","m":{m}}}'
            ).encode())
        if s_a in subs and s_a not in self.raw_streams:
            self.hub.publish(s_a, symbol, (
                f'{{"e":"aggTrade","E":{t_ms},"a":{self._agg_trade_id},"s":"{symbol}","p":"{p}","q":"{q}",'
                f'"nq":"{q}","f":{trade_id},"l":{trade_id},"T":{t_ms},"m":{m}}}'
            ).encode())
            self._agg_trade_id += 1

    def mark_tick(self, e_ms: int) -> None:
        """Publish mark prices (``@markPrice@1s`` every call, ``@markPrice`` every third)."""
        self._mark_n += 1
        next_funding = (e_ms // 28_800_000 + 1) * 28_800_000
        for symbol, book in self.market.books.items():
            sym_l = symbol.lower()
            streams = [sym_l + "@markPrice@1s"] + ([sym_l + "@markPrice"] if self._mark_n % 3 == 0 else [])
            streams = [s for s in streams if s in self.hub.subs and s not in self.raw_streams]
            if not streams:
                continue
            mark = self.market.mark_price_ticks(symbol)
            if mark is None:
                continue
            p = fixed(mark, book.instrument.price_scale)
            payload = (
                f'{{"e":"markPriceUpdate","E":{e_ms},"s":"{symbol}","p":"{p}","P":"{p}","i":"{p}",'
                f'"r":"0.00010000","T":{next_funding}}}'
            ).encode()
            for s in streams:
                self.hub.publish(s, symbol, payload)

    def raw(self, stream: str, symbol: str, payload: bytes) -> None:
        """Re-serve a recorded payload verbatim (depth payloads go through the diff faults)."""
        if stream not in self.hub.subs:
            return
        if "@depth" in stream:
            u = 0
            if self.hub.trace is not None:  # the latency trace joins frames by their final update id
                m = _FINAL_U.search(payload)
                u = int(m.group(1)) if m else 0
            self.send_depth(stream, symbol, payload, u)
        else:
            self.hub.publish(stream, symbol, payload)
