"""The simulator's exchange inside the caller's process (``b25 backtest``): no socket, no thread.

``InProcessExchange`` is a lockstep replay's exchange side without its server:

* the true book is ``FastMarket`` (one compiled ``FastBook`` per symbol) fed the recording's
  frames decoded once into arrays (``procs.exchange_sim.market.recorded``);
* the trading side is the simulator's own (``build_trading``: accounts, matching engine with its
  queue model, fees and impact, order API, user-data streams), behind the same ``LockstepGate``
  and ``Links`` a lockstep replay uses (procs/exchange_sim/eventclock.py), on the caller's event
  queue and clock, so requests and answers take the same latency draws;
* ``apply(i)`` is ``Replay._serve`` for frame i on the arrays: the same decimal conversions,
  the same stale-diff rule, trades heard once (the @trade stream, or aggTrade without one).

``InProcessGateway`` is execution's ``OrderGateway`` onto it: Binance's gateway with its WS API
transport writing into the gate instead of a socket (the same request templates and signatures),
its REST calls answered by the simulator's REST handler, and its user-data stream a gate session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import msgspec
import numpy as np

from procs.core.instruments import Instrument
from procs.exchange_sim.eventclock import EventQueue, Links, LockstepGate
from procs.exchange_sim.latency import LatencyModel
from procs.exchange_sim.market import recorded as R
from procs.exchange_sim.market.fast_kernels import crossed, quiet_run, trade_run
from procs.exchange_sim.market.fast_market import FastMarket
from procs.exchange_sim.trading.config import TradingConfig
from procs.exchange_sim.trading.orderapi import build_trading
from procs.exchange_sim.trading.wsapi import WS_API_PATH
from procs.venue.binance.config import BinanceUsdmConfig
from procs.venue.binance.exchange_info import parse as parse_exchange_info
from procs.venue.binance.gateway import OrderGateway
from procs.venue.binance.orders import stream_report
from procs.venue.binance.rest import REST_ROUTES, WireReply, classify
from procs.venue.binance.signing import Signer, rest_query
from procs.venue.binance.wsapi import WsApiTransport
from procs.venue.messages import OrderReport, VenueInfo

_dec = msgspec.json.Decoder()

# what ``apply`` tells the caller its frame changed for b25's market data
NOTHING, BOOK, TRADE = 0, 1, 2


class _Session:
    """A trading-side WebSocket session's far end: what the simulator writes goes to ``on_text``."""

    def __init__(self, on_text: Callable[[str], None]) -> None:
        self.on_text = on_text

    def send_text(self, text: str) -> None:
        self.on_text(text)

    def close(self) -> None:
        pass


class _Pipe:
    """What ``WsApiTransport`` writes to instead of a picows transport."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write

    def send(self, _msg_type: Any, data: bytes) -> None:
        self.write(data)


class LoopbackWsApi(WsApiTransport):
    """The WS API transport (templates, signatures, answer parsing) over ``write`` instead of a socket."""

    def __init__(self, signer: Signer, write: Callable[[bytes], None]) -> None:
        super().__init__("in-process", signer)
        self.transport = _Pipe(write)  # type: ignore[assignment]

    def answer(self, text: str) -> None:
        self._on_text(text.encode(), time.monotonic_ns())


class InProcessRest:
    """``RestTransport``'s calls answered by the simulator's REST handler (no latency: as in a
    lockstep replay, where REST bypasses the event queue)."""

    def __init__(self, handler: Any, signer: Signer, recv_window_ms: int) -> None:
        self.h = handler
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self.calls = 0
        self.tasks: set[asyncio.Task] = set()

    @property
    def connected(self) -> bool:
        return True

    async def call(self, method: str, path: str, params: dict[str, str] | None = None,
                   signed: bool = True) -> WireReply:
        self.calls += 1
        p = dict(params or {})
        q = rest_query(self.signer, p, self.recv_window_ms) if signed else urlencode(p)
        status, raw, headers = await self.h.handle_rest(method, path, q, "", {"X-MBX-APIKEY": self.signer.key})
        body = _dec.decode(raw) if raw else None
        outcome, code, msg = classify(status, body)
        return WireReply(outcome, status, body, code, msg, None, dict(headers), None, time.monotonic_ns())

    def send(self, method: str, params: dict[str, str], cb: Callable[[WireReply], None]) -> int:
        """A request the gateway sends over REST (conditional orders, the dead-man switch): answered
        by a task the caller's quiescence waits for (``tasks``), as a replay's REST call is
        answered while its simulated clock stands."""
        verb, path = REST_ROUTES[method]
        t = asyncio.get_running_loop().create_task(self._send(verb, path, params, cb))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return time.monotonic_ns()

    async def _send(self, verb: str, path: str, params: dict[str, str], cb: Callable[[WireReply], None]) -> None:
        cb(await self.call(verb, path, params))

    async def close(self) -> None:
        pass


class InProcessGateway(OrderGateway):
    """Execution's orders on an ``InProcessExchange`` (``procs.venue.protocols.OrderGateway``)."""

    def __init__(self, exchange: InProcessExchange, signer: Signer, cfg: BinanceUsdmConfig | None = None) -> None:
        cfg = cfg or BinanceUsdmConfig()
        super().__init__(cfg, signer, prefer_ws=False,
                         rest=InProcessRest(exchange.rest_handler, signer, cfg.recv_window_ms))  # type: ignore[arg-type]
        self.exchange = exchange
        api = _Session(self._answer_text)
        self.ws = LoopbackWsApi(signer, lambda data: exchange.gate.ws_message(api, data.decode()))
        exchange.gate.ws_open(api, WS_API_PATH)
        self._on_report: Callable[[OrderReport | None, int], None] | None = None

    def _answer_text(self, text: str) -> None:
        assert self.ws is not None
        self.ws.answer(text)  # type: ignore[attr-defined]

    def start(self, on_report: Callable[[OrderReport | None, int], None], on_connected: Callable[[int], None]) -> None:
        ex = self.exchange
        self._on_report = on_report
        account = ex.account_of(self.ws.signer.key)  # type: ignore[union-attr]
        ex.gate.ws_open(_Session(self._stream_text), f"/ws/{ex.rest_handler.streams.create(account)}")
        on_connected(1)

    def _stream_text(self, text: str) -> None:
        ev = _dec.decode(text)
        if isinstance(ev, dict) and ev.get("e") != "listenKeyExpired" and self._on_report is not None:
            self._on_report(stream_report(ev), time.monotonic_ns())

    async def wait_up(self, ws_timeout_s: float = 2.0, stream_timeout_s: float = 5.0) -> None:
        pass

    async def close(self) -> None:
        pass


class InProcessExchange:
    """The exchange of a backtest: a recording's true book and the simulator's trading side."""

    def __init__(self, rec: R.Recording, trading: TradingConfig, model: LatencyModel, queue: EventQueue,
                 now_ns: Callable[[], int]) -> None:
        self.rec = rec
        self.market = FastMarket(rec.instruments, rec.symbols)
        for sym, (bp, bq, ap, aq, last_u) in rec.first_snapshot.items():
            self.market.load(self.market.sid[sym], bp, bq, ap, aq, last_u, notify=False)
        self.market.sim_time_ms = rec.start_ms or None
        self.rest_handler, ws_handler = build_trading(self.market, trading, rec.pipeline_info)
        self.market.venue = self.rest_handler.venue
        self.links = Links(model)
        self.gate = LockstepGate(ws_handler, queue, self.links, now_ns,
                                 lambda path: path.split("?", 1)[0].rstrip("/") == WS_API_PATH)
        self.info: VenueInfo = parse_exchange_info(rec.pipeline_info)
        # a resync snapshot is applied; the first of each symbol was loaded before the first frame
        self._first_snap: set[int] = set()
        seen: set[int] = set()
        for i in np.flatnonzero(rec.kind == R.SNAPSHOT).tolist():
            s = int(rec.sid[i])
            if s not in seen:
                seen.add(s)
                self._first_snap.add(i)
        self._snapshots = [np.flatnonzero((rec.kind == R.SNAPSHOT) & (rec.sid == k)) for k in range(len(rec.symbols))]
        self._fresh = set(range(len(rec.symbols)))  # the next diff must bridge the loaded snapshot
        self._broken: set[int] = set()  # chain broken: no diff applied until the next snapshot
        self.depth_breaks = 0
        self._out = np.zeros(9, np.int64)
        self.depth_events = 0  # the diffs and trades b25's market data hears (its message count)
        self.trades_heard = 0

    @property
    def instruments(self) -> dict[str, Instrument]:
        """The instruments the exchange lists to b25 (its exchangeInfo)."""
        return self.info.instruments

    def account_of(self, api_key: str) -> str:
        accounts = self.rest_handler.venue.accounts
        for a in accounts.values():
            if a.api_key == api_key:
                return a.name
        raise ValueError(f"no simulator account has this API key: section=[sim_trading] accounts, key={api_key!r}")

    def signer(self) -> Signer:
        """The simulator's default account (``[sim_trading] accounts``' first)."""
        a = next(iter(self.rest_handler.venue.accounts.values()))
        return Signer(a.api_key, a.secret)

    def apply(self, i: int) -> int:
        """Frame i at the exchange (``Replay._serve``): NOTHING, BOOK (symbol ``rec.sid[i]``'s
        book took a diff) or TRADE (b25's market data hears a trade)."""
        self.links.begin_action()  # fills it causes reach b25 one response latency later
        rec, mk = self.rec, self.market
        k = rec.kind[i]
        sid = int(rec.sid[i])
        if k == R.DEPTH_KIND:
            e = int(rec.e_ms[i])
            if e:
                mk.sim_time_ms = e
            u = int(rec.b[i])
            self.depth_events += 1  # b25's market data reads it (and drops it when stale)
            last_u = mk.last_u[sid]
            if u < last_u:
                return NOTHING  # older than the loaded snapshot
            if sid in self._fresh:
                self._fresh.discard(sid)
                broke = bool(last_u) and not int(rec.a[i]) <= last_u <= u
            else:
                pu = int(rec.c[i])
                broke = bool(last_u) and pu >= 0 and pu != last_u
            if broke:  # as Replay._serve: wait for the recording's next snapshot, if it has one
                self.depth_breaks += 1
                snaps = self._snapshots[sid]
                if len(snaps) and snaps[-1] > i:
                    self._broken.add(sid)
            if sid in self._broken:
                return NOTHING
            mk.apply(sid, rec.px, rec.qty, int(rec.off[i]), int(rec.nb[i]), int(rec.na[i]), u)
            return BOOK
        if k == R.TRADE_KIND or k == R.AGG_TRADE:
            e = int(rec.e_ms[i])
            if e:
                mk.sim_time_ms = e
            if k == R.AGG_TRADE and mk.symbols[sid] in rec.trade_streams:
                return NOTHING  # heard once, from the @trade stream
            d = int(rec.d[i])
            mk.trade(sid, int(rec.b[i]), int(rec.c[i]), d < 0, abs(d))
            self.trades_heard += 1
            return TRADE
        if k == R.MARK_KIND:
            mk.set_mark(sid, int(rec.b[i]))
        elif k == R.SNAPSHOT and i not in self._first_snap and (int(rec.b[i]) > mk.last_u[sid] or sid in self._broken):
            off, nb, na = int(rec.off[i]), int(rec.nb[i]), int(rec.na[i])
            mk.load(sid, rec.px[off:off + nb], rec.qty[off:off + nb], rec.px[off + nb:off + nb + na],
                    rec.qty[off + nb:off + nb + na], int(rec.b[i]))
            if sid in self._broken:  # across a gap (another day's file) the mark is stale too
                self._broken.discard(sid)
                mk.marks[sid] = None
            self._fresh.add(sid)
        return NOTHING

    def idle(self) -> bool:
        """No order rests or waits at the exchange and no level is watched: a market event
        changes nothing but the book, the last trade price and the mark."""
        v = self.rest_handler.venue
        if v._sweep or v._dirty or v.countdowns or any(v.pending.values()):
            return False
        return not any(e.book[True] or e.book[False] or e.known[True] or e.known[False] for e in v.engines.values())

    def quiet_run(self, start: int, t_limit: int, x: np.ndarray) -> tuple[int, int, int, int]:
        """Frames from ``start`` applied in one compiled call while ``idle`` (the caller checks it
        and that nothing of b25 reacts to them), up to the first at exchange time ``t_limit``, of
        another symbol than ``start``'s, or a snapshot: what ``apply`` would do to each, with the
        listeners left out (they have nothing to act on). -> (the next frame not taken, the last
        diff applied or -1, the diffs applied, the last frame taken that is not inert or -1)."""
        rec, mk = self.rec, self.market
        sid = int(rec.sid[start])
        if sid in self._fresh or sid in self._broken:
            return start, -1, 0, -1  # a snapshot's first diff, or a gap: frame by frame
        fb = mk.fast[sid]
        out = self._out
        nxt = quiet_run(fb._keys, fb._vals, fb._top, fb._st, rec.px, rec.qty, rec.kind, rec.sid, rec.b, rec.c, rec.off,
                        rec.nb, rec.na, rec.e_ms, x, start, rec.frames, sid, mk.last_u[sid], fb.keep, fb._limit,
                        t_limit, mk.symbols[sid] not in rec.trade_streams, out)
        last_u, last_book, last_trade, last_mark, diffs, applied, trades, last_e, taken = out.tolist()
        if nxt == start:
            return start, -1, 0, -1
        if applied:
            mk.last_u[sid] = last_u
            fb.crossed = crossed(fb._top, fb._st)
        if last_e > 0:
            mk.sim_time_ms = last_e
        if last_trade >= 0:
            self.rest_handler.venue.last_price[mk.symbols[sid]] = int(rec.b[last_trade])
        if last_mark >= 0:
            mk.set_mark(sid, int(rec.b[last_mark]))
        self.depth_events += diffs
        self.trades_heard += trades
        return nxt, last_book, applied, taken

    def trade_run(self, start: int, after: int, before: int, x: np.ndarray) -> tuple[int, int]:
        """Frames from ``start`` that are trades touching none of our resting orders (or mark
        prices), applied in one compiled call: what ``apply`` does to each when the trade cannot
        fill, queue or trigger anything (no conditional order waits, nothing to settle); stops as
        ``fast_kernels.trade_run`` says. -> (the next frame not taken, the last frame taken that
        is not inert or -1)."""
        v = self.rest_handler.venue
        if v._sweep or v._dirty or v.pending:
            return start, -1
        rec, mk = self.rec, self.market
        sid = int(rec.sid[start])
        sym = mk.symbols[sid]
        eng = v.engines.get(sym)
        bid = ask = None
        if eng is not None:
            bid, ask = eng.best[True], eng.best[False]
        out = self._out
        nxt = trade_run(rec.kind, rec.sid, rec.b, rec.d, rec.e_ms, x, start, rec.frames, sid, after, before,
                        sym not in rec.trade_streams, -1 if bid is None else bid, -1 if ask is None else ask, out)
        if nxt == start:
            return start, -1
        last_trade, trades, last_mark, last_e, taken = out[:5].tolist()
        if last_e > 0:
            mk.sim_time_ms = last_e
        if last_trade >= 0:
            v.last_price[sym] = int(rec.b[last_trade])
        if last_mark >= 0:
            mk.set_mark(sid, int(rec.b[last_mark]))
        self.trades_heard += trades
        return nxt, taken

    def trade_of(self, i: int) -> tuple[int, int, int, int, int]:
        """Frame i's trade as b25 hears it: (trade id, price ticks, qty lots, time ms, buyer-is-maker)."""
        rec = self.rec
        d = int(rec.d[i])
        return int(rec.a[i]), int(rec.b[i]), int(rec.c[i]), abs(d), int(d < 0)
