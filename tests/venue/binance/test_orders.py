"""Binance order words in b25's: order objects, user trades, ORDER_TRADE_UPDATE events, error
codes, answers (outcome, reason, usage) — parsed without a process."""

from __future__ import annotations

from procs.core import messages as M
from procs.venue import messages as V
from procs.venue.binance.gateway import normalise
from procs.venue.binance.orders import fill, order_report, reject_reason, stream_report
from procs.venue.binance.rest import WireReply
from procs.venue.binance.usage import from_headers, from_rate_limits


def test_order_report_when_open_orders_entry_then_b25_words() -> None:
    rep = order_report({"orderId": 42, "symbol": "BTCUSDT", "status": "PARTIALLY_FILLED", "clientOrderId": "b25-1-2",
                        "price": "63943.9", "origQty": "0.013", "executedQty": "0.001", "timeInForce": "GTX",
                        "type": "LIMIT", "side": "SELL", "reduceOnly": True, "updateTime": 1700000000123})
    assert rep == V.OrderReport(client_order_id="b25-1-2", order_id=42, symbol="BTCUSDT", status=V.PARTIALLY_FILLED,
                                side=M.SELL, order_type=M.LIMIT, tif=M.POST_ONLY, price="63943.9", qty="0.013",
                                cum_qty="0.001", reduce_only=True, ts_event_ms=1700000000123)
    assert order_report({"clientOrderId": "x", "status": "EXPIRED_IN_MATCH"}).status == V.EXPIRED
    assert order_report({"clientOrderId": "x", "status": "NEW_INSURANCE"}).status is None


def test_stream_report_when_trade_then_fill_and_when_other_event_then_none() -> None:
    ev = {"e": "ORDER_TRADE_UPDATE", "E": 7, "o": {"c": "b25-1-1", "x": "TRADE", "X": "FILLED", "i": 9, "t": 5,
                                                  "l": "0.001", "L": "50000", "z": "0.002", "n": "0.01", "m": True,
                                                  "s": "BTCUSDT", "S": "BUY", "o": "LIMIT", "f": "GTC"}}
    rep = stream_report(ev)
    assert rep is not None and rep.client_order_id == "b25-1-1" and rep.status == V.FILLED and rep.cum_qty == "0.002"
    assert rep.fill == V.Fill(trade_id=5, order_id=9, qty="0.001", price="50000", fee="0.01", maker=True, ts_event_ms=7)
    assert stream_report({**ev, "o": {**ev["o"], "x": "CANCELED", "X": "CANCELED"}}).fill is None  # type: ignore[union-attr]
    assert stream_report({"e": "ACCOUNT_UPDATE", "E": 1, "a": {}}) is None


def test_fill_when_user_trade_then_fill() -> None:
    f = fill({"id": 9, "orderId": 7, "qty": "0.001", "price": "50000", "commission": "-0.01", "maker": True, "time": 3})
    assert f == V.Fill(trade_id=9, order_id=7, qty="0.001", price="50000", fee="-0.01", maker=True, ts_event_ms=3)


def test_reject_reason_when_codes_then_b25_names() -> None:
    assert reject_reason(-2013) == reject_reason(-2011) == M.REJECT_UNKNOWN_ORDER
    assert reject_reason(-4116) == M.REJECT_DUPLICATE_ID and reject_reason(-5022) == M.REJECT_POST_ONLY
    assert reject_reason(-4164) == M.REJECT_FILTER and reject_reason(-9999) == M.REJECT_OTHER


def test_normalise_when_answers_then_outcome_reason_report_and_usage() -> None:
    ok = normalise(WireReply(V.REPLY_OK, 200, {"orderId": 7, "status": "NEW", "clientOrderId": "c"},
                             headers={"x-mbx-order-count-10s": "3", "Content-Type": "application/json"}))
    assert ok.report is not None and ok.report.status == V.NEW and ok.usage == [V.RateUsage("orders", 10_000, 3)]
    gone = normalise(WireReply(V.REPLY_REJECTED, 400, {"code": -2013}, -2013, "Order does not exist."))
    assert (gone.reason, gone.venue_code, gone.report) == (M.REJECT_UNKNOWN_ORDER, -2013, None)
    failed = normalise(WireReply(V.REPLY_FAILED, 503, None, 0, "Service Unavailable."))
    assert failed.reason == M.REJECT_UNAVAILABLE
    ws = normalise(WireReply(V.REPLY_OK, 200, {}, rate_limits=[
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400, "count": 12}]))
    assert ws.usage == [V.RateUsage("weight", 60_000, 12)]


def test_usage_when_headers_and_arrays_then_parsed_and_junk_skipped() -> None:
    assert from_headers({"X-MBX-USED-WEIGHT-1M": "5", "X-MBX-ORDER-COUNT-1M": "x", "X-MBX-USED-WEIGHT-": "1"}) == \
        [V.RateUsage("weight", 60_000, 5)]
    assert from_rate_limits([{"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "count": 2},
                             {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "count": 1}]) == \
        [V.RateUsage("orders", 86_400_000, 2)]
