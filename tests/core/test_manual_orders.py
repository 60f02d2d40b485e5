"""Manual orders: exact ticks/lots, every refusal naming its field, and writers that take turns on orders.manual."""

from __future__ import annotations

import pytest

from procs.core import messages as M
from procs.core.manual_orders import FieldError, ManualOrders, parse_order
from procs.core.registry import ORDERS_MANUAL, build_registry
from tests.support.tui_world import SYMBOLS, instruments

INS = instruments()


def test_parse_order_when_limit_valid_then_exact_ticks_and_lots():
    o = parse_order("btcusdt", "Buy", "LIMIT", "60000.50", "0.010", SYMBOLS, INS)
    assert (o.symbol, o.symbol_id, o.side, o.order_type) == ("BTCUSDT", 0, M.BUY, M.LIMIT)
    assert (o.price, o.qty) == (6_000_050, 10)
    assert o.describe() == "BUY 0.01 BTCUSDT @ 60000.5 LIMIT"


def test_parse_order_when_market_then_price_zero():
    o = parse_order("ETHUSDT", "s", "m", "", "1", SYMBOLS, INS)
    assert (o.side, o.order_type, o.price, o.qty, o.symbol_id) == (M.SELL, M.MARKET, 0, 1000, 1)


def test_parse_order_when_stop_then_price_field_is_its_trigger_and_it_only_reduces():
    o = parse_order("BTCUSDT", "sell", "stop", "59000.5", "0.002", SYMBOLS, INS)
    assert (o.side, o.order_type, o.price, o.trigger_price, o.qty, o.reduce_only) == (
        M.SELL, M.STOP_MARKET, 0, 5_900_050, 2, True)
    assert o.describe() == "SELL 0.002 BTCUSDT STOP_MARKET at 59000.5 (reduce-only)"
    tp = parse_order("BTCUSDT", "sell", "tp", "61000", "0.002", SYMBOLS, INS)
    assert (tp.order_type, tp.trigger_price) == (M.TAKE_PROFIT_MARKET, 6_100_000)


@pytest.mark.parametrize(("fields", "field", "words"), [
    (("DOGEUSDT", "buy", "limit", "1", "1"), "symbol", "unknown symbol"),
    (("BTCUSDT", "long", "limit", "1", "1"), "side", "buy or sell"),
    (("BTCUSDT", "buy", "iceberg", "1", "1"), "type", "limit, market, stop or take_profit"),
    (("BTCUSDT", "sell", "stop", "", "1"), "price", "required"),  # a stop's trigger
    (("BTCUSDT", "sell", "stop", "60000.001", "1"), "price", "tick size 0.01"),
    (("BTCUSDT", "buy", "limit", "", "1"), "price", "required"),
    (("BTCUSDT", "buy", "limit", "abc", "1"), "price", "not a number"),
    (("BTCUSDT", "buy", "limit", "-5", "1"), "price", "> 0"),
    (("BTCUSDT", "buy", "limit", "1e5", "1"), "price", "plain decimal"),
    (("BTCUSDT", "buy", "limit", "60000.001", "1"), "price", "tick size 0.01"),
    (("BTCUSDT", "buy", "limit", "100", "1"), "price", "below the minimum price"),
    (("BTCUSDT", "buy", "market", "60000", "1"), "price", "empty for a market order"),
    (("BTCUSDT", "buy", "limit", "60000", "0"), "qty", "> 0"),
    (("BTCUSDT", "buy", "limit", "60000", "0.0005"), "qty", "step size 0.001"),
    (("BTCUSDT", "buy", "limit", "60000", "5000"), "qty", "above the maximum quantity"),
])
def test_parse_order_when_a_field_is_bad_then_names_it(fields, field, words):
    with pytest.raises(FieldError) as exc:
        parse_order(*fields, SYMBOLS, INS)
    assert exc.value.field == field and words in exc.value.reason, str(exc.value)


def test_parse_order_when_tif_and_reduce_only_given_then_carried():
    o = parse_order("BTCUSDT", "buy", "limit", "60000", "0.01", SYMBOLS, INS, tif="POST_ONLY", reduce_only=True)
    assert (o.tif, o.reduce_only) == (M.POST_ONLY, True)
    assert o.describe() == "BUY 0.01 BTCUSDT @ 60000 LIMIT POST_ONLY reduce-only"
    with pytest.raises(FieldError) as exc:
        parse_order("BTCUSDT", "buy", "limit", "60000", "0.01", SYMBOLS, INS, tif="day")
    assert exc.value.field == "tif" and "gtc" in exc.value.reason


def test_manual_orders_when_two_writers_take_turns_then_no_record_is_overwritten(instance):
    tui, api = ManualOrders(instance), ManualOrders(instance)
    o = parse_order("BTCUSDT", "buy", "limit", "60000", "0.01", SYMBOLS, INS)
    execution = None
    try:
        ids = [api.cancel(7, 1000, 1)]  # the first write creates the ring
        execution = build_registry().consumer(instance, ORDERS_MANUAL, "execution")
        for i in range(1, 40):  # interleaved, and runs of the same writer
            writer = tui if (i // 3) % 2 else api
            ids.append(writer.submit(o) if i % 5 else writer.cancel(7, 1000 + i, 1))
        got = execution.poll()
        assert list(got["intent_id"]) == ids == list(range(1, 41))
        assert list(got["kind"]) == [M.CANCEL_ORDER if i % 5 == 0 else M.SUBMIT_ORDER for i in range(40)]
        cancels = got[got["kind"] == M.CANCEL_ORDER]
        assert list(cancels["client_tag"]) == [1000 + i for i in range(0, 40, 5)] and set(cancels["strategy_id"]) == {7}
        submits = got[got["kind"] == M.SUBMIT_ORDER]
        assert set(submits["strategy_id"]) == {M.STRATEGY_ID_MANUAL} and set(submits["source"]) == {M.SOURCE_MANUAL}
        assert list(submits["client_tag"]) == list(submits["intent_id"])
        with pytest.raises(ValueError, match="client tag"):
            api.cancel(7, 0, 1)
    finally:
        if execution is not None:
            execution.close()
        tui.close()
        api.close(unlink=True)
