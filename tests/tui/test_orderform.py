"""Manual order validation: exact ticks/lots, and every refusal names its field."""

from __future__ import annotations

import pytest

from procs.core import messages as M
from tests.support.tui_world import SYMBOLS, instruments
from tui.orderform import FieldError, parse_order

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
