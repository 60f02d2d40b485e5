"""The ops API against a whole running system (simulator, market data, risk, execution, strategy,
monitor): manual orders in and cancelled by client order id, per-strategy state, the health
split, percentiles, the audit trail, and schemathesis running the served OpenAPI document with
and without the ops token.

One stack serves the module; the schemathesis runs come last (with the token they switch the
kill switch and the trading state, cancel orders and enter some).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from procs.core import deploy
from procs.tools.stack import PIPELINE, Stack

pytestmark = pytest.mark.proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # a generous staleness: under a loaded machine a late heartbeat must not turn /health into a 503
    with Stack(tmp_path_factory.mktemp("opsapi"), procs=(*PIPELINE, "monitor"),
               overrides={"monitor": {"stale_after_s": 30.0, "order_answer_s": 10.0}}) as s:
        yield s


def call(stack: Stack, method: str, path: str, body: dict | None = None, token: str | None = "",
         ) -> tuple[int, dict]:
    """(status, JSON body) of one request; token "" = the stack's, None = no Authorization header."""
    req = urllib.request.Request(f"http://127.0.0.1:{stack.monitor_port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token is not None:
        req.add_header("Authorization", f"Bearer {token or stack.token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def a_price_below_the_market(stack: Stack, symbol: str, fraction: str = "0.005") -> str:
    """A limit buy price ``fraction`` under the best bid: rests, and inside risk's price band."""
    inst = deploy.instruments(str(stack.config_path))[symbol]
    bid = Decimal(inst.ticks_to_price(int(stack.wait_for(lambda: stack.book(symbol), "a book")["bid_px"][0])))
    tick = Decimal(inst.tick_size)
    return format((bid * (1 - Decimal(fraction)) / tick).to_integral_value() * tick, "f")


def test_manual_order_when_entered_then_answered_with_its_client_order_id_and_cancelled_by_it(stack):
    price = a_price_below_the_market(stack, "BTCUSDT")
    order = {"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "price": price, "operator": "alice",
             "reason": "test entry"}
    status, body = call(stack, "POST", "/api/orders", order, token=None)
    assert status == 401, body
    status, body = call(stack, "POST", "/api/orders", order, token="wrong")
    assert status == 403, body

    status, body = call(stack, "POST", "/api/orders", order)
    assert status == 201, body
    assert body["outcome"] == "accepted" and body["event"]["source"] == 2 and body["event"]["strategy_id"] == -1
    cid = body["client_order_id"]
    assert cid.startswith("b25-")
    assert cid in [o.client_order_id for o in stack.open_orders("BTCUSDT")]  # on the venue
    _, opened = call(stack, "GET", "/api/orders?open=1")
    assert cid in [o["client_order_id"] for o in opened["orders"]]

    status, body = call(stack, "DELETE", f"/api/orders/{cid}?operator=bob&reason=test+cancel")
    assert (status, body["outcome"], body["client_order_id"]) == (200, "canceled", cid), body
    assert cid not in [o.client_order_id for o in stack.open_orders("BTCUSDT")]
    status, body = call(stack, "DELETE", f"/api/orders/{cid}")
    assert status == 404 and cid in body["error"]

    _, audit = call(stack, "GET", "/api/audit?limit=3")
    got = [(r["action"], r["operator"], r["reason"], r["status"]) for r in audit["records"]]
    assert got == [("DELETE /api/orders/{client_order_id}", "ops-api@127.0.0.1", "", 404),
                   ("DELETE /api/orders/{client_order_id}", "bob", "test cancel", 200),
                   ("POST /api/orders", "alice", "test entry", 201)]
    assert audit["records"][2]["args"]["price"] == price and cid in audit["records"][2]["outcome"]
    assert (stack.run_dir / audit["file"]).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("order", "field", "words"), [
    ({"symbol": "DOGEUSDT", "side": "buy", "qty": "0.001", "price": "1"}, "symbol", "unknown symbol"),
    ({"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "price": "60000.001"}, "price", "tick size"),
    ({"symbol": "BTCUSDT", "side": "buy", "qty": "0.001"}, "price", "required"),
    ({"symbol": "BTCUSDT", "side": "buy", "qty": "0.0001", "price": "60000"}, "qty", "step size"),
    ({"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "type": "market", "tif": "ioc"}, "tif", "market order"),
    ({"symbol": "BTCUSDT", "side": "hold", "qty": "0.001", "price": "60000"}, "side", "one of: buy, sell"),
    ({"symbol": "BTCUSDT", "side": "buy", "qty": 0.001, "price": "60000"}, "qty", "Expected `str`"),
    ({"symbol": "BTCUSDT", "side": "buy", "qty": "0.001", "price": "60000", "leverage": 5}, "leverage", "unknown"),
])
def test_manual_order_when_a_field_is_bad_then_400_names_it_and_nothing_is_sent(stack, order, field, words):
    before = len(stack.order_log())
    status, body = call(stack, "POST", "/api/orders", order)
    assert (status, body["field"]) == (400, field), body
    assert words in body["error"]
    assert len(stack.order_log()) == before


def test_manual_order_when_over_a_risk_limit_then_422_names_execution_check(stack):
    price = a_price_below_the_market(stack, "BTCUSDT")
    # [risk.symbols.BTCUSDT] max_order_qty = 0.05: the instrument allows it, execution's check does not
    status, body = call(stack, "POST", "/api/orders", {"symbol": "BTCUSDT", "side": "buy", "qty": "0.06",
                                                       "price": price, "reason": "too big"})
    assert (status, body["outcome"], body["reason"]) == (422, "denied", "max_order_qty"), body
    assert "pre-trade check" in body["error"] and body["client_order_id"] == ""


def test_cancel_when_the_order_is_a_strategys_then_it_is_cancelled_on_the_venue(stack):
    def strategy_order() -> dict | None:
        _, body = call(stack, "GET", "/api/orders?open=1")
        return next((o for o in body["orders"] if o["strategy_id"] > 0), None)

    order = stack.wait_for(strategy_order, "an open order of mm_btc")
    cid = order["client_order_id"]
    status, body = call(stack, "DELETE", f"/api/orders/{cid}?reason=too+close")
    # the market maker requotes on its own: its order can fill or be replaced before the cancel lands
    assert (status, body["outcome"]) in ((200, "canceled"), (409, "filled"), (409, "canceled")), body
    if status == 200:
        assert body["event"]["strategy_id"] == order["strategy_id"]
        assert cid not in [o.client_order_id for o in stack.open_orders("BTCUSDT")]


def test_strategies_when_the_market_maker_quotes_then_state_positions_pnl_and_orders_show(stack):
    def quoting() -> dict | None:
        _, body = call(stack, "GET", "/api/strategies")
        mm = body["strategies"].get("mm_btc")
        return body if mm and mm["open_orders"] else None

    body = stack.wait_for(quoting, "mm_btc with open orders")
    mm = body["strategies"]["mm_btc"]
    assert body["process"] == {"running": True, "why": ""}
    assert (mm["state"], mm["class"], mm["symbols"], mm["last_error"]) == (
        "running", "strategies.market_maker:MarketMaker", ["BTCUSDT"], None)
    assert {o["side"] for o in mm["open_orders"]} <= {"BUY", "SELL"}
    assert all(o["symbol"] == "BTCUSDT" and Decimal(o["price"]) > 0 and o["tif"] == "post_only"
               for o in mm["open_orders"])
    assert set(mm["pnl"]) == {"realized", "unrealized", "fees", "net"}
    p = mm["pnl"]
    assert p["net"] == pytest.approx(p["realized"] + p["unrealized"] - p["fees"], abs=1e-7)


def test_health_when_the_system_runs_then_live_and_ready_and_status_has_p95(stack):
    status, body = call(stack, "GET", "/health/live", token=None)
    assert status == 200 and body["live"] is True and body["pid"] == stack.pid("monitor")
    status, body = call(stack, "GET", "/health/ready", token=None)
    assert (status, body["ready"], body["why"]) == (200, True, []), body
    status, body = call(stack, "GET", "/health", token=None)
    assert status == 200 and body["healthy"]
    _, body = call(stack, "GET", "/api/status", token=None)
    rows = [r for r in body["latency"] if r["count"]]
    assert rows, body["latency"]
    assert all(r["p50_us"] <= r["p95_us"] <= r["p99_us"] <= r["p999_us"] for r in rows)


def test_ready_when_risk_is_stopped_then_503_names_it_while_live_stays_200(stack):
    stack.kill("risk")
    try:
        status, body = stack.wait_for(lambda: (got := call(stack, "GET", "/health/ready"))[0] == 503 and got,
                                      "ready to turn 503")
        assert any(w.startswith("risk:") for w in body["why"]), body
        assert call(stack, "GET", "/health/live")[0] == 200
    finally:
        stack.start_proc("risk")
        stack.wait_running(["risk"])
    assert stack.wait_for(lambda: call(stack, "GET", "/health/ready")[0] == 200, "ready again")


def run_schemathesis(stack: Stack, token: str | None, out: Path) -> tuple[int, int, str]:
    """``st run`` against the served document: (generated, passed, output); every check must hold."""
    args = [str(Path(sys.executable).with_name("st")), "run", f"http://127.0.0.1:{stack.monitor_port}/api/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                        "response_schema_conformance",
            "--max-examples", "40", "--workers", "1", "--seed", "1", "--request-timeout", "30"]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=out)
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-6000:]
    m = re.search(r"Test cases:\s*\n\s*(\d+) generated, (\d+) passed", text)
    assert m, text[-3000:]
    return int(m.group(1)), int(m.group(2)), text


@pytest.mark.parametrize("with_token", [False, True], ids=["without-token", "with-token"])
def test_schemathesis_when_the_spec_is_fuzzed_then_no_server_error(stack, tmp_path, with_token):
    _, spec = call(stack, "GET", "/api/openapi.json", token=None)
    audit = stack.run_dir / "run" / "audit" / f"{stack.instance}.jsonl"
    audited = audit.read_text().split("\n")[:-1] if audit.exists() else []
    generated, passed, text = run_schemathesis(stack, stack.token if with_token else None, tmp_path)
    print(f"schemathesis {'with' if with_token else 'without'} the token: {generated} generated, {passed} passed")
    assert generated == passed and generated > 10 * len([op for ops in spec["paths"].values() for op in ops])
    assert re.search(r"Operations:\s+(\d+) selected / \1 total", text)
    new = [json.loads(line) for line in (audit.read_text().split("\n")[:-1] if audit.exists() else [])[len(audited):]]
    if with_token:  # the state-changing routes were reached, and each call is on the audit trail
        reached = {r["action"] for r in new if r["status"] < 300}
        assert {"POST /api/kill_switch", "POST /api/trading_state", "POST /api/cancel_all"} <= reached, reached
    else:  # nothing got past the token check
        assert new == []
    # the server stayed up and answers
    assert call(stack, "GET", "/health/live")[0] == 200
