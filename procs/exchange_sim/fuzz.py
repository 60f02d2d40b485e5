"""The simulator's REST surface under generated input (``b25 fuzz``: procs/tools/reliability/fuzz.py).

* ``sim_rest``: random signed and unsigned requests on every route (parameters in the query, the
  body or both, unknown names, values of every kind): each answer is a 2xx, or a 4xx with the
  exchange's ``code`` and ``msg``; never a 5xx or an exception.
* ``sim_signing``: a correctly signed request passes; one character of its signature or of its
  signed text changed, it is refused (-1022, or the error of the parameter it broke).

The simulator's trading side runs in this process on a hand-set market (``SimTarget``); the
requests are drawn from a ``Draw`` (procs/tools/reliability/draw.py).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from procs.venue.binance.exchange_info import instruments
from procs.venue.binance.signing import TEST_ACCOUNT

if TYPE_CHECKING:
    from procs.tools.reliability.draw import Draw

KEY, SECRET = TEST_ACCOUNT
PARAM_NAMES = ["symbol", "side", "type", "timeInForce", "quantity", "price", "newClientOrderId", "orderId",
               "origClientOrderId", "reduceOnly", "stopPrice", "positionSide", "closePosition", "recvWindow",
               "limit", "startTime", "endTime", "leverage", "marginType", "dualSidePosition", "countdownTime",
               "newOrderRespType", "workingType", "priceProtect", "activationPrice", "callbackRate",
               "orderIdList", "origClientOrderIdList", "batchOrders", "goodTillDate", "priceMatch",
               "selfTradePreventionMode", "algoType", "triggerPrice", "algoId", "clientAlgoId", "multiAssetsMargin",
               "fromId", "incomeType", "pair", "page"]
PARAM_TEXTS = ("BTCUSDT", "ETHUSDT", "btcusdt", "BUY", "SELL", "LIMIT", "MARKET", "STOP_MARKET",
                     "TAKE_PROFIT", "TRAILING_STOP_MARKET", "GTC", "IOC", "FOK", "GTX", "GTD", "true", "false",
                     "LONG", "SHORT", "BOTH", "ISOLATED", "CROSSED", "RESULT", "ACK", "0", "-1", "0.001", "1e3",
                     "60000", "59999.99", "60000.001", "NaN", "Infinity", "9" * 30, "", " ", "[]", "[1,2]",
                     '[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001","price":"60000",'
                     '"timeInForce":"GTC"}]', "%00", "\u00e9", "1" * 400)


def param_value(d: Draw) -> str:
    """A word the API knows, any text, any integer or a decimal with 8 places."""
    kind = d.choice(("word", "text", "integer", "decimal"))
    if kind == "word":
        return d.choice(PARAM_TEXTS)
    if kind == "text":
        return d.text(30)
    if kind == "integer":
        return str(d.integer(-(1 << 64), 1 << 64))
    return str(Decimal(d.integer(-(10 ** 20), 10 ** 20)).scaleb(-8))


@cache
def _routes() -> list[tuple[str, str]]:
    from procs.exchange_sim.trading.orderapi import ROUTES

    return sorted(ROUTES)


def sim_request(d: Draw) -> tuple[str, str, str, str, dict[str, str]]:
    """(method, path, query, body, headers): a known route or any path, with known and unknown
    parameters of any value, signed or not, in the query, the body or both."""
    if d.choice((True, True, False)):
        method, path = d.choice(_routes())
    else:
        method, path = d.choice(("GET", "POST", "PUT", "DELETE", "PATCH")), "/" + d.text(30)
    params = {(d.choice(PARAM_NAMES) if d.choice((True, False)) else d.text(10)): param_value(d)
              for _ in range(d.integer(0, 8))}
    signed = d.integer(0, 9) > 1  # mostly signed, so the parsing behind the signature runs
    if signed:
        params.setdefault("timestamp", "TIMESTAMP")
    text = urlencode(params)
    where = d.choice(("query", "body", "split"))
    if where == "split" and "&" in text:
        query, body = text.split("&", 1)
    elif where == "body":
        query, body = "", text
    else:
        query, body = text, ""
    headers = {"X-MBX-APIKEY": d.choice((KEY, KEY, KEY, "", "nobody"))}
    return method, path, query, body, {"signed": str(signed), **headers}


class SimTarget:
    """The simulator's trading REST handler in this process, on a fixed hand-set market."""

    def __init__(self) -> None:
        from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO
        from procs.exchange_sim.trading.config import TradingConfig
        from procs.exchange_sim.trading.orderapi import build_trading
        from procs.exchange_sim.trading.settable_market import SettableMarket

        info = json.loads(Path(DEFAULT_EXCHANGE_INFO).read_text())
        self.market = SettableMarket(instruments(info))
        for sym, mid in (("BTCUSDT", 6000000), ("ETHUSDT", 300000)):
            for i in range(5):
                self.market.set_level(sym, True, mid - 100 - i * 100, 1000)
                self.market.set_level(sym, False, mid + 100 + i * 100, 1000)
        cfg = TradingConfig(timestamp_clock="market", listen_key_clock="market", countdown_clock="market",
                            weight_limit_1m=1 << 60, order_limit_10s=1 << 60, order_limit_1m=1 << 60)
        self.rest, self.ws = build_trading(self.market, cfg, info)
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def request(self, method: str, path: str, query: str, body: str, headers: dict[str, str]
                ) -> tuple[int, Any]:
        from procs.exchange_sim.trading.signing import sign

        ts = str(self.market.now_ms())
        query, body = query.replace("TIMESTAMP", ts), body.replace("TIMESTAMP", ts)
        if headers.get("signed") == "True":
            signed = query + body
            tail = "&signature=" + sign(SECRET, signed)
            if body:
                body += tail
            else:
                query += tail
        status, data, _ = self.loop.run_until_complete(self.rest.handle_rest(
            method, path, query, body, {"X-MBX-APIKEY": headers.get("X-MBX-APIKEY", "")}))
        return status, json.loads(data)

    def check(self, req: tuple[str, str, str, str, dict[str, str]]) -> None:
        status, body = self.request(*req)
        assert status < 500, f"HTTP {status}: {body}"
        if status >= 400:
            assert isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] < 0 \
                and isinstance(body.get("msg"), str) and body["msg"], f"an error without code and msg: {body}"

    def check_signing(self, case: tuple[dict[str, str], int, int]) -> None:
        """A correctly signed request passes the signature check; changing one character of the
        signature, or of a parameter after signing, makes it -1022 (or -1102 when it broke a
        mandatory parameter)."""
        from procs.exchange_sim.trading.signing import sign

        params, where, change = case
        params = {**params, "timestamp": str(self.market.now_ms())}
        text = urlencode(params)
        sig = sign(SECRET, text)
        status, body = self.loop.run_until_complete(self.rest.handle_rest(
            "GET", "/fapi/v2/account", f"{text}&signature={sig}", "", {"X-MBX-APIKEY": KEY}))[:2]
        assert status == 200, json.loads(body)
        if where == 0:  # the signature changed
            i = change % len(sig)
            bad = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1:]
            query = f"{text}&signature={bad}"
        else:  # one character of the signed text changed
            i = change % len(text)
            query = text[:i] + ("x" if text[i] != "x" else "y") + text[i + 1:] + f"&signature={sig}"
        status, body = self.loop.run_until_complete(self.rest.handle_rest(
            "GET", "/fapi/v2/account", query, "", {"X-MBX-APIKEY": KEY}))[:2]
        code = json.loads(body).get("code") if status != 200 else 0
        assert status != 200 and code in (-1022, -1102, -1021, -1131, -1101), (status, body, query)


def signing_case(d: Draw) -> tuple[dict[str, str], int, int]:
    """(parameters, 0 to change the signature or 1 the signed text, where)."""
    params = {d.choice(("symbol", "limit", "a", "b")): d.text(8, alphabet="abcXYZ019._-", min_size=1)
              for _ in range(d.integer(0, 3))}
    return params, d.integer(0, 1), d.integer(0, 1 << 16)


TARGETS = (("sim_rest", sim_request, SimTarget, SimTarget.check),
           ("sim_signing", signing_case, SimTarget, SimTarget.check_signing))
