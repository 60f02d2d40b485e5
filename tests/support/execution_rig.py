"""Test rig for execution: a real exchange_sim process, a real execution process, the intent
ring written as strategy would, and the exec ring read as strategy and risk would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from procs.core import messages as M
from procs.core.registry import EXEC, ORDERS_MANUAL, ORDERS_STRATEGY, RISK_STATE, build_registry
from procs.execution.journal import read_journal
from procs.tools.stack import dumps_toml
from procs.venue.adapters import decode_venue, venue_at
from procs.venue.binance.signing import TEST_ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
BTC, ETH = 0, 1


class LogTail:
    """Collects a process's JSON log lines from a pipe in a thread (the pipe never fills)."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def wait(self, event: str, timeout: float = 15.0, after: int = 0,
             match: Callable[[dict], bool] = lambda rec: True) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.lines[after:]:
                if rec.get("event") == event and match(rec):
                    return rec
            time.sleep(0.01)
        raise AssertionError(f"no {event!r} log line in {timeout}s; log tail: {''.join(self.raw[-15:])}")

    def events(self, name: str) -> list[dict]:
        return [r for r in self.lines if r.get("event") == name]


def start_sim(procs: list, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int, int, LogTail]:
    p = subprocess.Popen([sys.executable, "-m", "procs.exchange_sim", "--port", "0", "--ws-port", "0", *extra],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    tail = LogTail(p.stderr)
    rec = tail.wait("listening", 15)
    return p, rec["rest_port"], rec["ws_port"], tail


def http(method: str, url: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


RUNTIME_FIELDS = ("cpu", "idle", "sched", "keep_warm_ms")  # [execution.runtime]


def write_config(tmp: Path, rest_port: int, ws_port: int, **over: Any) -> Path:
    """[venue] at the simulator's ports and [execution] for a test; ``over`` sets fields of
    either (a [venue] field by its name there)."""
    venue = venue_at(f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}")
    ex = {"journal": str(tmp / "exec.journal"), "request_timeout_s": 1.0, "breaker_cooldown_s": 0.3,
          "backoff_429_s": 0.2, "risk_required": False}  # execution alone: no risk.state = no limits (set_risk writes one)
    venue_fields = set(decode_venue({}).__struct_fields__)
    for k, v in over.items():
        if k in RUNTIME_FIELDS:
            ex.setdefault("runtime", {})[k] = v
        else:
            (venue if k in venue_fields else ex)[k] = v
    p = tmp / "b25.toml"
    p.write_text(dumps_toml({"venue": venue, "deploy": {"symbols": SYMBOLS}, "execution": ex}))
    return p


def _beat(writer: Any, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        writer.heartbeat()


class Rig:
    """The strategy's side of execution: an intent producer and the exec ring's consumers."""

    def __init__(self, instance: str, procs: list, config: Path, rest_port: int) -> None:
        self.instance = instance
        self.procs = procs
        self.config = config
        self.base = f"http://127.0.0.1:{rest_port}"
        self.reg = build_registry()
        self.intents = self.reg.producer(instance, ORDERS_STRATEGY)
        self.manual = None
        self.exec_c = None
        self.risk_c = None
        self.risk_w = None
        self.events: list[dict] = []
        self.next_intent = 0
        self.proc: subprocess.Popen | None = None
        self.log: LogTail | None = None

    # -- processes ----------------------------------------------------------------------------
    def start(self, wait: bool = True) -> LogTail:
        p = subprocess.Popen([sys.executable, "-m", "procs.execution", "--config", str(self.config),
                              "--instance", self.instance], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.proc = p
        self.log = LogTail(p.stderr)
        if not wait:
            return self.log
        self.log.wait("execution_started", 20)
        if self.exec_c is None:
            self.exec_c = self.reg.consumer(self.instance, EXEC, "strategy", timeout=20)
            self.risk_c = self.reg.consumer(self.instance, EXEC, "risk", timeout=20)
        return self.log

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=15)
        self.log.t.join(timeout=5)  # type: ignore[union-attr]
        return rc

    def close(self) -> None:
        from shm.inspect import clean

        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        for r in (self.intents, self.manual):
            if r is not None:
                r.close()
        for c in (self.exec_c, self.risk_c):
            if c is not None:
                c.close()
        self.stop_risk()
        clean(self.instance, force=True)
        from procs.core.control import unlink_queues
        unlink_queues(self.instance, ("execution",))

    # -- intents ------------------------------------------------------------------------------
    def intent(self, kind: int = M.SUBMIT_ORDER, *, symbol_id: int = BTC, side: int = M.BUY,
               order_type: int = M.LIMIT, tif: int = M.GTC, price: int = 0, qty: int = 1, reduce_only: int = 0,
               tag: int = 0, strategy_id: int = 1, manual: bool = False, trigger_price: int = 0,
               callback_bps: int = 0, flags: int = 0) -> int:
        self.next_intent += 1
        if not tag and kind == M.SUBMIT_ORDER:
            tag = self.next_intent
        ring = self.intents
        if manual:
            if self.manual is None:
                self.manual = self.reg.producer(self.instance, ORDERS_MANUAL)
            ring = self.manual
        vals = (self.next_intent, kind, M.SOURCE_MANUAL if manual else M.SOURCE_STRATEGY, strategy_id, symbol_id,
                side, order_type, tif, price, qty, reduce_only, tag, 0, 0, time.monotonic_ns(), flags, trigger_price,
                callback_bps)
        assert ring.publish_blocking(*vals, timeout_s=10)
        return tag

    # -- events -------------------------------------------------------------------------------
    def poll(self) -> None:
        assert self.exec_c is not None and self.risk_c is not None
        b = self.exec_c.poll()
        for r in b:
            d = {k: (r[k].item() if k != "client_order_id" else bytes(r[k]).rstrip(b"\0").decode())
                 for k in M.OrderEvent.names if k != "_pad"}
            self.events.append(d)
        self.exec_c.commit()
        self.risk_c.poll()
        self.risk_c.commit()

    def wait_for(self, pred: Any, timeout: float = 10.0, what: str = "") -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            got = [e for e in self.events if pred(e)]
            if got:
                return got
            if time.monotonic() > deadline:
                tail = "".join(self.log.raw[-10:]) if self.log else ""
                raise AssertionError(f"no event {what} within {timeout}s; events={self.events[-8:]} log={tail}")
            time.sleep(0.005)

    def wait_kind(self, tag: int, kind: int, timeout: float = 10.0) -> dict:
        return self.wait_for(lambda e: e["client_tag"] == tag and e["kind"] == kind, timeout,
                             f"tag={tag} kind={M.EVENT_NAMES.get(kind)}")[0]

    def kinds(self, tag: int) -> list[int]:
        self.poll()
        return [e["kind"] for e in self.events if e["client_tag"] == tag]

    # -- risk state ----------------------------------------------------------------------------
    def set_risk(self, **fields: Any) -> None:
        """Write risk.state as risk would (and beat its heartbeat every 0.1 s until ``stop_risk``)."""
        if self.risk_w is None:
            self.risk_w = self.reg.writer(self.instance, RISK_STATE)
            self._risk_beat = threading.Event()
            self._risk_t = threading.Thread(target=_beat, args=(self.risk_w, self._risk_beat), daemon=True)
            self._risk_t.start()
        w = self.risk_w
        w.begin()
        w.records[0] = np.zeros(1, dtype=M.RiskState)[0]
        w.records["trading_state"][0] = M.ACTIVE
        for k, v in fields.items():
            if isinstance(v, dict):
                for sid, x in v.items():
                    w.records[k][0][sid] = x
            else:
                w.records[k][0] = v
        w.end()

    def stop_risk(self) -> None:
        """Stop the heartbeat and close the writer (its block stays, with a silent producer)."""
        if self.risk_w is not None:
            self._risk_beat.set()
            self._risk_t.join(5)
            self.risk_w.close()
            self.risk_w = None

    # -- exchange --------------------------------------------------------------------------------
    def mid(self, symbol: str = "BTCUSDT") -> int:
        d = http("GET", f"{self.base}/fapi/v1/depth?symbol={symbol}&limit=5")
        bid = round(float(d["bids"][0][0]) * 100)
        ask = round(float(d["asks"][0][0]) * 100)
        return (bid + ask) // 2

    def fault(self, **spec: Any) -> Any:
        return http("POST", f"{self.base}/sim/trade_fault", spec)

    def order_log(self) -> list[dict]:
        return http("GET", f"{self.base}/sim/order_log")

    def journal(self) -> list:
        return read_journal(self.config.parent / "exec.journal")[0]


def rest_signed(base: str, method: str, path: str, params: dict[str, str], key: str = TEST_ACCOUNT[0],
                secret: str = TEST_ACCOUNT[1]) -> tuple[int, Any]:
    """A signed REST call as a third party would make it (for orders execution does not know),
    signed with the stdlib's hmac rather than b25's signer."""
    import hashlib
    import hmac
    import urllib.error
    from urllib.parse import urlencode

    q = urlencode({**params, "timestamp": str(int(time.time() * 1000))})
    q += "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{base}{path}?{q}", method=method, headers={"X-MBX-APIKEY": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def counters_of(instance: str) -> dict[str, int]:
    from shm import layout as L
    from shm.counters import read_counters
    from shm.segment import Segment

    seg = Segment.attach(instance, "counters.execution", L.KIND_COUNTERS, None, timeout=5)
    try:
        return read_counters(seg)[0]
    finally:
        seg.close()
