"""An unmodified third-party Binance USD-M client against a real exchange_sim process.

Client: ``binance-futures-connector`` (PyPI; ``UMFutures(key, secret, base_url=...)``), which
sends every parameter in the query string. The user-data stream and the WebSocket API are
read over real sockets with ``websocket-client`` (a dependency of the connector).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

UMFutures = pytest.importorskip("binance.um_futures").UMFutures
ClientError = pytest.importorskip("binance.error").ClientError
websocket = pytest.importorskip("websocket")
requests = pytest.importorskip("requests")

from procs.exchange_sim.trading.config import DEFAULT_API_KEY, DEFAULT_API_SECRET  # noqa: E402
from procs.venue.binance.signing import sign, ws_payload  # noqa: E402

pytestmark = pytest.mark.proc
ROOT = Path(__file__).resolve().parents[2]
SYM = "BTCUSDT"


class SimProcess:
    """``python -m procs.exchange_sim --port 0 --ws-port 0`` with its ports read from its log."""

    def __init__(self, tmp: Path) -> None:
        self.order_log = tmp / "orders.jsonl"
        cfg = tmp / "sim.toml"
        cfg.write_text(f'[sim_trading]\norder_log = "{self.order_log}"\n')
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "procs.exchange_sim", "--config", str(cfg), "--port", "0", "--ws-port", "0"],
            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 20
        self.rest_port = self.ws_port = 0
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            rec = json.loads(line)
            if rec.get("event") == "listening":
                self.rest_port, self.ws_port = rec["rest_port"], rec["ws_port"]
                break
        if not self.rest_port:
            self.stop()
            raise AssertionError("exchange_sim did not start: " + "".join(self.lines))
        # Keep draining stderr so the process never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(tmp_path_factory.mktemp("sim"))
    try:
        yield p
    finally:
        p.stop()
    assert p.proc.returncode == 0, "".join(p.lines[-20:])
    assert not any(DEFAULT_API_SECRET in line for line in p.lines)


@pytest.fixture
def client(sim: SimProcess) -> UMFutures:
    return UMFutures(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=f"http://127.0.0.1:{sim.rest_port}")


def passive_price(client: UMFutures) -> str:
    """A buy price 3% under the best bid, on the 0.01 grid and inside PERCENT_PRICE."""
    best = Decimal(client.depth(SYM, limit=5)["bids"][0][0])
    return str((best * Decimal("0.97")).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def recv(ws: websocket.WebSocket, want: int, timeout: float = 5.0) -> list[dict]:
    ws.settimeout(timeout)
    out = [json.loads(ws.recv()) for _ in range(want)]
    return out


def test_connector_places_queries_and_cancels_an_order(sim: SimProcess, client: UMFutures) -> None:
    price = passive_price(client)
    placed = client.new_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                              price=price, newClientOrderId="tp-place-1")
    assert placed["status"] == "NEW" and placed["clientOrderId"] == "tp-place-1"
    oid = placed["orderId"]
    q = client.query_order(symbol=SYM, orderId=oid)
    assert q["status"] == "NEW" and Decimal(q["price"]) == Decimal(price)
    assert client.get_open_orders(symbol=SYM, orderId=oid)["orderId"] == oid
    assert [o["orderId"] for o in client.get_orders(symbol=SYM)] == [oid]
    canceled = client.cancel_order(symbol=SYM, orderId=oid)
    assert canceled["status"] == "CANCELED"
    with pytest.raises(ClientError) as ei:
        client.cancel_order(symbol=SYM, orderId=oid)
    assert ei.value.error_code == -2011 and ei.value.status_code == 400
    with pytest.raises(ClientError) as ei:
        client.new_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                         price=price + "1")
    assert ei.value.error_code in (-1111, -4014)
    log = [json.loads(x) for x in sim.order_log.read_text().splitlines()]
    mine = [(r["event"], r["orderId"]) for r in log if r["clientOrderId"] == "tp-place-1"]
    assert mine == [("NEW", oid), ("CANCELED", oid)]


def test_connector_fill_round_trip_with_user_data_stream(sim: SimProcess, client: UMFutures) -> None:
    key = client.new_listen_key()["listenKey"]
    ws = websocket.create_connection(f"ws://127.0.0.1:{sim.ws_port}/ws/{key}", timeout=5)
    private = websocket.create_connection(
        f"ws://127.0.0.1:{sim.ws_port}/private/ws?listenKey={key}&events=ACCOUNT_UPDATE", timeout=5)
    try:
        before = Decimal(client.balance()[0]["balance"])
        res = client.new_order(symbol=SYM, side="BUY", type="MARKET", quantity="0.005",
                               newOrderRespType="RESULT")
        assert res["status"] == "FILLED" and res["executedQty"] == "0.005"
        events = []
        while not any(e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED" for e in events) or \
                not any(e["e"] == "ACCOUNT_UPDATE" for e in events):
            events += recv(ws, 1)
        otu = [(e["o"]["x"], e["o"]["X"]) for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
        assert otu[0] == ("NEW", "NEW") and otu[-1] == ("TRADE", "FILLED")
        fills = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"]
        assert sum(Decimal(f["l"]) for f in fills) == Decimal("0.005")
        fee = sum(Decimal(f["n"]) for f in fills)
        assert fee > 0 and all(f["m"] is False for f in fills)
        pos = client.get_position_risk(symbol=SYM)
        assert Decimal(pos[0]["positionAmt"]) >= Decimal("0.005")
        after = Decimal(client.balance()[0]["balance"])
        assert after == before - fee
        acct = client.account()
        assert Decimal(acct["totalWalletBalance"]) == after
        assert recv(private, 1)[0]["e"] == "ACCOUNT_UPDATE"
        client.renew_listen_key(key)
        client.close_listen_key(key)
    finally:
        ws.close()
        private.close()


def test_ws_api_order_over_a_real_socket_and_fault_endpoint(sim: SimProcess, client: UMFutures) -> None:
    ws = websocket.create_connection(f"ws://127.0.0.1:{sim.ws_port}/ws-fapi/v1", timeout=5)
    try:
        params: dict = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
                        "price": passive_price(client), "apiKey": DEFAULT_API_KEY,
                        "timestamp": int(time.time() * 1000), "newClientOrderId": "tp-ws-1"}
        params["signature"] = sign(DEFAULT_API_SECRET, ws_payload(params))
        ws.send(json.dumps({"id": "a1", "method": "order.place", "params": params}))
        resp = recv(ws, 1)[0]
        assert resp["id"] == "a1" and resp["status"] == 200 and resp["result"]["status"] == "NEW", resp
        assert client.query_order(symbol=SYM, origClientOrderId="tp-ws-1")["status"] == "NEW"
        r = requests.post(f"http://127.0.0.1:{sim.rest_port}/sim/trade_fault", json={"fault": "disconnect"},
                          timeout=5)
        assert r.status_code == 200 and r.json()["closed"] == 1
        ws.settimeout(5)
        # WebSocketException also covers a close frame the client finds malformed: the point here
        # is that the server ended the connection.
        with pytest.raises((websocket.WebSocketException, ConnectionError, OSError)):
            ws.recv()
            ws.recv()
    finally:
        ws.close()
    client.cancel_open_orders(symbol=SYM)
    assert client.get_orders(symbol=SYM) == []


def flatten(client: UMFutures) -> None:
    """Close the module's position (earlier tests leave one) with a reduce-only market order."""
    for row in client.get_position_risk(symbol=SYM):
        amt = Decimal(row["positionAmt"])
        if amt:
            client.new_order(symbol=SYM, side="SELL" if amt > 0 else "BUY", type="MARKET", quantity=str(abs(amt)),
                             reduceOnly="true")
    assert client.get_position_risk(symbol=SYM) == []


def test_connector_startup_surface_of_a_trading_framework(sim: SimProcess, client: UMFutures) -> None:
    """Every start-up read of section F answers (no 404); the settings calls succeed."""
    flatten(client)
    assert client.symbol_configuration(symbol=SYM)[0]["symbol"] == SYM
    assert client.get_position_mode() == {"dualSidePosition": False}
    assert set(client.commission_rate(symbol=SYM)) == {"symbol", "makerCommissionRate", "takerCommissionRate"}
    assert client.leverage_brackets(symbol=SYM)["brackets"][0]["bracket"] == 1
    assert client.get_multi_asset_mode() == {"multiAssetsMargin": False}
    assert client.futures_account_configuration()["dualSidePosition"] is False
    assert "positions" in client.account()
    assert isinstance(client.get_position_risk(), list)
    assert isinstance(client.get_orders(), list) and isinstance(client.get_all_orders(symbol=SYM), list)
    assert isinstance(client.get_account_trades(symbol=SYM), list)
    assert isinstance(client.get_income_history(), list)
    assert client.sign_request("GET", "/fapi/v1/openAlgoOrders", {}) == []
    assert client.change_leverage(symbol=SYM, leverage=10) == {"leverage": 10, "maxNotionalValue": "230000000",
                                                                "symbol": SYM}
    assert client.change_margin_type(symbol=SYM, marginType="ISOLATED") == {"code": 200, "msg": "success"}
    with pytest.raises(ClientError) as ei:
        client.change_margin_type(symbol=SYM, marginType="ISOLATED")
    assert ei.value.error_code == -4046
    client.change_margin_type(symbol=SYM, marginType="CROSSED")
    assert client.symbol_configuration(symbol=SYM)[0]["marginType"] == "CROSSED"


def test_connector_modify_batch_stop_market_and_countdown(sim: SimProcess, client: UMFutures) -> None:
    price = passive_price(client)
    placed = client.new_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                              price=price)
    lower = str(Decimal(price) - Decimal("1"))
    modified = client.modify_order(symbol=SYM, side="BUY", quantity="0.020", price=lower, orderId=placed["orderId"])
    assert (modified["price"], modified["origQty"]) == (f"{Decimal(lower):.2f}", "0.020")
    assert client.query_order(symbol=SYM, orderId=placed["orderId"])["origQty"] == "0.020"
    batch = client.new_batch_order([
        {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": lower},
        {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": price},
    ])
    ids = [placed["orderId"]] + [b["orderId"] for b in batch]
    canceled = client.cancel_batch_order(symbol=SYM, orderIdList=ids, origClientOrderIdList=None)
    assert [c["status"] for c in canceled] == ["CANCELED"] * 3
    # a STOP_MARKET just above the ask, then a market buy that trades through it
    ask = Decimal(client.depth(SYM, limit=5)["asks"][0][0])
    stop = None
    for _ in range(5):  # the generated market moves: retry a stop it has already passed (-2021)
        try:
            stop = client.new_order(symbol=SYM, side="BUY", type="STOP_MARKET", quantity="0.010",
                                    stopPrice=str(ask + Decimal("0.02")))
            break
        except ClientError as e:
            assert e.error_code == -2021
            ask = Decimal(client.depth(SYM, limit=5)["asks"][0][0])
    assert stop is not None and stop["type"] == "STOP_MARKET"
    client.new_order(symbol=SYM, side="BUY", type="MARKET", quantity="1.000")
    deadline = time.monotonic() + 10
    while client.query_order(symbol=SYM, orderId=stop["orderId"])["status"] == "NEW" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.query_order(symbol=SYM, orderId=stop["orderId"])["status"] == "EXPIRED"
    triggered = [o for o in client.get_all_orders(symbol=SYM) if o["origType"] == "STOP_MARKET" and
                 o["type"] == "MARKET"]
    assert len(triggered) == 1 and triggered[0]["status"] == "FILLED" and triggered[0]["executedQty"] == "0.010"
    assert Decimal(client.get_position_risk(symbol=SYM)[0]["positionAmt"]) >= Decimal("1.010")
    flatten(client)
    # the dead-man switch cancels what is open when no heartbeat comes
    resting = client.new_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                               price=passive_price(client))
    assert client.countdown_cancel_order(symbol=SYM, countdownTime=300) == {"symbol": SYM, "countdownTime": "300"}
    deadline = time.monotonic() + 10
    while client.get_orders(symbol=SYM) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.query_order(symbol=SYM, orderId=resting["orderId"])["status"] == "CANCELED"
    assert not [line for line in sim.lines if "unknown_path" in line]


def test_client_run_when_startup_trade_modify_batch_cancel_conditional_then_no_404_and_no_silent_stream(
        sim: SimProcess, client: UMFutures) -> None:
    """The issue's done-when run: a client calls every start-up endpoint of section F, then
    trades, amends, batch-cancels and places (and cancels) a conditional order on the algo
    service, with the user stream open on the URL forms that used to be silent or 404: each
    delivers every event, and the simulator logged no unknown path."""
    flatten(client)
    key = client.new_listen_key()["listenKey"]
    streams = {"plain": websocket.create_connection(f"ws://127.0.0.1:{sim.ws_port}/ws?listenKey={key}", timeout=5),
               "wrapped": websocket.create_connection(f"ws://127.0.0.1:{sim.ws_port}/stream?streams={key}", timeout=5)}
    try:
        assert client.exchange_info()["symbols"]
        startup = [client.symbol_configuration(symbol=SYM), client.get_position_mode(),
                   client.commission_rate(symbol=SYM), client.leverage_brackets(symbol=SYM),
                   client.get_multi_asset_mode(), client.account(), client.get_position_risk(), client.get_orders(),
                   client.get_all_orders(symbol=SYM), client.get_account_trades(symbol=SYM),
                   client.get_income_history(), client.sign_request("GET", "/fapi/v1/openAlgoOrders", {})]
        assert all(r is not None for r in startup)
        price = passive_price(client)
        placed = client.new_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                                  price=price, newClientOrderId="run-1")
        lower = str(Decimal(price) - Decimal("1"))
        client.modify_order(symbol=SYM, side="BUY", quantity="0.020", price=lower, orderId=placed["orderId"])
        more = client.new_batch_order([
            {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": lower,
             "newClientOrderId": f"run-{k}"} for k in (2, 3)])
        canceled = client.cancel_batch_order(symbol=SYM, orderIdList=None,
                                             origClientOrderIdList=["run-1", "run-2", "run-3"])
        assert [c["status"] for c in canceled] == ["CANCELED"] * 3 and len(more) == 2
        stop = client.sign_request("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": SYM, "side": "SELL", "type": "STOP_MARKET", "quantity": "0.010",
            "triggerPrice": str((Decimal(price) * Decimal("0.9")).quantize(Decimal("0.01"))), "clientAlgoId": "run-sl"})
        assert stop["algoStatus"] == "NEW"
        client.sign_request("DELETE", "/fapi/v1/algoOrder", {"symbol": SYM, "clientAlgoId": "run-sl"})
        want = {("ORDER_TRADE_UPDATE", "run-1", "NEW"), ("ORDER_TRADE_UPDATE", "run-1", "AMENDMENT"),
                ("ORDER_TRADE_UPDATE", "run-1", "CANCELED"), ("ORDER_TRADE_UPDATE", "run-2", "CANCELED"),
                ("ORDER_TRADE_UPDATE", "run-3", "CANCELED"), ("ALGO_UPDATE", "run-sl", "NEW"),
                ("ALGO_UPDATE", "run-sl", "CANCELED")}
        for form, ws in streams.items():
            seen: set[tuple[str, str, str]] = set()
            deadline = time.monotonic() + 10
            while not want <= seen and time.monotonic() < deadline:
                ws.settimeout(max(0.1, deadline - time.monotonic()))
                msg = json.loads(ws.recv())
                ev = msg["data"] if form == "wrapped" else msg
                if form == "wrapped":
                    assert msg["stream"] == key
                o = ev.get("o") or {}
                if ev.get("e") == "ORDER_TRADE_UPDATE":
                    seen.add(("ORDER_TRADE_UPDATE", o["c"], o["x"]))
                elif ev.get("e") == "ALGO_UPDATE":
                    seen.add(("ALGO_UPDATE", o["caid"], o["X"]))
            assert want <= seen, (form, sorted(want - seen))
    finally:
        for ws in streams.values():
            ws.close()
    assert not [line for line in sim.lines if "unknown_path" in line]
