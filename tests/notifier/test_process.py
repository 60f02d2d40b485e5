"""The notifier as a process beside a running stack: a kill switch set through the ops API
reaches a local HTTP receiver as apprise's JSON, and a receiver that answers 500 gets every
retry while the trading pipeline runs on untouched. Also the watchdog over real status blocks."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from procs.core import messages as M
from procs.core.services import PIPELINE
from procs.core.status import State, StatusWriter
from procs.monitor.shmview import InstanceView
from procs.notifier.agent import watched
from procs.notifier.sources import Watchdog
from procs.tools.stack import Stack
from shm.inspect import describe
from shm.segment import list_segments
from tests.support.receiver import Receiver

ECHO = {"id": "echo", "class": "strategies.echo:Echo", "symbols": ["BTCUSDT"]}


def stack_with_notifier(tmp_path: Path, instance: str, url: str, **alerts) -> Stack:
    route = {"name": "ops", "urls": [url], "min_level": "info"}
    return Stack(tmp_path, procs=(*PIPELINE, "monitor", "notifier"), instance=instance,
                 overrides={"alerts": {"enabled": True, "routes": [route], **alerts},
                            "strategy": {"strategies": []}}, strategies=[ECHO])


def kill_switch(stack: Stack) -> float:
    """POST /api/kill_switch on; returns time.monotonic() just before the request."""
    req = urllib.request.Request(f"http://127.0.0.1:{stack.monitor_port}/api/kill_switch", method="POST",
                                 data=b'{"on": true, "operator": "notifier-test"}',
                                 headers={"Authorization": f"Bearer {stack.token}"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 202
    return t0


def metric(stack: Stack, line_start: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.monitor_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def deliveries(stack: Stack) -> list[dict]:
    path = stack.run_dir / "deliveries.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def is_kill(rec) -> bool:
    return isinstance(rec.body, dict) and "kill switch ON by notifier-test" in rec.body.get("message", "")


@pytest.mark.proc
def test_notifier_when_the_kill_switch_is_set_through_the_ops_api_then_the_receiver_gets_its_json(
        tmp_path: Path, instance: str):
    with Receiver() as hook:
        with stack_with_notifier(tmp_path, instance, f"json://127.0.0.1:{hook.port}/b25") as s:
            s.wait_for(lambda: s.order_log(), "the echo strategy trading")
            t0 = kill_switch(s)
            got = hook.wait_for(is_kill, "the kill switch alert at the receiver", 30)
            delay = got[0].at - t0
            print(f"kill switch (ops API) -> webhook JSON: {delay * 1000:.1f} ms")
            body = got[0].body
            assert body["type"] == "failure" and "CRITICAL: risk kill_switch_on" in body["title"]
            assert got[0].path == "/b25"
            s.wait_for(lambda: metric(s, 'b25_deliveries_total{proc="notifier"}') >= 1, "the delivery counted", 10)
            assert metric(s, 'b25_latency_seconds_count{proc="notifier",stage="raise_to_delivered"}') >= 1
            rows = [r for r in deliveries(s) if r["code"] == "kill_switch_on"]
            assert rows and rows[0]["outcome"] == "delivered" and rows[0]["route"] == "ops"
            # the state change that followed (ACTIVE -> HALTED) went out too, as its own alert
            hook.wait_for(lambda rec: isinstance(rec.body, dict) and "risk state_changed" in rec.body["title"],
                          "the state change alert", 10)


@pytest.mark.proc
def test_notifier_when_the_receiver_answers_500_then_it_retries_and_the_pipeline_does_not_notice(
        tmp_path: Path, instance: str):
    with Receiver(status=500) as hook:
        with stack_with_notifier(tmp_path, instance, f"json://127.0.0.1:{hook.port}/b25",
                                 retries=3, backoff_s=0.2, backoff_max_s=1.0) as s:
            s.wait_for(lambda: s.order_log(), "the echo strategy trading")
            books_before = s.counters("strategy")[0]["books_in"]
            kill_switch(s)
            attempts = hook.wait_for(is_kill, "the kill switch alert", 30)
            s.wait_for(lambda: len([r for r in hook.snapshot() if is_kill(r)]) == 4, "1 attempt + 3 retries", 30)
            s.wait_for(lambda: [r for r in deliveries(s) if r["code"] == "kill_switch_on" and r["outcome"] == "failed"],
                       "the alert given up in the delivery log", 10)
            attempts = [r for r in hook.snapshot() if is_kill(r)]
            gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:], strict=False)]
            assert all(g >= 0.15 for g in gaps) and gaps[-1] > gaps[0], gaps  # backing off, not hammering
            outcomes = [r["outcome"] for r in deliveries(s) if r["code"] == "kill_switch_on"]
            assert outcomes == ["retry", "retry", "retry", "failed"]
            s.wait_for(lambda: metric(s, 'b25_delivery_failures_total{proc="notifier"}') >= 1, "the failure counted", 10)
            assert metric(s, 'b25_delivery_retries_total{proc="notifier"}') >= 3
            # the pipeline ran on: books kept flowing to strategy, every process stayed fresh, and the
            # notifier holds no consumer slot on any ring (no producer can ever wait for it)
            assert s.counters("strategy")[0]["books_in"] > books_before
            for proc in ("market_data", "strategy", "execution", "risk"):
                st = s.status(proc)
                assert st and st["state"] == "RUNNING" and st["alive"], (proc, st)
            for seg in list_segments(instance):
                d = describe(seg)
                if d.get("kind") == "ring":
                    assert all(c["pid"] != s.pid("notifier") for c in d["consumers"]), seg


def test_watchdog_when_a_required_process_stops_then_raises_stale_once_and_back_when_it_returns(instance: str):
    view = InstanceView(instance)
    st = StatusWriter(instance, "risk")
    try:
        st.set_state(State.RUNNING)
        dog = Watchdog(view, ("risk", "execution"), stale_after_s=2.0, start_grace_s=10.0, now=0.0)
        assert dog.poll(now=1.0) == []  # execution absent, but still within the start grace
        late = dog.poll(now=11.0)
        assert [(a.source, a.code) for a in late] == [("execution", "process_stale")]
        assert "no status block" in late[0].text and late[0].level == M.ALERT_CRITICAL
        st.set_state(State.STOPPED)
        assert [(a.source, a.code) for a in dog.poll(now=12.0)] == [("risk", "process_stale")]
        assert dog.poll(now=13.0) == []  # once, not on every poll
        st.set_state(State.RUNNING)
        assert [(a.source, a.code) for a in dog.poll(now=14.0)] == [("risk", "process_back")]
    finally:
        st.close(unlink=True)
        view.close()


def test_watched_when_programs_are_switched_on_or_off_then_every_running_one_but_the_notifier_is_watched():
    assert watched({}) == ("exchange_sim", "market_data", "risk", "execution", "strategy", "monitor")
    assert watched({"deploy": {"sim": False}, "web": {"enabled": True}, "alerts": {"enabled": True},
                    "bridge": {"enabled": True, "embedded_server": True}}) == (
        "market_data", "risk", "execution", "strategy", "bridge", "monitor", "web")  # nats-server: no status block


@pytest.mark.proc
def test_notifier_when_its_routes_are_reloaded_then_the_next_alert_goes_to_the_new_receiver(
        tmp_path: Path, instance: str):
    import tomllib

    from procs.tools.stack import dumps_toml

    with Receiver() as old, Receiver() as new:
        with stack_with_notifier(tmp_path, instance, f"json://127.0.0.1:{old.port}/old") as s:
            s.wait_running()
            pid = s.pid("notifier")
            doc = tomllib.loads(s.config_path.read_text())
            doc["alerts"]["routes"] = [{"name": "desk", "urls": [f"json://127.0.0.1:{new.port}/new"], "min_level": "info"}]
            s.config_path.write_text(dumps_toml(doc))
            req = urllib.request.Request(f"http://127.0.0.1:{s.monitor_port}/api/config/reload", method="POST",
                                         data=b'{"reason": "route to the desk", "operator": "ops"}',
                                         headers={"Authorization": f"Bearer {s.token}"})
            with urllib.request.urlopen(req, timeout=60) as r:
                done = json.loads(r.read())
            notifier = next(x for x in done["services"] if x["service"] == "notifier")
            assert notifier["action"] == "reloaded" and notifier["fields"] == [
                "[alerts] routes[0].name", "[alerts] routes[0].urls"], done
            kill_switch(s)
            got = new.wait_for(is_kill, "the kill switch alert at the new receiver", 30)
            assert got[0].path == "/new"
            assert not [rec for rec in old.snapshot() if is_kill(rec)]
            rows = s.wait_for(lambda: [r for r in deliveries(s) if r["code"] == "kill_switch_on"],
                              "the delivery logged", 10)
            assert rows[0]["route"] == "desk" and rows[0]["outcome"] == "delivered"
            assert s.pid("notifier") == pid
