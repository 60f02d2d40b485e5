"""scripts/observability/ with Debian's Prometheus and Alertmanager: the configs pass promtool and
amtool, every alert rule has a passing promtool unit test, and the whole path runs for real: a
Prometheus scraping a running monitor, a rule firing, Alertmanager delivering it to a webhook."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from procs.core.services import PIPELINE
from procs.tools.stack import Stack, free_port
from tests.support import ROOT
from tests.support.externals import require_external
from tests.support.receiver import Receiver

OBS = ROOT / "scripts" / "observability"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.proc
def test_promtool_when_checking_the_shipped_config_and_rules_then_both_are_valid():
    promtool = require_external("promtool", "prometheus")
    config = _run(promtool, "check", "config", str(OBS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout + config.stderr  # alerts.yml is loaded, not just named
    rules = _run(promtool, "check", "rules", str(OBS / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr


@pytest.mark.proc
def test_amtool_when_checking_the_shipped_alertmanager_config_then_it_is_valid():
    amtool = require_external("amtool", "prometheus-alertmanager")
    out = _run(amtool, "check-config", str(OBS / "alertmanager.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.proc
def test_promtool_unit_tests_when_run_then_every_rule_has_one_and_all_pass():
    promtool = require_external("promtool", "prometheus")
    rules = set(re.findall(r"^\s*- alert: (\w+)", (OBS / "alerts.yml").read_text(), re.M))
    tested = {case["alertname"] for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
              for case in t.get("alert_rule_test", ()) if case.get("exp_alerts")}
    assert len(rules) >= 14 and rules == tested, f"rules without a firing case: {sorted(rules - tested)}"
    out = subprocess.run([promtool, "test", "rules", UNIT_TESTS.name], cwd=UNIT_TESTS.parent,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} not up (rc={proc.poll()}): {log.read_text()[-3000:]}")
        time.sleep(0.1)


def _start(procs: list, cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


@pytest.mark.proc
def test_prometheus_and_alertmanager_when_the_kill_switch_halts_trading_then_the_webhook_gets_the_alert(
        tmp_path: Path, instance: str, procs: list):
    prometheus = require_external("prometheus", "prometheus")
    alertmanager = require_external("prometheus-alertmanager", "prometheus-alertmanager")
    with Receiver() as hook, Stack(tmp_path, procs=(*PIPELINE, "monitor"), instance=instance) as stack:
        # the shipped Alertmanager config, pointed at the local receiver, with short test intervals
        am_cfg = yaml.safe_load((OBS / "alertmanager.yml").read_text())
        am_cfg["receivers"][0]["webhook_configs"][0]["url"] = f"{hook.url}/alertmanager"
        for route in (am_cfg["route"], *am_cfg["route"].get("routes", ())):
            route.update(group_wait="0s", group_interval="1s")
        am_port = free_port()
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_cfg))
        am = _start(procs, [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}",
                            f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
                            "--cluster.listen-address="], tmp_path / "alertmanager.log")
        # the shipped Prometheus config, pointed at this stack's monitor and that Alertmanager
        prom_cfg = yaml.safe_load((OBS / "prometheus.yml").read_text())
        prom_cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
        prom_cfg["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{stack.monitor_port}"]
        prom_cfg["rule_files"] = [str(OBS / "alerts.yml")]
        prom_cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg))
        prom_port = free_port()
        prom = _start(procs, [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                              f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                              f"--web.listen-address=127.0.0.1:{prom_port}"], tmp_path / "prometheus.log")
        _wait_http(f"http://127.0.0.1:{am_port}/-/ready", am, tmp_path / "alertmanager.log")
        _wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom, tmp_path / "prometheus.log")
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def query(expr: str) -> list[dict]:
            got = _get_json(f"{api}/query?query={urllib.parse.quote(expr)}")
            assert got["status"] == "success", got
            return got["data"]["result"]

        # a b25_ series over Prometheus's HTTP API: the risk process, up, scraped from the monitor
        up = stack.wait_for(lambda: query('b25_process_up{proc="risk"} == 1'), "risk up in Prometheus", 60)
        assert up[0]["metric"]["job"] == "b25"
        assert stack.wait_for(lambda: query("b25_risk_trading_state == 1"), "ACTIVE in Prometheus", 60)

        req = urllib.request.Request(f"http://127.0.0.1:{stack.monitor_port}/api/kill_switch", method="POST",
                                     data=b'{"on": true, "operator": "prometheus-test"}',
                                     headers={"Authorization": f"Bearer {stack.token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 202

        def firing_halted(rec) -> bool:
            return isinstance(rec.body, dict) and rec.body.get("status") == "firing" and any(
                a["labels"].get("alertname") == "B25RiskHalted" for a in rec.body.get("alerts", ()))

        got = hook.wait_for(firing_halted, "Alertmanager's webhook for B25RiskHalted", 90)
        alert = next(a for a in got[0].body["alerts"] if a["labels"]["alertname"] == "B25RiskHalted")
        assert got[0].path == "/alertmanager"
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["summary"] == "trading HALTED (kill_switch)"
        assert query('ALERTS{alertname="B25RiskHalted",alertstate="firing"}')
