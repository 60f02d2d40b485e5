"""A session's latency trace: the three latencies measured in a free-running session, per sample.

``SessionRecorder`` switches the simulator's trace on (``POST /sim/trace``), reads the ``md.book``
and ``exec`` rings as an observer (it never gates them) and, at ``finish``, joins both sides:

* ``feed``: the simulator wrote depth frame (symbol, u) -> market_data received it (the
  BookUpdate with that update id: its ``ts_recv``);
* ``entry``: b25 decided -> the simulator read the order request. Decided is the receive time of
  the market data that caused the intent (``ts_md_recv`` of its ORDER_SENT event), or the intent's
  own stamp when no market data caused it: a lockstep replay takes zero simulated time for
  everything between receiving an event and writing the request, so it all belongs to entry;
* ``response``: the simulator wrote an answer about an order (a WebSocket API reply or a
  user-stream event) -> execution published what it learnt from it (the exec event's
  ``ts_recv``): the acknowledgement (ACCEPTED), each fill by its trade id, the cancel.

All stamps are CLOCK_MONOTONIC on one host. Samples that cannot be joined exactly (a frame or an
order outside the trace's window, a BookUpdate lapped by the observer) are counted and left
out, never guessed. The file (JSON) holds ``samples_ns`` per latency and the join's counts;
``b25 latency fit`` turns one or more of them into a model.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from procs.core import messages as M
from procs.core.registry import EXEC, MD_BOOK, build_registry
from procs.exchange_sim.trace import answer_writes, first_order_arrivals

_ANSWERED = {M.ORDER_ACCEPTED: "accepted", M.ORDER_CANCELED: "canceled", M.ORDER_EXPIRED: "expired",
             M.ORDER_REJECTED: "rejected"}  # the names procs.exchange_sim.trace.answer_writes gives
_FILLS = (M.ORDER_FILLED, M.ORDER_PARTIALLY_FILLED)


class SessionRecorder:
    """Observer of one running instance's md.book and exec rings plus its simulator's trace."""

    def __init__(self, instance: str, rest_url: str, symbols: list[str]) -> None:
        self.instance = instance
        self.rest_url = rest_url.rstrip("/")
        self.symbols = symbols
        self.books: dict[tuple[int, int], int] = {}  # (symbol_id, update_id) -> ts_recv
        self.sent: dict[str, int] = {}  # cid -> when b25 decided (ts_md_recv, else ts_intent)
        self.learnt: list[tuple[str, str, int, int]] = []  # (cid, what, trade id, ts execution published)
        self.lost = 0
        self._md: Any = None
        self._exec: Any = None

    def start(self) -> None:
        """Trace on (cleared), observers attached: every later frame and order can be joined."""
        self._post("/sim/trace?enabled=true&clear=true")
        reg = build_registry()
        self._md = reg.consumer(self.instance, MD_BOOK, None, timeout=10)
        self._exec = reg.consumer(self.instance, EXEC, None, timeout=10)

    def poll(self) -> None:
        """Drain both observers (call often enough that the rings do not lap them)."""
        md, ex = self._md, self._exec
        if md is None or ex is None:
            return
        while True:
            batch = md.poll()
            if not len(batch):
                break
            diffs = batch[(batch["flags"] & M.BOOK_SNAPSHOT) == 0]
            for sid, u, ts in zip(diffs["symbol_id"].tolist(), diffs["update_id"].tolist(),
                                  diffs["ts_recv"].tolist(), strict=True):
                self.books.setdefault((sid, u), ts)
            md.commit()
        while True:
            batch = ex.poll()
            if not len(batch):
                break
            for r in batch.tolist():
                kind, cid = r[1], r[24].rstrip(b"\0").decode()
                if kind == M.ORDER_SENT:
                    self.sent.setdefault(cid, r[19] if r[19] > 0 else r[18])  # ts_md_recv, else ts_intent
                elif kind in _ANSWERED:
                    self.learnt.append((cid, _ANSWERED[kind], 0, r[17]))
                elif kind in _FILLS:
                    self.learnt.append((cid, "fill", r[15], r[17]))
            ex.commit()
        self.lost = int(md.lost) + int(ex.lost)

    def finish(self) -> dict[str, Any]:
        """The joined trace (see the module docstring); the observers detach, the trace goes off."""
        self.poll()
        trace = self._get("/sim/trace")
        self._post("/sim/trace?enabled=false&clear=true")
        for c in (self._md, self._exec):
            if c is not None:
                c.close()
        self._md = self._exec = None
        out = join(trace, self.books, self.sent, self.learnt, self.symbols)
        out["join"]["observer_lost"] = self.lost
        return out

    def _post(self, path: str) -> None:
        req = urllib.request.Request(self.rest_url + path, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.rest_url + path, timeout=30) as r:
            return json.loads(r.read())


def join(trace: dict[str, Any], books: dict[tuple[int, int], int], sent: dict[str, int],
         learnt: list[tuple[str, str, int, int]], symbols: list[str]) -> dict[str, Any]:
    """Samples (ns) of the three latencies from the simulator's trace and b25's own stamps."""
    sid = {s: i for i, s in enumerate(symbols)}
    counts = {"frames": 0, "frames_joined": 0, "orders": len(sent), "orders_joined": 0, "answers": len(learnt),
              "answers_joined": 0, "noncausal": 0}
    samples: dict[str, list[int]] = {"feed": [], "entry": [], "response": []}
    seen_frames: set[tuple[int, int]] = set()
    for sym, u, ts_sent in trace.get("frames", []):
        counts["frames"] += 1
        key = (sid.get(sym, -1), int(u))
        if key in seen_frames:
            continue  # a frame written to two sessions: its first write is the one joined
        seen_frames.add(key)
        ts_recv = books.get(key)
        if ts_recv is not None:
            _add(samples["feed"], ts_recv - int(ts_sent), counts)
            counts["frames_joined"] += 1
    arrived = first_order_arrivals(trace)  # a resend: its first arrival
    for cid, decided in sent.items():
        t = arrived.get(cid)
        if t is not None and decided > 0:
            _add(samples["entry"], t - decided, counts)
            counts["orders_joined"] += 1
    written = answer_writes(trace)  # in b25's words, the first of the reply and the stream event
    for cid, what, trade_id, ts in learnt:
        t = written.get((cid, what, trade_id))
        if t is not None:
            _add(samples["response"], ts - t, counts)
            counts["answers_joined"] += 1
    return {"version": 1, "samples_ns": samples, "join": counts}


def _add(out: list[int], ns: int, counts: dict[str, int]) -> None:
    if ns < 0:  # stamps from one clock cannot run backwards: a wrong join, counted and left out
        counts["noncausal"] += 1
        return
    out.append(ns)


def write_trace(path: str | Path, trace: dict[str, Any], source: dict[str, Any]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({**trace, "source": source}) + "\n")
    return p


def read_trace(path: str | Path) -> dict[str, Any]:
    """A trace file; ValueError naming the file when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        samples = data["samples_ns"]
        if not all(isinstance(samples.get(k, []), list) for k in ("feed", "entry", "response")):
            raise ValueError("samples_ns must hold lists")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a latency trace (b25 replay --trace or b25 latency record writes one): "
                         f"path={p} reason={exc}") from None
    return data


def record(instance: str, rest_url: str, symbols: list[str], seconds: float, out: str | Path) -> dict[str, Any]:
    """Record a live session (``make run``) for ``seconds`` into ``out``; returns the trace."""
    rec = SessionRecorder(instance, rest_url, symbols)
    rec.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
        rec.poll()
    trace = rec.finish()
    write_trace(out, trace, {"instance": instance, "seconds": seconds, "mode": "live"})
    return trace
