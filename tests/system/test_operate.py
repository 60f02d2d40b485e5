"""Operating the stack (issue 6): a SIGKILLed process shows stale in /health; under supervisord
it comes back without an operator."""

from __future__ import annotations

import pytest

from procs.tools.stack import ORDER
from tests.support.system import NO_STRATEGIES

pytestmark = pytest.mark.proc

REQUIRED = ("market_data", "risk", "execution", "strategy")  # the monitor's default [monitor].required
MM = {"id": "mm_btc", "class": "strategies.market_maker:MarketMaker", "symbols": ["BTCUSDT"],
      "params": {"quote_qty": "0.002", "max_position": "0.01"}}


def _healthy(stack) -> bool:
    return stack.health()[0] == 200


def _stale(stack, proc: str) -> dict | None:
    code, body = stack.health()
    return body if code == 503 and proc in body.get("stale", []) else None


def test_process_when_sigkilled_then_health_names_it_stale_until_it_is_back(make_stack):
    stack = make_stack(procs=ORDER, overrides=NO_STRATEGIES, strategies=[MM])
    stack.wait_for(lambda: _healthy(stack), "/health 200 with everything up")
    for proc in REQUIRED:
        stack.kill(proc)
        body = stack.wait_for(lambda p=proc: _stale(stack, p), f"/health naming {proc} stale")
        assert body["healthy"] is False and body["processes"][proc]["fresh"] is False
        stack.start_proc(proc)  # the operator's (or supervisord's) restart
        stack.wait_running([proc])
        stack.wait_for(lambda: _healthy(stack), f"/health 200 after {proc} came back")


def test_supervisord_when_a_process_is_sigkilled_then_it_is_restarted_without_an_operator(make_stack):
    stack = make_stack(procs=ORDER, overrides=NO_STRATEGIES, strategies=[MM], supervised=True)
    stack.wait_for(lambda: _healthy(stack), "/health 200 under supervisord")
    rpc = stack.supervisor().supervisor
    # every program the deployment runs (ORDER less what b25.toml switches off: the bridge, its NATS
    # server, the notifier; web is on, so it is killed and restarted here too)
    assert {i["name"]: i["statename"] for i in rpc.getAllProcessInfo()} == {p: "RUNNING" for p in stack.procs}
    assert set(ORDER) - set(stack.procs) == {"bridge", "nats_server", "notifier"}
    for proc in stack.procs:
        old = stack.kill(proc)

        def back(p: str = proc, o: int = old) -> bool:
            info = rpc.getProcessInfo(p)
            if info["statename"] != "RUNNING" or info["pid"] == o:
                return False
            st = stack.status(p)  # exchange_sim has no status block: supervisord's word is all there is
            return p == "exchange_sim" or (st is not None and st["pid"] == info["pid"] and st["state"] == "RUNNING")

        stack.wait_for(back, f"{proc} restarted by supervisord", timeout=30)
        stack.wait_for(lambda: _healthy(stack), f"/health 200 after {proc} was restarted", timeout=30)
    assert all(i["statename"] == "RUNNING" for i in rpc.getAllProcessInfo())
