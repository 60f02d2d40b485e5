"""From the rings to NATS messages: each observed ring's new records become encoded messages
with their subject. Everything here is plain code over shared memory (tests drive it without a
process or a NATS server).

Book updates are conflated per symbol to at most ``book_max_hz`` per second: between two Books
of a symbol only the newest update is kept (the next Book carries how many were skipped), and a
kept update goes out as soon as its symbol's interval has passed, so the last state always
reaches the subscriber. ``risk.state`` is sent when its version changes, at most
``risk_max_hz`` per second (the newest state wins).

exec and alerts are *durable*: each message carries its ring's incarnation and sequence (its
JetStream message id is made from them) so the link can hold it until JetStream acknowledges it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from procs.core import messages as M
from procs.core.registry import ALERT_PRODUCERS, EXEC, MD_BOOK, MD_TRADE, RISK_STATE, SIGNALS, alerts_name
from procs.monitor.shmview import StateView

from . import schema as S
from .config import BridgeConfig
from .rings import SeqRing

_SIDE = {M.BUY: "BUY", M.SELL: "SELL"}
_TYPE = {t: name.upper() for t, name in M.ORDER_TYPE_NAMES.items()}
_LEVEL = {M.ALERT_INFO: "info", M.ALERT_WARN: "warn", M.ALERT_CRITICAL: "critical"}


@dataclass(slots=True)
class Outgoing:
    subject: str
    payload: bytes
    ts_pub: int = 0  # when the record entered its ring (monotonic ns); 0 = not a ring record
    durable: str = ""  # "" or the ring name of a durable message (exec, alerts.<proc>)
    created_ns: int = 0  # that ring's incarnation
    seq: int = 0  # that ring's sequence

    @property
    def msg_id(self) -> str:
        """JetStream's de-duplication id: the same record always has the same id."""
        return f"{self.durable}:{self.created_ns}:{self.seq}"


class Outbound:
    """Reads the instance's rings as an observer and turns new records into ``Outgoing``."""

    def __init__(self, cfg: BridgeConfig, instance: str, symbols: list[str], scales: list[tuple[int, int]],
                 names: dict[int, str], depth: int = M.DEFAULT_DEPTH, codec: S.Codec | None = None) -> None:
        self.cfg = cfg
        self.instance = instance
        self.symbols = list(symbols)
        self.scales = list(scales)
        self.names = dict(names)
        self.codec = codec or S.Codec(cfg.encoding)
        self.levels = min(cfg.book_levels, depth)
        book = M.book_update_dtype(depth)
        self.book = SeqRing(instance, MD_BOOK, book)
        self.trade = SeqRing(instance, MD_TRADE, M.Trade) if cfg.trades else None
        self.signals = SeqRing(instance, SIGNALS, M.Signal) if cfg.signals else None
        # durable rings start from the oldest record still there (a first run archives the
        # ring's history), or resume where the cursor file says
        self.exec = SeqRing(instance, EXEC, M.OrderEvent, start="oldest")
        self.alerts = [SeqRing(instance, alerts_name(p), M.Alert, start="oldest") for p in ALERT_PRODUCERS]
        self.risk = StateView(instance, RISK_STATE, M.RiskState)
        self._risk_version = -1
        self._risk_next_ns = 0
        self._risk_period = int(1e9 / cfg.risk_max_hz) if cfg.risk_max_hz > 0 else 0
        n = len(self.symbols)
        self._period = int(1e9 / cfg.book_max_hz) if cfg.book_max_hz > 0 else 0
        self._book_next = [0] * n  # per symbol: earliest time of the next Book
        self._book_kept: list[np.void | None] = [None] * n  # per symbol: newest update not sent yet
        self._book_skipped = [0] * n
        self.conflated = 0
        self._book_subjects = [S.subject(instance, "md", "book", s) for s in self.symbols]
        self._trade_subjects = [S.subject(instance, "md", "trade", s) for s in self.symbols]
        self._risk_subject = S.subject(instance, "risk", "state")

    @property
    def durable_rings(self) -> list[SeqRing]:
        return [self.exec, *self.alerts]

    @property
    def lapped(self) -> int:
        rings = [self.book, self.exec, *self.alerts, self.trade, self.signals]
        return sum(r.lost for r in rings if r is not None)

    def symbol(self, sid: int) -> str:
        return self.symbols[sid] if 0 <= sid < len(self.symbols) else str(sid)

    def scale(self, sid: int) -> tuple[int, int]:
        return self.scales[sid] if 0 <= sid < len(self.scales) else (0, 0)

    def strategy(self, num: int, source: int = M.SOURCE_STRATEGY) -> str:
        if num == 0:
            return M.SOURCE_NAMES.get(source, "none")
        return self.names.get(num, str(num))

    # -- polling ----------------------------------------------------------------------------------
    def poll(self, out: list[Outgoing], now_ns: int | None = None, limit: int = 4096, md: bool = True) -> int:
        """Append the messages for every record published since the last poll; returns how many.

        ``md=False`` (NATS is down): market data, signals and risk are read and dropped (a
        stale book is worth nothing), the durable rings are still turned into messages (the
        link holds them within its bound)."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        n0 = len(out)
        dropped = 0
        dropped += self._poll_books(out, now, limit, md)
        if self.trade is not None:
            start, batch = self.trade.poll(limit)
            if md:
                self._trades(out, batch)
            else:
                dropped += len(batch)
        if self.signals is not None:
            _, batch = self.signals.poll(limit)
            if md:
                self._signals(out, batch)
            else:
                dropped += len(batch)
        if md:
            self._risk_state(out, now)
        start, batch = self.exec.poll(limit)
        if len(batch):
            self._exec(out, start, batch)
        for ring in self.alerts:
            start, batch = ring.poll(limit)
            if len(batch):
                self._alerts(out, ring, start, batch)
        self.dropped = dropped
        return len(out) - n0

    dropped = 0  # records the last poll read and did not send (md while NATS is down)

    def _poll_books(self, out: list[Outgoing], now: int, limit: int, md: bool) -> int:
        _, batch = self.book.poll(limit)
        if not md:
            self._book_kept = [None] * len(self.symbols)
            return len(batch)
        period = self._period
        n = len(self.symbols)
        for i, sid in enumerate(batch["symbol_id"].tolist()):
            if not 0 <= sid < n:
                continue
            if not period or now >= self._book_next[sid]:
                self._send_book(out, sid, batch[i], now)
            else:
                if self._book_kept[sid] is not None:
                    self.conflated += 1
                    self._book_skipped[sid] += 1
                self._book_kept[sid] = batch[i]
        if period:
            for sid in range(n):
                rec = self._book_kept[sid]
                if rec is not None and now >= self._book_next[sid]:
                    self._send_book(out, sid, rec, now)
        return 0

    def _send_book(self, out: list[Outgoing], sid: int, rec: np.void, now: int) -> None:
        nb, na, k = min(int(rec["n_bids"]), self.levels), min(int(rec["n_asks"]), self.levels), self.levels
        ps, qs = self.scale(sid)
        msg = S.Book(symbol=self.symbols[sid], seq=int(rec["seq"]), update_id=int(rec["update_id"]),
                     ts_event=int(rec["ts_event"]), ts_recv=int(rec["ts_recv"]), ts_pub=int(rec["ts_pub"]),
                     ts_wall=time.time_ns(), flags=int(rec["flags"]), price_scale=ps, qty_scale=qs,
                     bids=list(zip(rec["bid_px"][:k].tolist()[:nb], rec["bid_qty"][:k].tolist()[:nb], strict=True)),
                     asks=list(zip(rec["ask_px"][:k].tolist()[:na], rec["ask_qty"][:k].tolist()[:na], strict=True)),
                     conflated=self._book_skipped[sid])
        out.append(Outgoing(self._book_subjects[sid], self.codec.encode(msg), int(rec["ts_pub"])))
        self._book_kept[sid] = None
        self._book_skipped[sid] = 0
        if self._period:
            self._book_next[sid] = now + self._period

    def _trades(self, out: list[Outgoing], batch: np.ndarray) -> None:
        enc, wall = self.codec.encode, time.time_ns()
        n = len(self.symbols)
        for sid, tid, px, qty, ts_event, ts_recv, ts_pub, flags in zip(*(batch[f].tolist() for f in (
                "symbol_id", "trade_id", "price", "qty", "ts_event", "ts_recv", "ts_pub", "flags")), strict=True):
            if not 0 <= sid < n:
                continue
            ps, qs = self.scales[sid]
            msg = S.Trade(symbol=self.symbols[sid], trade_id=tid, price=px, qty=qty,
                          buyer_maker=bool(flags & M.TRADE_BUYER_MAKER), ts_event=ts_event, ts_recv=ts_recv,
                          ts_pub=ts_pub, ts_wall=wall, price_scale=ps, qty_scale=qs)
            out.append(Outgoing(self._trade_subjects[sid], enc(msg), ts_pub))

    def _signals(self, out: list[Outgoing], batch: np.ndarray) -> None:
        wall = time.time_ns()
        for r in batch:
            num, sid = int(r["strategy_id"]), int(r["symbol_id"])
            name = self.strategy(num)
            msg = S.Signal(strategy=name, strategy_num=num, symbol=self.symbol(sid), ts=int(r["ts"]),
                           value=float(r["value"]), decision=int(r["decision"]), position=int(r["position"]),
                           aux=float(r["aux"]), md_seq=int(r["md_seq"]), ts_wall=wall)
            out.append(Outgoing(S.subject(self.instance, "signals", name), self.codec.encode(msg)))

    def _risk_state(self, out: list[Outgoing], now: int) -> None:
        if now < self._risk_next_ns:
            return
        got = self.risk.read()
        if got is None or got[1] == self._risk_version or int(got[0][0]["updated_ns"]) == 0:
            return
        self._risk_version = got[1]
        self._risk_next_ns = now + self._risk_period
        r = got[0][0]
        syms = {}
        for i, s in enumerate(self.symbols[:M.MAX_SYMBOLS]):
            ps, qs = self.scales[i]
            syms[s] = S.SymbolRisk(position=int(r["position"][i]), mark=int(r["mark"][i]),
                                   max_position=int(r["max_position"][i]), max_order_qty=int(r["max_order_qty"][i]),
                                   max_order_notional_e8=int(r["max_order_notional_e8"][i]),
                                   price_band_bps=int(r["price_band_bps"][i]),
                                   max_open_orders=int(r["sym_max_open_orders"][i]), price_scale=ps, qty_scale=qs)
        ts = int(r["trading_state"])
        msg = S.RiskState(trading_state=M.TRADING_STATE_NAMES.get(ts, str(ts)), halt_reason=int(r["halt_reason"]),
                          version=int(r["version"]), equity_e8=int(r["equity_e8"]), drawdown_e8=int(r["drawdown_e8"]),
                          max_open_orders=int(r["max_open_orders"]), max_orders_per_s=int(r["max_orders_per_s"]),
                          symbols=syms, ts_wall=time.time_ns())
        out.append(Outgoing(self._risk_subject, self.codec.encode(msg)))

    def _exec(self, out: list[Outgoing], start: int, batch: np.ndarray) -> None:
        wall = time.time_ns()
        created = self.exec.created_ns
        for j, e in enumerate(batch.tolist()):
            (event_seq, kind, num, sid, side, otype, tag, oid, price, qty, cum, last_px, last_qty, fee, reason,
             trade_id, ts_event, ts_recv, ts_intent, _ts_md_recv, ts_sent, intent_id, source, flags, cid, trigger,
             _pad) = e
            name = self.strategy(num, source)
            ps, qs = self.scale(sid)
            msg = S.OrderEvent(seq=start + j, ring=created, event_seq=event_seq, kind=M.EVENT_NAMES.get(kind, str(kind)),
                               strategy=name, strategy_num=num, source=M.SOURCE_NAMES.get(source, str(source)),
                               symbol=self.symbol(sid), side=_SIDE.get(side, str(side)),
                               order_type=_TYPE.get(otype, str(otype)), client_tag=tag,
                               client_order_id=cid.rstrip(b"\0").decode(errors="replace"), order_id=oid, price=price,
                               qty=qty, cum_qty=cum, last_px=last_px, last_qty=last_qty, fee_e8=fee, reason=reason,
                               reason_name=M.DENY_NAMES.get(reason, "") if kind == M.ORDER_DENIED else "",
                               trade_id=trade_id, maker=bool(flags & M.FLAG_MAKER), flags=flags, intent_id=intent_id,
                               ts_event=ts_event, ts_recv=ts_recv, ts_intent=ts_intent, ts_sent=ts_sent, ts_wall=wall,
                               price_scale=ps, qty_scale=qs, trigger_price=trigger)
            out.append(Outgoing(S.subject(self.instance, "exec", name), self.codec.encode(msg), 0, EXEC, created,
                                start + j))

    def _alerts(self, out: list[Outgoing], ring: SeqRing, start: int, batch: np.ndarray) -> None:
        proc = ring.name.split(".", 1)[1]
        for j, (ts, level, code, sid, value, text) in enumerate(batch.tolist()):
            lvl = _LEVEL.get(level, str(level))
            msg = S.Alert(seq=start + j, ring=ring.created_ns, proc=proc, level=lvl, code=code,
                          symbol=self.symbol(sid) if sid >= 0 else "", value=value,
                          text=text.rstrip(b"\0").decode(errors="replace"), ts=ts)
            out.append(Outgoing(S.subject(self.instance, "alerts", lvl), self.codec.encode(msg), 0, ring.name,
                                ring.created_ns, start + j))

    def close(self) -> None:
        for r in (self.book, self.trade, self.signals, self.exec, *self.alerts):
            if r is not None:
                r.close()
        self.risk.close()
