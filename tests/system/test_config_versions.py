"""Config versions on a running stack (issue 21): every start and reload kept, a risk limit
changed through the ops API and rolled back with ``b25 config rollback``, risk.state following
each without a restart; restart-only changes named, not applied."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from typing import Any

import pytest

from procs.core.status import read_status
from procs.core.versions import store_for
from procs.tools.stack import ORDER, dumps_toml
from tests.support import ROOT
from tests.support.system import NO_STRATEGIES

pytestmark = pytest.mark.proc

PIPELINE = ("market_data", "risk", "execution", "strategy", "monitor")


def _post(stack: Any, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{stack.monitor_port}{path}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(stack: Any, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.monitor_port}{path}", timeout=10) as r:
        return json.loads(r.read())


def _b25(stack: Any, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "procs.cli", "config", "--config", str(stack.config_path),
                           "--instance", stack.instance, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _edit(stack: Any, change: Any) -> None:
    doc = tomllib.loads(stack.config_path.read_text())
    change(doc)
    stack.config_path.write_text(dumps_toml(doc))


def _btc_qty_lots(stack: Any) -> int:
    return int(stack.risk_state()["max_order_qty"][0])


def _set_btc_qty(qty: str) -> Any:
    def change(doc: dict) -> None:
        doc["risk"].setdefault("symbols", {}).setdefault("BTCUSDT", {})["max_order_qty"] = qty
    return change


def test_rollback_when_a_risk_limit_changed_then_risk_state_follows_without_a_restart(make_stack) -> None:
    stack = make_stack(procs=ORDER, overrides=NO_STRATEGIES)
    stack.wait_running(PIPELINE)
    store = store_for(stack.config_path, stack.instance)
    first = store.versions()
    assert [v.seq for v in first] == [1] and set(PIPELINE) <= set(first[0].processes)
    assert {e.event for e in first[0].applied} == {"start"}
    risk_pid, lots_before = stack.pid("risk"), _btc_qty_lots(stack)
    assert lots_before > 0

    # 1. a tighter BTC order size, put into service through the ops API (token, operator, reason)
    _edit(stack, _set_btc_qty("0.02"))
    code, body = _post(stack, "/api/config/reload", {"reason": "tighten BTC size", "operator": "alice"})
    assert code == 401, body  # no token: refused, nothing applied
    code, body = _post(stack, "/api/config/reload", {"reason": "tighten BTC size", "operator": "alice"}, stack.token)
    assert code == 200, body
    by = {s["service"]: s for s in body["services"]}
    assert by["risk"]["action"] == "reloaded" and by["risk"]["fields"] == ["[risk] symbols.BTCUSDT.max_order_qty"]
    assert body["complete"] is True and body["seq"] == 2
    lots_tight = stack.wait_for(lambda: (n := _btc_qty_lots(stack)) != lots_before and n, "risk.state's new BTC size",
                                timeout=5)
    assert lots_tight * 5 == lots_before * 2  # 0.02 against the shipped 0.05: same instrument, same lot
    v2 = store.version(2)
    assert (v2.first.source, v2.first.operator, v2.first.reason) == ("ops_api", "alice", "tighten BTC size")
    assert "risk" in v2.processes and read_status(stack.instance, "risk")["config_hash"] == v2.sha256[:16]
    by_risk = next(e for e in v2.applied if e.process == "risk")  # the SIGHUP'd process says who asked
    assert (by_risk.event, by_risk.source, by_risk.operator, by_risk.sections) == ("reload", "ops_api", "alice", ["risk"])

    # 2. history and diff say what changed and what it needs
    hist = _b25(stack, "history")
    assert hist.returncode == 0, hist.stderr
    assert "ops_api" in hist.stdout and "alice" in hist.stdout and "tighten BTC size" in hist.stdout
    diff = _b25(stack, "diff", "1", "2")
    assert diff.returncode == 0, diff.stderr
    assert '[risk] symbols.BTCUSDT.max_order_qty: "0.05" -> "0.02"    (reload risk)' in diff.stdout
    assert _b25(stack, "show", "1").stdout == store.data(1).decode()

    # 3. rolled back to version 1 from the command line: risk.state follows, risk was not restarted
    back = _b25(stack, "rollback", "1", "--reason", "undo the tightening", "--operator", "bob")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "risk          reloaded: [risk] symbols.BTCUSDT.max_order_qty" in back.stdout
    stack.wait_for(lambda: _btc_qty_lots(stack) == lots_before, "risk.state back at version 1's BTC size", timeout=5)
    assert stack.pid("risk") == risk_pid
    assert stack.config_path.read_bytes() == store.data(1)
    rb = [e for e in store.version(1).applied if e.event == "rollback"]
    assert rb and (rb[0].source, rb[0].operator, rb[0].reason) == ("cli", "bob", "rollback to 1: undo the tightening")
    assert _get(stack, "/api/risk")["symbols"]["BTCUSDT"]["max_order_qty"] == lots_before
    assert {v["seq"] for v in _get(stack, "/api/config/versions")["versions"]} == {1, 2}
    now = _get(stack, "/api/config")
    assert now["seq"] == 1 and now["running"]["risk"]["seq"] == 1
    assert now["config"]["venue"]["api_secret"] == "***"


def test_reload_when_a_restart_only_field_changed_then_it_is_named_and_nothing_restarts(make_stack) -> None:
    stack = make_stack(procs=ORDER, overrides=NO_STRATEGIES)
    stack.wait_running(PIPELINE)
    pids = {p: stack.pid(p) for p in ("execution", "market_data", "risk")}
    _edit(stack, lambda doc: doc["execution"].update(fsync="always"))
    code, body = _post(stack, "/api/config/reload", {"reason": "safer journal"}, stack.token)
    assert code == 200, body
    by = {s["service"]: s for s in body["services"]}
    assert by["execution"]["action"] == "restart needed" and by["execution"]["fields"] == ["[execution] fsync"]
    assert by["risk"]["action"] == "unchanged" and body["complete"] is False

    # a SIGHUP anyway (supervisorctl signal HUP execution): refused naming the field, still running
    old_hash = read_status(stack.instance, "execution")["config_hash"]
    os.kill(pids["execution"], signal.SIGHUP)
    stack.wait_for(lambda: stack.log_events("execution", "reload_refused"), "execution's reload_refused")
    refused = stack.log_events("execution", "reload_refused")[-1]["reason"]
    assert "[execution] fsync can only change with a restart" in refused
    assert read_status(stack.instance, "execution")["config_hash"] == old_hash

    # market_data takes a watchdog timing on SIGHUP; its book engine only with a restart
    _edit(stack, lambda doc: doc["market_data"].update(stale_after_s=7.0))
    os.kill(pids["market_data"], signal.SIGHUP)
    stack.wait_for(lambda: stack.log_events("market_data", "config_reloaded"), "market_data's config_reloaded")
    assert stack.log_events("market_data", "config_reloaded")[-1]["changed"] == ["stale_after_s"]
    _edit(stack, lambda doc: doc["market_data"].update(book_engine="python"))
    os.kill(pids["market_data"], signal.SIGHUP)
    stack.wait_for(lambda: stack.log_events("market_data", "reload_refused"), "market_data's reload_refused")
    assert "[market_data] book_engine can only change" in stack.log_events("market_data", "reload_refused")[-1]["reason"]
    assert {p: stack.pid(p) for p in pids} == pids


def test_config_change_when_the_file_is_invalid_then_400_listing_every_problem_and_nothing_written(
        make_stack) -> None:
    stack = make_stack(procs=("exchange_sim", "market_data", "risk", "monitor"), overrides=NO_STRATEGIES)
    stack.wait_running(("risk", "monitor"))
    good = stack.config_path.read_bytes()
    stack.config_path.write_text(good.decode() + '\n[riks]\nmax_drawdown = "1"\n')
    code, body = _post(stack, "/api/config/reload", {"reason": "typo"}, stack.token)
    assert code == 400 and any("section=[riks]" in p for p in body["problems"]), body
    code, body = _post(stack, "/api/config/rollback", {"seq": 9, "reason": "nope"}, stack.token)
    assert code == 400 and body.get("field") == "seq", body
    code, body = _post(stack, "/api/config/rollback", {"seq": 1}, stack.token)
    assert code == 400 and body.get("field") == "reason", body
    assert [v.seq for v in store_for(stack.config_path, stack.instance).versions()] == [1]
    # the broken file is what a rollback is for: version 1 back in place, every process on it
    code, body = _post(stack, "/api/config/rollback", {"seq": 1, "reason": "the file was broken"}, stack.token)
    assert code == 200 and body["complete"] is True, [s for s in body["services"] if s["action"] != "not running"]
    assert stack.config_path.read_bytes() == good


def test_reload_when_the_monitor_token_file_changes_then_the_new_token_is_the_one_accepted(make_stack) -> None:
    stack = make_stack(procs=("exchange_sim", "market_data", "risk", "monitor"), overrides=NO_STRATEGIES)
    stack.wait_running(("risk", "monitor"))
    pid = stack.pid("monitor")
    new_file = stack.run_dir / "rotated.token"
    fd = os.open(new_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"rotated-secret\n")
    os.close(fd)
    _edit(stack, lambda doc: doc["monitor"].update(token_file=str(new_file)))
    code, body = _post(stack, "/api/config/reload", {"reason": "rotate the ops token"}, stack.token)
    assert code == 200 and {s["service"]: s["action"] for s in body["services"]}["monitor"] == "reloaded", body
    code, _ = _post(stack, "/api/config/reload", {"reason": "old token"}, stack.token)
    assert code == 403
    code, body = _post(stack, "/api/config/reload", {"reason": "new token"}, "rotated-secret")
    assert code == 200, body
    assert stack.pid("monitor") == pid


def test_rollback_with_restart_when_a_restart_only_field_differs_then_supervisorctl_restarts_that_process(
        make_stack) -> None:
    stack = make_stack(procs=ORDER, overrides=NO_STRATEGIES, supervised=True)
    stack.wait_running(PIPELINE)
    store = store_for(stack.config_path, stack.instance)
    pids = {p: stack.pid(p) for p in PIPELINE}
    _edit(stack, lambda doc: doc["execution"].update(fsync="always"))
    code, body = _post(stack, "/api/config/reload", {"reason": "safer journal"}, stack.token)
    assert code == 200 and body["complete"] is False, body
    back = _b25(stack, "rollback", "2", "--reason", "apply the journal change", "--restart",
                "--supervisor-conf", str(stack.run_dir / "supervisord.conf"))
    assert back.returncode == 0, back.stdout + back.stderr
    assert "execution     restarted: [execution] fsync" in back.stdout
    st = read_status(stack.instance, "execution")
    assert st["pid"] != pids["execution"] and st["config_hash"] == store.version(2).sha256[:16]
    assert {p: stack.pid(p) for p in PIPELINE if p != "execution"} == {p: pids[p] for p in PIPELINE if p != "execution"}
