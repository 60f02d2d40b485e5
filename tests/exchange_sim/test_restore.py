"""A venue restart ([sim_trading] restore): the accounts come back from the order log, open orders
vanish (closed in the log as venue_restart), every order stays queryable with its last status,
ids never repeat, the session is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs.core.config import ConfigError, convert
from procs.exchange_sim.trading.config import TradingConfig
from tests.support.trading import SYM
from tests.support.trading import TradingApi as Api


def venue(path: Path) -> Api:
    return Api(order_log=str(path), restore=True)


def snapshot(api: Api) -> dict:
    """What a client can see of the account: positions, wallet, trade history, income."""
    pos = [(p["symbol"], p["positionAmt"], p["entryPrice"]) for p in api.ok("GET", "/fapi/v2/positionRisk")
           if float(p["positionAmt"])]
    acct = api.ok("GET", "/fapi/v2/account")
    return {"positions": pos, "wallet": acct["totalWalletBalance"],
            "trades": api.ok("GET", "/fapi/v1/userTrades", symbol=SYM),
            "income": api.ok("GET", "/fapi/v1/income")}


def test_restart_when_log_has_fills_and_open_orders_then_account_is_back_and_orders_vanish(tmp_path):
    log = tmp_path / "orders.jsonl"
    first = venue(log)
    session = first.rest.session
    first.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
             quantity="0.5", price="60001", newClientOrderId="taker-1")  # takes the ask (an ACK answers NEW)
    first.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.003")
    taken = first.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="taker-1")
    assert taken["status"] == "FILLED" and taken["executedQty"] == "0.500"
    rest = first.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="0.1", price="59000", newClientOrderId="resting-1")
    before = snapshot(first)
    assert before["positions"] and len(before["trades"]) >= 2
    first.rest.venue.close()

    again = venue(log)
    assert again.rest.session == session  # the same account: a strategy's saved positions stay valid
    assert snapshot(again) == before
    assert again.ok("GET", "/fapi/v1/openOrders") == []
    # Every order is still known, as the exchange keeps closed orders: a client that never heard
    # back must learn the order was accepted (and what it filled), not "does not exist" (a resend).
    assert again.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="taker-1") == taken
    gone = again.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=rest["orderId"])
    assert (gone["clientOrderId"], gone["status"], gone["executedQty"]) == ("resting-1", "EXPIRED", "0.000")
    assert again.error("DELETE", "/fapi/v1/order", symbol=SYM, origClientOrderId="resting-1") == -2011
    closed = [e for e in again.rest.order_log if e["clientOrderId"] == "resting-1"]
    assert [e["event"] for e in closed] == ["NEW", "EXPIRED"] and closed[-1]["reason"] == "venue_restart"
    new = again.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                   quantity="0.1", price="59000", newClientOrderId="resting-1")
    assert new["orderId"] > rest["orderId"]  # ids never repeat across the restart
    again.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.001")
    ids = [t["id"] for t in again.ok("GET", "/fapi/v1/userTrades", symbol=SYM)]
    assert len(ids) == len(set(ids)) == len(before["trades"]) + 1  # the new fill continues the trade ids
    assert ids[-1] > max(t["id"] for t in before["trades"])
    again.rest.venue.close()


def test_restart_when_last_line_torn_then_it_is_skipped_and_the_log_continues(tmp_path):
    log = tmp_path / "orders.jsonl"
    first = venue(log)
    first.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.002")
    first.rest.venue.close()
    with log.open("a") as f:
        f.write('{"event": "TRADE", "sym')  # SIGKILL mid-write
    again = venue(log)
    again.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.001")
    again.rest.venue.close()
    third = venue(log)  # every record the second run wrote is whole
    assert [p["positionAmt"] for p in third.ok("GET", "/fapi/v2/positionRisk", symbol=SYM)] == ["0.003"]
    third.rest.venue.close()


def test_config_when_restore_without_order_log_then_refused_naming_it():
    with pytest.raises(ConfigError, match="restore needs order_log"):
        convert({"restore": True}, TradingConfig, "b25.toml [sim_trading]")


def test_position_closed_when_account_asked_then_every_money_field_is_plain_decimal(tmp_path):
    """A flat position's entry price and zero balances print as "0.00000000", as the exchange
    does: str() of a Decimal zero with 8 places is "0E-8", which risk's reconcile refused."""
    api = venue(tmp_path / "orders.jsonl")
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.002")
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.002")
    rows = [p for p in api.ok("GET", "/fapi/v2/positionRisk") if p["symbol"] == SYM]
    assert rows and rows[0]["positionAmt"] == "0.000" and rows[0]["entryPrice"] == "0.00000000"
    texts = [v for p in api.ok("GET", "/fapi/v2/positionRisk") for v in p.values() if isinstance(v, str)]
    acct = api.ok("GET", "/fapi/v2/account")
    texts += [v for v in acct.values() if isinstance(v, str)]
    texts += [v for a in acct["assets"] for v in a.values() if isinstance(v, str)]
    assert not [t for t in texts if "E" in t and t[:1] in "-0123456789"], texts
    api.rest.venue.close()
