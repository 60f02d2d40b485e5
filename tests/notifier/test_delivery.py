"""The notifier's delivery rules without a process: routes, de-duplication, rate limits, retries
with back-off, a dead endpoint that holds back only itself, and apprise to a real local receiver."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from procs.core import messages as M
from procs.core.config import ConfigError, convert
from procs.notifier.config import AlertsConfig
from procs.notifier.delivery import DeliveryLog, Dispatcher, Metrics, apprise_sender, check_routes
from procs.notifier.sources import Alert
from tests.support.receiver import Receiver


class Endpoint:
    """A send function that records what it got and answers from ``answers`` (True = taken)."""

    def __init__(self, *answers: bool, block: threading.Event | None = None) -> None:
        self.answers = list(answers)
        self.got: list[tuple[float, str, str]] = []
        self.block = block

    def __call__(self, title: str, body: str, _kind: str) -> bool:
        if self.block is not None:
            self.block.wait()
        self.got.append((time.monotonic(), title, body))
        return self.answers.pop(0) if self.answers else True


def make(tmp_path: Path, endpoints: dict[str, Endpoint], **alerts) -> tuple[Dispatcher, Path]:
    cfg = convert({"enabled": True, "delivery_log": str(tmp_path / "d.jsonl"), **alerts}, AlertsConfig)
    dlog = DeliveryLog(cfg.delivery_log)
    d = Dispatcher(cfg, "test", Metrics(None), dlog, sender=lambda url, _t: (endpoints[url], url))
    d.start()
    return d, tmp_path / "d.jsonl"


def outcomes(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait(cond, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return got


KILL = Alert("risk", M.ALERT_CRITICAL, "kill_switch_on", "kill switch ON by ops")
RELOAD = Alert("risk", M.ALERT_INFO, "limits_reloaded", "limits reloaded (version 2)")


def test_dispatcher_when_routes_differ_in_level_and_codes_then_each_gets_only_its_alerts(tmp_path: Path):
    pager, chat = Endpoint(), Endpoint()
    d, _ = make(tmp_path, {"pager": pager, "chat": chat},
                routes=[{"urls": ["pager"], "min_level": "critical"},
                        {"urls": ["chat"], "min_level": "info", "codes": ["risk.limits_reloaded", "process_stale"]}])
    try:
        d.dispatch(KILL)
        d.dispatch(RELOAD)
        d.dispatch(Alert("execution", M.ALERT_WARN, "risk_unavailable", "no risk limits"))
        wait(lambda: len(pager.got) == 1 and len(chat.got) == 1, "one alert at each endpoint")
    finally:
        d.stop()
    assert "kill_switch_on" in pager.got[0][1] and "kill switch ON by ops" in pager.got[0][2]
    assert "limits_reloaded" in chat.got[0][1]


def test_dispatcher_when_the_same_alert_repeats_within_the_window_then_it_is_sent_once(tmp_path: Path):
    ep = Endpoint()
    d, log = make(tmp_path, {"u": ep}, routes=[{"urls": ["u"], "min_level": "info"}], dedup_window_s=60)
    try:
        for _ in range(5):
            d.dispatch(KILL, now=100.0)
        d.dispatch(Alert("risk", M.ALERT_CRITICAL, "kill_switch_on", "kill switch ON by someone else"), now=100.0)
        d.dispatch(KILL, now=161.0)  # past the window: sent again
        wait(lambda: len(ep.got) == 3, "three deliveries")
    finally:
        d.stop()
    assert [r["outcome"] for r in outcomes(log)].count("deduplicated") == 4


def test_dispatcher_when_a_route_exceeds_its_rate_then_urgent_alerts_pass_and_the_rest_are_summed_up(tmp_path: Path):
    ep = Endpoint()
    d, log = make(tmp_path, {"u": ep}, routes=[{"urls": ["u"], "min_level": "info"}], rate_per_minute=2)
    try:
        t0 = time.monotonic()
        for i in range(5):
            d.dispatch(Alert("risk", M.ALERT_INFO, "limits_reloaded", f"version {i}"), now=t0)
        d.dispatch(KILL, now=t0)  # urgent: never held by the rate limit
        d.flush_held(now=t0 + 1)  # no token yet
        wait(lambda: len(ep.got) == 3, "two alerts and the urgent one")
        d.flush_held(now=t0 + 31)  # a token back after 30 s at 2 per minute
        wait(lambda: len(ep.got) == 4, "the summary")
    finally:
        d.stop()
    assert "3 alerts held back" in ep.got[3][2] and "risk.limits_reloaded" in ep.got[3][2]
    assert [r["outcome"] for r in outcomes(log)].count("rate_limited") == 3


def test_courier_when_the_endpoint_fails_then_retries_with_growing_backoff_until_taken_or_given_up(tmp_path: Path):
    flaky, dead = Endpoint(False, False, True), Endpoint(*([False] * 10))
    d, log = make(tmp_path, {"flaky": flaky, "dead": dead}, routes=[{"urls": ["flaky", "dead"], "min_level": "info"}],
                  retries=3, backoff_s=0.05, backoff_max_s=0.15)
    try:
        d.dispatch(KILL)
        wait(lambda: len(flaky.got) == 3 and len(dead.got) == 4, "3 attempts at flaky, 4 at dead")
        rows = wait(lambda: [r for r in outcomes(log) if r["outcome"] == "failed"], "the dead URL given up")
    finally:
        d.stop()
    by_url = {u: [r for r in outcomes(log) if r.get("url") == u] for u in ("flaky", "dead")}
    assert [r["outcome"] for r in by_url["flaky"]] == ["retry", "retry", "delivered"]
    assert [r["retry_in_s"] for r in by_url["dead"] if r["outcome"] == "retry"] == [0.05, 0.1, 0.15]
    assert rows[0]["attempt"] == 4 and rows[0]["error"]
    gaps = [b[0] - a[0] for a, b in zip(dead.got, dead.got[1:], strict=False)]
    assert all(g >= 0.04 for g in gaps), gaps  # never sooner than the back-off


def test_courier_when_one_endpoint_hangs_then_the_other_urls_still_get_every_alert(tmp_path: Path):
    hang = threading.Event()
    stuck, fine = Endpoint(block=hang), Endpoint()
    d, _ = make(tmp_path, {"stuck": stuck, "fine": fine}, routes=[{"urls": ["stuck", "fine"], "min_level": "info"}])
    try:
        for i in range(20):
            d.dispatch(Alert("risk", M.ALERT_CRITICAL, "state_changed", f"change {i}"))
        wait(lambda: len(fine.got) == 20, "all 20 at the working endpoint")
        assert stuck.got == [] and d.couriers()[0].pending() == 19  # one in its hands, 19 queued
    finally:
        hang.set()
        d.stop()


def test_courier_when_its_queue_is_full_then_the_oldest_non_urgent_alert_is_dropped_and_counted(tmp_path: Path):
    hang = threading.Event()
    ep = Endpoint(block=hang)
    d, log = make(tmp_path, {"u": ep}, routes=[{"urls": ["u"], "min_level": "info"}], queue_max=3)
    try:
        d.dispatch(Alert("risk", M.ALERT_INFO, "day_rolled", "first"))
        wait(lambda: d.couriers()[0].pending() == 0, "the first alert taken by the courier")
        for text in ("a", "b", "c"):
            d.dispatch(Alert("risk", M.ALERT_INFO, "day_rolled", text))
        d.dispatch(KILL)
        dropped = [r for r in outcomes(log) if r["outcome"] == "dropped"]
        hang.set()
        wait(lambda: len(ep.got) == 4, "the rest delivered")
    finally:
        hang.set()
        d.stop()
    assert [r["text"] for r in dropped] == ["a"]
    assert ep.got[1][2].startswith("kill switch ON")  # the urgent one went first


def test_apprise_json_url_when_sent_to_a_local_receiver_then_it_gets_title_and_message():
    with Receiver() as r:
        send, shown = apprise_sender(f"json://127.0.0.1:{r.port}/b25", 2.0)
        assert send("b25 main CRITICAL: risk kill_switch_on", "kill switch ON by ops", "failure")
        got = r.wait_for(lambda rec: rec.path == "/b25", "the JSON")
    assert got[0].body["title"] == "b25 main CRITICAL: risk kill_switch_on"
    assert got[0].body["message"] == "kill switch ON by ops" and got[0].body["type"] == "failure"
    assert shown.startswith("json://127.0.0.1")
    with Receiver(status=500) as r:
        send500, _ = apprise_sender(f"json://127.0.0.1:{r.port}/b25", 2.0)
        assert send500("t", "b", "info") is False


def test_alerts_config_when_a_route_is_bad_then_the_error_names_the_field():
    with pytest.raises(ConfigError, match=r"min_level"):
        convert({"routes": [{"urls": ["json://h/x"], "min_level": "loud"}]}, AlertsConfig, "f section [alerts]")
    with pytest.raises(ConfigError, match=r"urls must name at least one"):
        convert({"routes": [{"urls": []}]}, AlertsConfig, "f section [alerts]")
    with pytest.raises(ConfigError, match=r"poll_ms"):
        convert({"poll_ms": 5000}, AlertsConfig, "f section [alerts]")
    cfg = convert({"routes": [{"urls": ["json://h/x", "nosuch://secret@h"]}]}, AlertsConfig)
    with pytest.raises(ConfigError, match=r"routes\[0\]\.urls\[1\].*'nosuch'") as exc:
        check_routes(cfg, "b25.toml")
    assert "secret" not in str(exc.value)
