"""The simulator's REST surface under generated input (``b25 fuzz``: procs/tools/reliability/fuzz.py).

* ``sim_rest``: random signed and unsigned requests on every route (parameters in the query, the
  body or both, unknown names, values of every kind): each answer is a 2xx, or a 4xx with the
  exchange's ``code`` and ``msg``; never a 5xx or an exception.
* ``sim_signing``: a correctly signed request passes; one character of its signature or of its
  signed text changed, it is refused (-1022, or the error of the parameter it broke).

The simulator's trading side runs in this process on a hand-set market (``SimTarget``); hypothesis
(a dev extra) draws the requests.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from procs.venue.binance.exchange_info import instruments
from procs.venue.binance.signing import TEST_ACCOUNT

KEY, SECRET = TEST_ACCOUNT
PARAM_NAMES = ["symbol", "side", "type", "timeInForce", "quantity", "price", "newClientOrderId", "orderId",
               "origClientOrderId", "reduceOnly", "stopPrice", "positionSide", "closePosition", "recvWindow",
               "limit", "startTime", "endTime", "leverage", "marginType", "dualSidePosition", "countdownTime",
               "newOrderRespType", "workingType", "priceProtect", "activationPrice", "callbackRate",
               "orderIdList", "origClientOrderIdList", "batchOrders", "goodTillDate", "priceMatch",
               "selfTradePreventionMode", "algoType", "triggerPrice", "algoId", "clientAlgoId", "multiAssetsMargin",
               "fromId", "incomeType", "pair", "page"]
PARAM_VALUES = st.one_of(
    st.sampled_from(["BTCUSDT", "ETHUSDT", "btcusdt", "BUY", "SELL", "LIMIT", "MARKET", "STOP_MARKET",
                     "TAKE_PROFIT", "TRAILING_STOP_MARKET", "GTC", "IOC", "FOK", "GTX", "GTD", "true", "false",
                     "LONG", "SHORT", "BOTH", "ISOLATED", "CROSSED", "RESULT", "ACK", "0", "-1", "0.001", "1e3",
                     "60000", "59999.99", "60000.001", "NaN", "Infinity", "9" * 30, "", " ", "[]", "[1,2]",
                     '[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001","price":"60000",'
                     '"timeInForce":"GTC"}]', "%00", "\u00e9", "1" * 400]),
    st.text(max_size=30), st.integers(-(1 << 64), 1 << 64).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=8).map(str))


@st.composite
def sim_requests(draw: st.DrawFn) -> tuple[str, str, str, str, dict[str, str]]:
    from procs.exchange_sim.trading.orderapi import ROUTES

    method, path = draw(st.sampled_from(sorted(ROUTES)) | st.tuples(
        st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), st.text(max_size=30).map(lambda t: "/" + t)))
    params = draw(st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=10), PARAM_VALUES, max_size=8))
    signed = draw(st.integers(0, 9)) > 1  # mostly signed, so the parsing behind the signature runs
    if signed:
        params.setdefault("timestamp", "TIMESTAMP")
    text = urlencode(params)
    where = draw(st.sampled_from(["query", "body", "split"]))
    if where == "split" and "&" in text:
        query, body = text.split("&", 1)
    elif where == "body":
        query, body = "", text
    else:
        query, body = text, ""
    headers = {"X-MBX-APIKEY": draw(st.sampled_from([KEY, KEY, KEY, "", "nobody"]))}
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


SIGNING_CASES = st.tuples(st.dictionaries(st.sampled_from(["symbol", "limit", "a", "b"]),
                                          st.text(alphabet="abcXYZ019._-", min_size=1, max_size=8), max_size=3),
                          st.integers(0, 1), st.integers(0, 1 << 16))


TARGETS = (("sim_rest", sim_requests, SimTarget, SimTarget.check),
           ("sim_signing", lambda: SIGNING_CASES, SimTarget, SimTarget.check_signing))
