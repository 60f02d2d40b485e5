"""procs.monitor as a real process against shared memory the test fills (no other b25 process)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from enum import IntEnum
from pathlib import Path

import numpy as np
import pytest

from procs.core import control as C
from procs.core import messages as M
from procs.core.registry import EXEC, RISK_STATE, alerts_name, build_registry
from procs.core.status import State, StatusWriter
from shm.counters import Counters
from shm.inspect import clean
from tests.support import spawn

pytestmark = pytest.mark.proc
TOKEN = "s3cret-test-token"


class Counter(IntEnum):
    MESSAGES = 0
    GAPS = 1


class Hist(IntEnum):
    RECV_TO_PUBLISH = 0


def start_monitor(instance: str, tmp_path: Path, procs: list, required: tuple[str, ...] = ("strategy", "risk"),
                  token: str = TOKEN, stale_after_s: float = 2.0) -> tuple[subprocess.Popen, int]:
    cfg = tmp_path / "b25.toml"
    tok = tmp_path / "token"
    tok.write_text(token + "\n")
    tok.chmod(0o600)
    cfg.write_text(f'[deploy]\nsymbols = ["BTCUSDT", "ETHUSDT"]\n\n[monitor]\nrequired = {json.dumps(list(required))}\n'
                   f'stale_after_s = {stale_after_s}\ntoken_file = "{tok}"\npoll_s = 0.02\n')
    p = spawn("-m", "procs.monitor", "--config", str(cfg), "--instance", instance, "--port", "0",
              stderr=subprocess.PIPE)
    procs.append(p)
    for line in p.stderr:
        rec = json.loads(line)
        if rec["event"] == "listening":
            assert rec["host"] == "127.0.0.1"
            return p, rec["port"]
    raise AssertionError(f"monitor exited before listening: rc={p.wait()}")


def stop(p: subprocess.Popen, instance: str) -> None:
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0
    clean(instance, force=True)  # the monitor's own status/counters blocks outlive it by design


def http(port: int, path: str, body: bytes | None = None, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body is not None else "GET")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(fn, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


def test_metrics_when_shm_counters_filled_then_exposes_counters_histograms_and_rings(instance, tmp_path, procs):
    ctr = Counters.create(instance, "market_data", Counter, Hist)
    ctr.inc(Counter.MESSAGES, 42)
    ctr.inc(Counter.GAPS, 3)
    for _ in range(990):
        ctr.record(Hist.RECV_TO_PUBLISH, 5_000)
    for _ in range(10):
        ctr.record(Hist.RECV_TO_PUBLISH, 2_000_000)
    exec_ring = build_registry().producer(instance, EXEC)
    assert exec_ring.try_publish(*([0] * 24), b"c1", 0)
    p, port = start_monitor(instance, tmp_path, procs)
    try:
        status, body = http(port, "/metrics")
        text = body.decode()
        assert status == 200
        assert 'b25_messages_total{proc="market_data"} 42.0' in text
        assert 'b25_gaps_total{proc="market_data"} 3.0' in text
        assert 'b25_latency_seconds_count{proc="market_data",stage="recv_to_publish"} 1000.0' in text
        assert 'b25_latency_seconds_bucket{le="8.192e-06",proc="market_data",stage="recv_to_publish"} 990.0' in text
        # p50 is the upper bound of 5 us's bucket, p99.9 that of 2 ms's (never under-stated)
        assert 'b25_latency_quantile_seconds{proc="market_data",quantile="0.5",stage="recv_to_publish"} 5.12e-06' in text
        assert 'b25_latency_quantile_seconds{proc="market_data",quantile="0.999",stage="recv_to_publish"} 0.002031616' in text
        assert 'b25_ring_cursor{ring="exec"} 1.0' in text
        assert 'b25_ring_consumer_lag{consumer="strategy",ring="exec"} 1.0' in text
        assert 'b25_ring_consumer_lag{consumer="risk",ring="exec"} 1.0' in text
        assert 'b25_ring_producer_alive{ring="exec"} 1.0' in text
        # the monitor counts its own scrapes in its own counters segment
        _, again = http(port, "/metrics")
        assert 'b25_scrapes_total{proc="monitor"}' in again.decode()
    finally:
        stop(p, instance)
        exec_ring.close(unlink=True)
        ctr.close(unlink=True)


def test_health_when_a_required_heartbeat_goes_old_then_503_names_it(instance, tmp_path, procs):
    writers = {n: StatusWriter(instance, n) for n in ("strategy", "risk")}
    for w in writers.values():
        w.set_state(State.RUNNING)
    # the heartbeats are written once: a limit far beyond a slow start keeps them fresh until aged by hand
    p, port = start_monitor(instance, tmp_path, procs, stale_after_s=60.0)
    try:
        status, body = http(port, "/health")
        doc = json.loads(body)
        assert status == 200, doc
        assert doc["healthy"] and doc["stale"] == []
        assert doc["processes"]["risk"]["state"] == "RUNNING" and doc["processes"]["risk"]["required"]
        # risk's heartbeat stops: write an old one as a hung process would leave it
        w = writers["risk"].w
        w.begin()
        w.records["heartbeat_ns"][0] -= 100_000_000_000
        w.end()
        status, body = http(port, "/health")
        doc = json.loads(body)
        assert status == 503
        assert doc["stale"] == ["risk"]
        assert "heartbeat" in doc["why"]["risk"]
        writers["strategy"].set_state(State.STOPPED)
        status, body = http(port, "/health")
        assert json.loads(body)["stale"] == ["risk", "strategy"]
    finally:
        stop(p, instance)
        for w in writers.values():
            w.close(unlink=True)


def test_ops_api_when_posting_commands_then_auth_is_checked_and_commands_arrive(instance, tmp_path, procs):
    risk_inbox = C.ControlInbox(instance, "risk")
    exec_inbox = C.ControlInbox(instance, "execution")
    strat_inbox = C.ControlInbox(instance, "strategy")
    p, port = start_monitor(instance, tmp_path, procs)
    try:
        status, body = http(port, "/api/kill_switch", b'{"on": true}')
        assert status == 401 and b"Bearer" in body
        status, _ = http(port, "/api/kill_switch", b'{"on": true}', token="wrong")
        assert status == 403
        assert risk_inbox.poll() == []

        status, body = http(port, "/api/kill_switch", b'{"on": true, "operator": "alice"}', token=TOKEN)
        assert status == 202, body
        assert wait_for(lambda: risk_inbox.poll()) == [C.SetKillSwitch(on=True, operator="alice")]

        status, _ = http(port, "/api/trading_state", b'{"state": "REDUCING"}', token=TOKEN)
        assert status == 202
        got = wait_for(lambda: risk_inbox.poll())
        assert isinstance(got[0], C.SetTradingState) and got[0].state == "REDUCING"

        status, _ = http(port, "/api/cancel_all", b'{"symbol": "ETHUSDT"}', token=TOKEN)
        assert status == 202
        got = wait_for(lambda: exec_inbox.poll())
        assert isinstance(got[0], C.CancelAll) and got[0].symbol == "ETHUSDT"

        status, _ = http(port, "/api/strategy/reload", b"{}", token=TOKEN)
        assert status == 202
        assert isinstance(wait_for(lambda: strat_inbox.poll())[0], C.Reload)
    finally:
        stop(p, instance)
        for ib in (risk_inbox, exec_inbox, strat_inbox):
            ib.close(unlink=True)


def test_ops_api_when_body_is_bad_then_400_names_field_and_reason(instance, tmp_path, procs):
    p, port = start_monitor(instance, tmp_path, procs)
    try:
        status, body = http(port, "/api/kill_switch", b'{"on": tru', token=TOKEN)
        doc = json.loads(body)
        assert status == 400 and "not valid JSON" in doc["error"]
        status, body = http(port, "/api/kill_switch", b'{"on": "yes"}', token=TOKEN)
        doc = json.loads(body)
        assert status == 400 and doc["field"] == "on" and "bool" in doc["error"]
        status, body = http(port, "/api/kill_switch", b"{}", token=TOKEN)
        assert status == 400 and json.loads(body)["field"] == "on"
        status, body = http(port, "/api/trading_state", b'{"state": "PANIC"}', token=TOKEN)
        assert status == 400 and json.loads(body)["field"] == "state"
        status, body = http(port, "/api/cancel_all", b'{"symbol": "DOGEUSDT"}', token=TOKEN)
        doc = json.loads(body)
        assert status == 400 and doc["field"] == "symbol" and "BTCUSDT" in doc["error"]
        status, body = http(port, "/api/cancel_all", b'{"symbl": ""}', token=TOKEN)
        assert status == 400 and json.loads(body)["field"] == "symbl"
        status, body = http(port, "/api/orders?limit=zero")
        assert status == 400 and json.loads(body)["field"] == "limit"
        # the process to command is not running: no control queue
        status, body = http(port, "/api/kill_switch", b'{"on": false}', token=TOKEN)
        assert status == 503 and "risk" in json.loads(body)["error"]
    finally:
        stop(p, instance)


def test_ops_api_when_exec_and_risk_filled_then_orders_positions_risk_and_alerts_read_them(instance, tmp_path, procs):
    reg = build_registry()
    exec_ring = reg.producer(instance, EXEC)
    alerts = reg.producer(instance, alerts_name("risk"))
    risk = reg.writer(instance, RISK_STATE)
    rec = risk.records
    risk.begin()
    rec["trading_state"][0] = M.ACTIVE
    rec["max_position"][0][0] = 100
    rec["mark"][0][0] = 1_000_100
    rec["equity_e8"][0] = 1000 * 10**8
    risk.end()

    def event(seq: int, kind: int, last_qty: int, coid: bytes) -> None:
        r = exec_ring.records
        i = exec_ring.try_claim()
        r[i] = np.zeros((), r.dtype)
        r[i]["event_seq"], r[i]["kind"], r[i]["symbol_id"], r[i]["side"] = seq, kind, 0, M.BUY
        r[i]["price"], r[i]["qty"], r[i]["last_px"], r[i]["last_qty"] = 1_000_000, 10, 1_000_000, last_qty
        r[i]["client_order_id"] = coid
        exec_ring.publish()

    event(1, M.ORDER_ACCEPTED, 0, b"b25-1")
    event(2, M.ORDER_ACCEPTED, 0, b"b25-2")
    event(3, M.ORDER_FILLED, 10, b"b25-2")
    assert alerts.try_publish(time.time_ns(), M.ALERT_WARN, 7, 0, 1.5, b"drawdown near limit")
    p, port = start_monitor(instance, tmp_path, procs)
    try:
        def orders():
            _, body = http(port, "/api/orders")
            return json.loads(body)

        doc = wait_for(lambda: (d := orders())["events_seen"] == 3 and d)
        assert [o["event"] for o in doc["orders"]] == ["accepted", "accepted", "filled"]
        assert doc["open"] == 1
        _, body = http(port, "/api/orders?open=1")
        assert [o["client_order_id"] for o in json.loads(body)["orders"]] == ["b25-1"]
        _, body = http(port, "/api/positions")
        pos = json.loads(body)["positions"]["BTCUSDT"]
        assert pos["position_lots"] == 10 and pos["mark_ticks"] == 1_000_100
        assert pos["unrealized_ticks_lots"] == 1000.0
        status, body = http(port, "/api/risk")
        doc = json.loads(body)
        assert status == 200 and doc["trading_state"] == "ACTIVE" and doc["equity"] == 1000.0
        assert doc["symbols"]["BTCUSDT"]["max_position"] == 100
        _, body = http(port, "/api/alerts")
        a = json.loads(body)["alerts"]
        assert a[0]["text"] == "drawdown near limit" and a[0]["proc"] == "risk" and a[0]["code"] == 7
    finally:
        stop(p, instance)
        for x in (exec_ring, alerts, risk):
            x.close(unlink=True)
