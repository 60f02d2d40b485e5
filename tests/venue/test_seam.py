"""The venue seam: no file outside ``procs/venue/binance/`` and ``procs/exchange_sim/`` names a
Binance wire word (the simulator speaks Binance; everything else speaks b25's words through
``procs.venue``). Comments and docstrings count: a word named there is a coupling someone will
follow. Each failure names file:line:word.

The words (``WIRE_WORDS``): REST and WebSocket API paths, the API key and usage headers, stream
and event names, JSON field names of market data, orders, accounts and exchangeInfo, order
status strings as sent, the time-in-force GTX, the WS API's order methods, the error codes the
engines once branched on, and the simulator's test account (one constant, in the adapter).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

SCANNED = ("procs", "shm", "tui", "strategies", "scripts")
EXCLUDED = ("procs/venue/binance/", "procs/exchange_sim/")

WIRE_WORDS: dict[str, str] = {
    # endpoints
    "/fapi/": r"/fapi/", "/dapi/": r"/dapi/", "/api/v3": r"/api/v3\b", "/ws-fapi": r"/ws-fapi",
    "ws-fapi": r"\bws-fapi\b",
    # headers
    "X-MBX-": r"(?i)\bx-mbx-",
    # streams and events
    "depthUpdate": r"depthUpdate", "ORDER_TRADE_UPDATE": r"\bORDER_TRADE_UPDATE\b",
    "ACCOUNT_UPDATE": r"\bACCOUNT_UPDATE\b", "listenKeyExpired": r"listenKeyExpired",
    "markPriceUpdate": r"markPriceUpdate", "bookTicker": r"bookTicker", "aggTrade": r"aggTrade",
    "@depth": r"@depth", "@trade": r"@trade\b", "@markPrice": r"@markPrice",
    # market-data, order, account and exchangeInfo fields
    "lastUpdateId": r"lastUpdateId", "listenKey": r"listenKey", "clientOrderId": r"(?<![a-z])clientOrderId",
    "origClientOrderId": r"origClientOrderId", "newClientOrderId": r"newClientOrderId",
    "newOrderRespType": r"newOrderRespType", "executedQty": r"executedQty", "origQty": r"origQty",
    "timeInForce": r"timeInForce", "reduceOnly": r"reduceOnly", "positionSide": r"positionSide",
    "positionAmt": r"positionAmt", "entryPrice": r"entryPrice", "updateTime": r"updateTime",
    "totalWalletBalance": r"totalWalletBalance", "totalUnrealizedProfit": r"totalUnrealizedProfit",
    "recvWindow": r"recvWindow", "rateLimits": r"rateLimits", "rateLimitType": r"rateLimitType",
    "intervalNum": r"intervalNum", "exchangeInfo": r"exchangeInfo", "userTrades": r"userTrades",
    "openOrders": r"openOrders", "positionRisk": r"positionRisk", "tickSize": r"tickSize",
    "stepSize": r"stepSize", "PRICE_FILTER": r"\bPRICE_FILTER\b", "LOT_SIZE": r"\bLOT_SIZE\b",
    "PERCENT_PRICE": r"\bPERCENT_PRICE\b", "MIN_NOTIONAL": r"\bMIN_NOTIONAL\b", '"pu"': r"""["']pu["']""",
    # order statuses as sent, and the post-only time in force
    '"NEW"': r"""["']NEW["']""", '"PARTIALLY_FILLED"': r"""["']PARTIALLY_FILLED["']""",
    '"FILLED"': r"""["']FILLED["']""", '"CANCELED"': r"""["']CANCELED["']""",
    '"EXPIRED"': r"""["']EXPIRED["']""", "EXPIRED_IN_MATCH": r"EXPIRED_IN_MATCH",
    '"REJECTED"': r"""["']REJECTED["']""", "GTX": r"\bGTX\b",
    # the WS API's order methods
    "order.place": r"\border\.place\b", "order.cancel": r"\border\.cancel\b", "order.status": r"\border\.status\b",
    # error codes
    "error code": r"(?<![\w.])-(?:1001|1003|1021|1022|2010|2011|2013|2014|2015|2019|2022|4116|4164|5021|5022)\b",
    # the simulator's test account: one constant, in the adapter
    "b25-test-": r"b25-test-(?:key|secret)",
}
_PATTERNS = [(word, re.compile(rx)) for word, rx in WIRE_WORDS.items()]


def scanned_files() -> list[Path]:
    out = []
    for top in SCANNED:
        for p in sorted((ROOT / top).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if not rel.startswith(EXCLUDED):
                out.append(p)
    return out


def wire_words(path: Path) -> list[str]:
    """``file:line:word`` for every wire word the file names."""
    hits = []
    rel = path.relative_to(ROOT).as_posix()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        for word, rx in _PATTERNS:
            if rx.search(line):
                hits.append(f"{rel}:{n}:{word}")
    return hits


def test_seam_when_scanned_then_no_wire_word_outside_the_adapter_and_the_simulator() -> None:
    files = scanned_files()
    assert len(files) > 100  # the scan sees the tree
    hits = [h for p in files for h in wire_words(p)]
    assert hits == [], "Binance wire words outside procs/venue/binance/ and procs/exchange_sim/:\n" + "\n".join(hits)


def test_seam_when_a_file_names_a_word_then_it_is_found(tmp_path: Path) -> None:
    # the scan itself: every listed word is caught in the shape it is written on the wire
    samples = {
        "/fapi/": "GET /fapi/v1/order", "/dapi/": "/dapi/v1/depth", "/api/v3": "/api/v3/depth", "/ws-fapi": "x/ws-fapi/v1",
        "ws-fapi": "ws-fapi", "X-MBX-": "x-mbx-used-weight-1m", "depthUpdate": '"e":"depthUpdate"',
        "ORDER_TRADE_UPDATE": "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE": "ACCOUNT_UPDATE",
        "listenKeyExpired": "listenKeyExpired", "markPriceUpdate": "markPriceUpdate", "bookTicker": "@bookTicker",
        "aggTrade": "aggTrade", "@depth": "btcusdt@depth@0ms", "@trade": "btcusdt@trade", "@markPrice": "x@markPrice@1s",
        "lastUpdateId": "lastUpdateId", "listenKey": "listenKey", "clientOrderId": '"clientOrderId"',
        "origClientOrderId": "origClientOrderId", "newClientOrderId": "newClientOrderId",
        "newOrderRespType": "newOrderRespType", "executedQty": "executedQty", "origQty": "origQty",
        "timeInForce": "timeInForce", "reduceOnly": "reduceOnly", "positionSide": "positionSide",
        "positionAmt": "positionAmt", "entryPrice": "entryPrice", "updateTime": "updateTime",
        "totalWalletBalance": "totalWalletBalance", "totalUnrealizedProfit": "totalUnrealizedProfit",
        "recvWindow": "recvWindow", "rateLimits": "rateLimits", "rateLimitType": "rateLimitType",
        "intervalNum": "intervalNum", "exchangeInfo": "exchangeInfo", "userTrades": "userTrades",
        "openOrders": "openOrders", "positionRisk": "positionRisk", "tickSize": "tickSize", "stepSize": "stepSize",
        "PRICE_FILTER": "PRICE_FILTER", "LOT_SIZE": "LOT_SIZE", "PERCENT_PRICE": "PERCENT_PRICE",
        "MIN_NOTIONAL": "MIN_NOTIONAL", '"pu"': "d['pu']", '"NEW"': 'status == "NEW"',
        '"PARTIALLY_FILLED"': '"PARTIALLY_FILLED"', '"FILLED"': "'FILLED'", '"CANCELED"': '"CANCELED"',
        '"EXPIRED"': '"EXPIRED"', "EXPIRED_IN_MATCH": "EXPIRED_IN_MATCH", '"REJECTED"': '"REJECTED"',
        "GTX": "tif = GTX", "order.place": '"order.place"', "order.cancel": "order.cancel",
        "order.status": "order.status", "error code": "if code == -2013:", "b25-test-": "b25-test-key",
    }
    assert set(samples) == set(WIRE_WORDS)
    for word, text in samples.items():
        assert any(rx.search(text) for w, rx in _PATTERNS if w == word), word
    # b25's own words are not wire words
    ok = ("M.ORDER_PARTIALLY_FILLED", "client_order_id", "open_orders", "POST_ONLY", "REJECT_UNKNOWN_ORDER",
          "x = -1", "OrderStatus.FILLED", "exchange_info", "last_update_id", "depth_stream")
    assert not [t for t in ok if any(rx.search(t) for _, rx in _PATTERNS)]
