"""Replay: re-serve a recording (any format ``procs.venue.binance.recordings`` reads) as the live market.

The recording's frames go out verbatim to subscribers of their stream names, at the recorded
pace times ``speed`` (``speed = 0``: as fast as the slowest subscriber reads). Every depth
event is also applied to the true book, which is what ``GET /fapi/v1/depth`` answers from, so
a snapshot always agrees with the stream (``lastUpdateId`` = the last applied ``u``). Depth
variants the recording lacks are synthesized from the same events by the Feed, trades and
marks reach the market listeners, and the market clock follows the recorded exchange time.

The first snapshot of each symbol is loaded before anything is served: a client that asks for
a snapshot early gets a newer one than the diffs it buffered, which the exchange's procedure
handles (it drops diffs older than the snapshot). Recorded diffs older than the book are
served but not applied. The frames are read into memory first (the recordings are a few MB).

For the replay harness (``b25 replay``, procs/tools/replay) and only when configured: ``replay_limit``
serves a prefix of the recording; ``sim_clock`` writes each frame's recorded receive time
to the ``sim.clock`` block (procs/core/simclock.py) before the frame is served; ``lockstep``
runs the simulated clock instead of the recorded pace: every frame is an APPLY event at its
exchange time and a MARKET event at its receive time in the event queue
(procs/exchange_sim/eventclock.py), and the clock moves only when ``barrier.wait(t)`` says the
pipeline has consumed and answered everything (procs/tools/replay/lockstep.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec
import numpy as np

from procs.core import log
from procs.core.instruments import Instrument, instrument_for_scales
from procs.exchange_sim.config import SimConfig
from procs.exchange_sim.eventclock import APPLY, MARKET, EventQueue, Links, timer_stops_clock
from procs.exchange_sim.market.feed import Feed, Hub
from procs.exchange_sim.market.gate import SourceGate
from procs.exchange_sim.market.true_book import Market
from procs.venue.binance.recordings import iter_frames
from procs.venue.messages import Frame


class _Envelope(msgspec.Struct):
    stream: str
    data: msgspec.Raw


class _Depth(msgspec.Struct):
    E: int = 0
    T: int = 0
    s: str = ""
    U: int = 0
    u: int = 0
    pu: int = -1
    b: list[tuple[str, str]] = []
    a: list[tuple[str, str]] = []


class _Trade(msgspec.Struct):
    E: int = 0
    T: int = 0
    s: str = ""
    p: str = "0"
    q: str = "0"
    m: bool = False
    t: int = 0


class _Mark(msgspec.Struct):
    E: int = 0
    s: str = ""
    p: str = "0"


class _Snapshot(msgspec.Struct):
    lastUpdateId: int  # noqa: N815 (the exchange's field name)
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []
    E: int = 0


class _Times(msgspec.Struct):
    E: int = 0


_env = msgspec.json.Decoder(_Envelope)
_times = msgspec.json.Decoder(_Times)
_depth = msgspec.json.Decoder(_Depth)
_trade = msgspec.json.Decoder(_Trade)
_mark = msgspec.json.Decoder(_Mark)
_snap = msgspec.json.Decoder(_Snapshot)
# the decoders ``_serve`` uses, for b25 backtest's reading of the same frames (procs.exchange_sim.market.recorded.py)
ENVELOPE, DEPTH, TRADE, MARK = _env, _depth, _trade, _mark


def _decimals(text: str) -> int:
    dot = text.find(".")
    return 0 if dot < 0 else len(text) - dot - 1


def snapshot_of(frame: Frame) -> _Snapshot:
    """A snapshot frame's body (a REST depth body, or b25's ``<sym>@depthSnapshot`` envelope)."""
    return _snapshot_of(frame)


def _snapshot_of(frame: Frame) -> _Snapshot:
    raw = frame.raw
    if raw.startswith(b'{"stream"'):  # b25 recorder's ``<sym>@depthSnapshot`` envelope
        raw = bytes(_env.decode(raw).data)
    return _snap.decode(raw)


class Replay:
    """Drives the market from recorded frames."""

    def __init__(self, market: Market, feed: Feed, hub: Hub, config: SimConfig) -> None:
        self.market, self.feed, self.hub, self.config = market, feed, hub, config
        self.frames: list[Frame] = list(iter_frames(config.replay))
        if config.replay_limit:
            del self.frames[config.replay_limit:]
        self.clock = None  # SimClockWriter with [sim] sim_clock (the server opens it)
        self.barrier = None  # procs.tools.replay.lockstep.Barrier when config.lockstep (the server sets it)
        # lockstep: the event queue, the order connections' latencies and each frame's (x, r)
        # times (procs/exchange_sim/eventclock.py, latency.py); the server sets them
        self.queue: EventQueue | None = None
        self.links: Links | None = None
        self.times: tuple[np.ndarray, np.ndarray] | None = None
        self._last_x = 0  # the exchange time of the last frame applied (lockstep)
        self.exch_ns = np.zeros(len(self.frames), np.int64)  # each frame's exchange time (0: none)
        self._next = 0
        self.counts: Counter[str] = Counter()
        self.sent = 0
        self.finished = False
        self.gate = SourceGate()  # the server installs its own
        self._first_snap: dict[str, int] = {}  # symbol -> index of the frame preloaded
        self._snapshots: dict[str, list[int]] = {}  # symbol -> indices of its snapshot frames
        self._broken: set[str] = set()  # symbols whose chain broke, waiting for their next snapshot
        self._fresh: set[str] = set()  # symbols whose next applied diff bridges a snapshot
        self.symbols: list[str] = []
        self._prepare()

    def _prepare(self) -> None:
        """Find symbols and streams, make instruments for symbols exchangeInfo lacks, preload
        the first snapshot of each symbol."""
        scales: dict[str, tuple[int, int]] = {}
        sampled: Counter[str] = Counter()

        def widen(sym: str, levels: list[tuple[str, str]]) -> None:
            # the exchange writes every price with the symbol's full precision ("1.01000"), so
            # the written decimals give the scale even where trailing digits are zero
            ps, qs = scales.get(sym, (0, 0))
            scales[sym] = (max([ps] + [_decimals(p) for p, _ in levels]), max([qs] + [_decimals(q) for _, q in levels]))

        exch = self.exch_ns
        for i, fr in enumerate(self.frames):
            if fr.snapshot_symbol is not None:
                sym = fr.snapshot_symbol
                try:
                    snap = _snapshot_of(fr)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                exch[i] = snap.E * 1_000_000
                self._snapshots.setdefault(sym, []).append(i)
                if sym not in self._first_snap:
                    self._first_snap[sym] = i
                    widen(sym, snap.bids + snap.asks)
                continue
            try:
                env = _env.decode(fr.raw)
                exch[i] = _times.decode(env.data).E * 1_000_000
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            self.feed.raw_streams.add(env.stream)
            sym = env.stream.split("@", 1)[0].upper()
            if "@depth" in env.stream and sampled[sym] < 50:  # enough to see every decimal place
                sampled[sym] += 1
                d = _depth.decode(env.data)
                widen(sym, d.b + d.a)
        self.symbols = sorted(scales)
        for sym, (ps, qs) in scales.items():
            ins = self.market.instruments.get(sym)
            if ins is None or ins.price_scale < ps or ins.qty_scale < qs:
                self.market.add_symbol(self._instrument(sym, ins, ps, qs))
            elif sym not in self.market.books:
                self.market.add_symbol(ins)
        for sym, i in self._first_snap.items():
            self._load_snapshot(sym, _snapshot_of(self.frames[i]))
        # the market clock starts at the recording's first exchange time, not at wall time
        for fr in self.frames[:100]:
            if fr.snapshot_symbol is None and b'"E":' in fr.raw:
                try:
                    self.market.sim_time_ms = _depth.decode(_env.decode(fr.raw).data).E or None
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                if self.market.sim_time_ms:
                    break
        log.info("replay_loaded", files=list(self.config.replay), frames=len(self.frames),
                 symbols=sorted(scales), streams=sorted(self.feed.raw_streams))

    @staticmethod
    def _instrument(sym: str, ins: Instrument | None, ps: int, qs: int) -> Instrument:
        if ins is None:
            return instrument_for_scales(sym, ps, qs)
        return msgspec.structs.replace(ins, price_scale=max(ps, ins.price_scale), qty_scale=max(qs, ins.qty_scale))

    def _load_snapshot(self, sym: str, snap: _Snapshot) -> None:
        ins = self.market.instruments[sym]
        bids = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in snap.bids]
        asks = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in snap.asks]
        self.market.load_snapshot(sym, bids, asks, snap.lastUpdateId)
        self._fresh.add(sym)
        self.counts["snapshots_loaded"] += 1

    async def run(self) -> None:
        if self.config.replay_wait_subscriber:
            await self.hub.any_subscriber.wait()
        if self.barrier is not None:
            await self._run_lockstep()
        else:
            await self._run_free()
        self.finished = True
        log.info("replay_finished", frames=len(self.frames), sent=self.sent, **dict(self.counts))

    async def _run_free(self) -> None:
        """At the recorded pace times ``speed`` (``speed = 0``: as fast as the slowest reader)."""
        speed = self.config.speed
        t_wall0 = time.monotonic()
        t_rec0 = self.frames[0].ts_recv_ns if self.frames else 0
        since_yield = 0
        clock = self.clock
        for i, fr in enumerate(self.frames):
            if not self.gate.running:
                t_wall0 += await self.gate.wait()  # the recorded pace resumes, no burst
            if clock is not None:
                clock.set(fr.ts_recv_ns, i)
            if speed > 0:
                due = t_wall0 + (fr.ts_recv_ns - t_rec0) / 1e9 / speed
                ahead = due - time.monotonic()
                if ahead > 0.0005:
                    await asyncio.sleep(ahead)
                    since_yield = 0
            elif self.hub.paused:
                await self.hub.wait_writable()
            since_yield += 1
            if since_yield >= 64:
                since_yield = 0
                await asyncio.sleep(0)  # let REST and control messages in even when flat out
            self._serve_counted(i, fr)

    async def _run_lockstep(self) -> None:
        """The simulated clock: events in time order, the pipeline quiescent before the clock moves
        (procs/exchange_sim/eventclock.py has the rules; the barrier is procs/tools/replay/lockstep.py)."""
        barrier, clock, q = self.barrier, self.clock, self.queue
        assert barrier is not None and clock is not None and q is not None and self.times is not None
        r = self.times[1]
        last_r = int(r[-1]) if len(r) else 0  # strategy timers are not run past the recording's end
        self._next = 0
        self._last_x = int(self.times[0][0]) if len(r) else 0
        now = clock.now_ns
        self._push_next_frame()
        turns = 0
        while True:
            await barrier.wait(now)  # everything caused so far was consumed, answered and sent to us
            t = q.peek()
            if t is None:
                break
            due = barrier.next_timer()
            if timer_stops_clock(now, due, t, last_r, self._last_x):
                # a strategy timer falls due before the next event: the clock stops there and the
                # barrier fires it (its orders are then queued like any other)
                now = due
                clock.set(due, self.sent)
                await barrier.wait(due)
                continue
            t, kind, fn, args = q.pop()
            if kind == APPLY and not self.gate.running:
                await self.gate.wait()
            if t > now:
                now = t
                clock.set(t, self.sent)
                await barrier.wait(t)  # timers due by now fire (and are answered) first
            fn(*args)
            turns += 1
            if turns >= 64:  # let REST and control messages in
                turns = 0
                await asyncio.sleep(0)

    def _push_next_frame(self) -> None:
        """Queue the next frame with an effect (frames of a stream nobody reads and that change
        nothing at the exchange, such as a bookTicker, pass with no event)."""
        frames, q = self.frames, self.queue
        assert q is not None and self.times is not None
        x = self.times[0]
        while self._next < len(frames):
            i = self._next
            self._next += 1
            if self._inert(frames[i]):
                self.sent += 1
                continue
            q.push(int(x[i]), APPLY, self._apply, i)
            return

    def _inert(self, fr: Frame) -> bool:
        if fr.snapshot_symbol is not None:
            return False
        raw = fr.raw
        if not raw.startswith(b'{"stream":"'):
            return False
        end = raw.find(b'"', 11)
        stream = raw[11:end].decode("ascii", "replace")
        kind = stream.partition("@")[2]
        return not kind.startswith(("depth", "trade", "aggTrade", "markPrice")) and stream not in self.hub.subs

    def _apply(self, i: int) -> None:
        """Event APPLY: the exchange applies frame i; its market data waits for MARKET at r_i."""
        assert self.queue is not None and self.times is not None and self.links is not None
        self._last_x = int(self.times[0][i])
        self.links.begin_action()  # fills it causes reach b25 one response latency later
        hub = self.hub
        hub.hold = True
        try:
            self._serve_counted(i, self.frames[i])
        finally:
            hub.hold = False
        held, hub.held = hub.held, []
        if held:
            self.queue.push(int(self.times[1][i]), MARKET, self._market, held)
        self._push_next_frame()

    def _market(self, held: list) -> None:
        """Event MARKET: a frame's market data reaches the subscribers."""
        publish = self.hub.publish
        for item in held:
            publish(*item)

    def _serve_counted(self, i: int, fr: Frame) -> None:
        try:
            self._serve(i, fr)
        except (ValueError, KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            # a frame the true book cannot take is counted and skipped, never fatal
            self.counts["bad_frames"] += 1
            log.once(f"replay_bad_frame:{type(exc).__name__}", "warn", "replay_bad_frame", index=i,
                     reason=f"{type(exc).__name__}: {exc}")

    def _serve(self, i: int, fr: Frame) -> None:
        self.sent += 1
        if fr.snapshot_symbol is not None:
            sym = fr.snapshot_symbol
            snap = _snapshot_of(fr)
            book = self.market.books[sym]
            if self._first_snap.get(sym) != i and (snap.lastUpdateId > book.last_u or sym in self._broken):
                # the recorder resynced after a gap: the true book jumps with it
                if sym in self._broken:  # across a gap (another day's file) the mark is stale too
                    self._broken.discard(sym)
                    book.mark_ticks, book.mark_recorded = None, False
                self._load_snapshot(sym, snap)
            return
        try:
            env = _env.decode(fr.raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counts["undecodable"] += 1
            return
        stream, data = env.stream, bytes(env.data)
        sym = stream.split("@", 1)[0].upper()
        kind = stream[len(sym) + 1:]
        market = self.market
        if kind.startswith("depth"):
            d = _depth.decode(data)
            market.sim_time_ms = d.E or market.sim_time_ms
            book = market.books[sym]
            if d.u < book.last_u:
                self.counts["depth_stale"] += 1  # older than the preloaded snapshot
            else:
                ins = market.instruments[sym]
                bids = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in d.b]
                asks = [(ins.price_to_ticks(p), ins.qty_to_lots(q)) for p, q in d.a]
                if sym in self._fresh:
                    self._fresh.discard(sym)
                    broke = bool(book.last_u) and not d.U <= book.last_u <= d.u  # no event bridges the snapshot
                else:
                    broke = bool(book.last_u) and d.pu >= 0 and d.pu != book.last_u  # the recording has a gap
                if broke:
                    self.counts["depth_breaks"] += 1
                    if self._later_snapshot(sym, i):
                        self._broken.add(sym)  # applied onto the old book it would mix two books
                if sym in self._broken:
                    self.counts["depth_until_snapshot"] += 1
                    self.feed.raw(stream, sym, data)
                    return
                market.apply_diff(sym, bids, asks, d.u)
                self.counts["depth_applied"] += 1
                self.feed.depth_event(sym, d.U, d.u, d.pu, bids, asks, d.E, d.T or d.E)
        elif kind in ("trade", "aggTrade"):
            t = _trade.decode(data)
            market.sim_time_ms = t.E or market.sim_time_ms
            ins = market.instruments[sym]
            px, qty = ins.price_to_ticks(t.p), ins.qty_to_lots(t.q)
            if kind == "trade" or sym + "@trade" not in self.feed.raw_streams:
                market.trade(sym, px, qty, t.m, t.T or t.E)  # one listener call per trade
            self.feed.trade(sym, t.t, px, qty, t.m, t.T or t.E)
        elif kind.startswith("markPrice"):
            m = _mark.decode(data)
            # a mark price is not on the tick grid ("28147.27373413"): nearest tick
            scaled = Decimal(m.p).scaleb(market.instruments[sym].price_scale)
            market.set_mark(sym, int(scaled.to_integral_value(ROUND_HALF_EVEN)))
        self.feed.raw(stream, sym, data)

    def _later_snapshot(self, sym: str, i: int) -> bool:
        """Whether the recording holds a snapshot of ``sym`` after frame i (the chain can be
        picked up again: until it, diffs that do not continue the book are not applied)."""
        snaps = self._snapshots.get(sym, ())
        return bool(snaps) and snaps[-1] > i

    def stats(self) -> dict:
        return {"frames": len(self.frames), "sent": self.sent, "finished": self.finished, **dict(self.counts)}
