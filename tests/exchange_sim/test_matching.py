"""Matching engine and venue rules against a hand-driven market book (``SettableMarket``)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from procs.exchange_sim.trading.config import AccountConfig, TradingConfig
from procs.exchange_sim.trading.matching import CANCELED, EXPIRED, FILLED, NEW, PARTIALLY_FILLED, SimOrder
from procs.exchange_sim.trading.settable_market import SettableMarket
from procs.exchange_sim.trading.signing import ApiError
from procs.exchange_sim.trading.venue import Venue
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from procs.venue.binance.signing import TEST_ACCOUNT

SYM = "BTCUSDT"
INFO = "procs/exchange_sim/exchange_info_default.json"


def px(text: str) -> int:
    return int(Decimal(text) * 100)


def lots(text: str) -> int:
    return int(Decimal(text) * 1000)


class Rig:
    """A market with a 5-level book around 60000, a venue on it and the events it emitted."""

    def __init__(self, **cfg: Any) -> None:
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        self.market = SettableMarket(load_exchange_info(root / INFO))
        for i in range(5):
            self.market.set_level(SYM, True, px("59999") - i * 100, lots("1"))
            self.market.set_level(SYM, False, px("60001") + i * 100, lots("1"))
        accounts = [AccountConfig(name="a", api_key="ka", api_secret="sa"),
                    AccountConfig(name="b", api_key="kb", api_secret="sb")]
        self.cfg = TradingConfig(accounts=accounts, **cfg)
        self.events: list[tuple[str, dict]] = []
        self.venue = Venue(self.market, self.cfg, lambda acct, ev: self.events.append((acct, ev)))
        self.market.add_listener(self.venue)

    def place(self, acct: str = "ka", **params: str):
        p = {"symbol": SYM, **params}
        order, _ack = self.venue.place(self.venue.accounts[acct], p)
        return order

    def limit(self, side: str, price: str, qty: str, tif: str = "GTC", acct: str = "ka", **kw: str):
        return self.place(acct, side=side, type="LIMIT", timeInForce=tif, price=price, quantity=qty, **kw)

    def otu(self, acct: str = "a") -> list[tuple[str, str]]:
        return [(e["o"]["x"], e["o"]["X"]) for a, e in self.events if a == acct and e["e"] == "ORDER_TRADE_UPDATE"]

    def wallet(self, key: str = "ka") -> Decimal:
        return self.venue.accounts[key].wallet["USDT"]

    def pos(self, key: str = "ka") -> int:
        return self.venue.accounts[key].amount(SYM)


def test_limit_when_not_crossing_then_rests_behind_displayed_queue() -> None:
    r = Rig()
    o = r.limit("BUY", "59999", "0.5")
    assert o.status == NEW and o.filled_lots == 0
    assert o.queue_ahead == lots("1")
    assert r.otu() == [("NEW", "NEW")]
    assert r.venue.open_orders(r.venue.accounts["ka"]) == [o]


def test_limit_when_crossing_then_walks_levels_and_rests_remainder() -> None:
    r = Rig()
    o = r.limit("BUY", "60002", "1.5")  # takes 1.0 @ 60001 and 0.5 @ 60002
    assert o.status == PARTIALLY_FILLED or o.status == FILLED
    assert o.filled_lots == lots("1.5") and o.status == FILLED
    assert o.cum_quote == px("60001") * lots("1") + px("60002") * lots("0.5")
    r2 = Rig()
    o2 = r2.limit("BUY", "60001", "1.5")  # only 1.0 available at or below 60001
    assert o2.status == PARTIALLY_FILLED and o2.filled_lots == lots("1")
    assert o2 in r2.venue.open_orders(r2.venue.accounts["ka"])
    assert r2.otu() == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED")]


def test_ioc_when_partially_fillable_then_remainder_expires_with_reason_2() -> None:
    r = Rig()
    o = r.limit("BUY", "60001", "1.5", tif="IOC")
    assert o.status == EXPIRED and o.filled_lots == lots("1") and o.expire_reason == 2
    assert r.otu() == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("EXPIRED", "EXPIRED")]
    assert not r.venue.open_orders(r.venue.accounts["ka"])


def test_fok_when_not_fully_fillable_then_rejected_5021_and_nothing_recorded() -> None:
    r = Rig()
    with pytest.raises(ApiError) as ei:
        r.limit("BUY", "60001", "1.5", tif="FOK")
    assert ei.value.code == -5021
    assert r.events == [] and r.venue.order_log == []


def test_fok_when_fillable_then_filled() -> None:
    r = Rig()
    o = r.limit("BUY", "60003", "2.5", tif="FOK")
    assert o.status == FILLED and o.filled_lots == lots("2.5")


def test_gtx_when_crossing_then_rejected_5022() -> None:
    r = Rig()
    with pytest.raises(ApiError) as ei:
        r.limit("BUY", "60001", "0.1", tif="GTX")
    assert ei.value.code == -5022
    o = r.limit("BUY", "60000.99", "0.1", tif="GTX")
    assert o.status == NEW


def _walked(eng: Any, order: SimOrder, need: int) -> int:
    """Lots ``fillable`` counts, as the walk over every crossing price (best first) counts them."""
    total = 0
    for p, displayed in eng._opposite_prices(order, None if order.type == "MARKET" else order.price_ticks):
        total += eng._avail(not order.is_buy, p, displayed)
        total += sum(o.remaining for o in eng.book[not order.is_buy].get(p, ()) if o.account != order.account)
        if total >= need:
            break
    return total


def test_fillable_when_best_level_covers_need_or_not_then_the_count_of_the_walk_over_every_price() -> None:
    """``fillable`` counts the market's best level alone when it covers the need and no resting
    order is better: the same figure as the walk, whatever the need, the side, an order of
    another account at or inside the best, or lots already taken from a level."""
    r = Rig()
    eng = r.venue.engine(SYM)

    def order(side: str, price: str | None) -> SimOrder:
        return SimOrder(account="a", symbol=SYM, order_id=0, client_order_id="x", is_buy=side == "BUY",
                        type="MARKET" if price is None else "LIMIT", tif="GTX", price_ticks=0 if price is None else px(price),
                        qty_lots=lots("10"), reduce_only=False, time_ms=0)

    def check(counted: list[int]) -> None:
        for side, price in (("BUY", "60001"), ("BUY", "60003"), ("BUY", "60000"), ("SELL", "59999"),
                            ("SELL", "59997"), ("BUY", None), ("SELL", None)):
            for need in (1, lots("0.5"), lots("1"), lots("1.3"), lots("2.5"), lots("10")):
                o = order(side, price)
                counted.append(eng.fillable(o, need))
                assert counted[-1] == _walked(eng, o, need), (side, price, need)

    counted: list[int] = []
    check(counted)
    r.limit("SELL", "60001", "0.3", acct="kb")  # another account's order at the best ask
    r.limit("BUY", "60001", "0.4", tif="IOC", acct="kb")  # lots taken from the best ask
    check(counted)
    r.limit("SELL", "60000.5", "0.2", acct="kb")  # inside the spread: better than the market's best
    r.limit("BUY", "59999.5", "0.2", acct="kb")
    check(counted)
    assert 0 in counted and len(set(counted)) > 5, counted  # the cases differ: the check compared something


def test_market_when_book_thin_then_fills_all_levels_and_expires_rest_reason_9() -> None:
    r = Rig()
    o = r.place(side="SELL", type="MARKET", quantity="6")
    assert o.filled_lots == lots("5") and o.status == EXPIRED and o.expire_reason == 9
    assert r.pos() == -lots("5")


def test_market_when_price_sent_then_1106() -> None:
    r = Rig()
    with pytest.raises(ApiError) as ei:
        r.place(side="BUY", type="MARKET", quantity="1", price="60000")
    assert ei.value.code == -1106


def test_queue_when_trades_at_price_then_queue_ahead_consumed_before_fill() -> None:
    r = Rig()
    o = r.limit("BUY", "59999", "0.5")
    r.market.trade(SYM, px("59999"), lots("0.6"), True)
    assert o.filled_lots == 0 and o.queue_ahead == lots("0.4")
    r.market.set_level(SYM, True, px("59999"), lots("0.4"))
    r.market.trade(SYM, px("59999"), lots("0.5"), True)
    assert o.filled_lots == lots("0.1") and o.queue_ahead == 0
    r.market.trade(SYM, px("59999"), lots("1"), True)
    assert o.status == FILLED
    fills = [e["o"] for a, e in r.events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"]
    assert all(f["m"] for f in fills)


def test_queue_when_buyer_aggressor_trades_at_bid_price_then_buy_not_filled() -> None:
    r = Rig()
    o = r.limit("BUY", "59999", "0.5")
    r.market.trade(SYM, px("59999"), lots("5"), False)  # a buyer lifting; our bid is not hit
    assert o.filled_lots == 0


def test_conservative_queue_when_level_shrinks_then_queue_ahead_capped_by_level() -> None:
    r = Rig()
    o = r.limit("BUY", "59999", "0.5")
    r.market.set_level(SYM, True, px("59999"), lots("3"))  # others join behind us
    assert o.queue_ahead == lots("1")
    r.market.set_level(SYM, True, px("59999"), lots("2"))  # a cancel behind us
    assert o.queue_ahead == lots("1")
    r.market.set_level(SYM, True, px("59999"), lots("0.3"))
    assert o.queue_ahead == lots("0.3")


def test_prorata_queue_when_level_shrinks_by_cancel_then_share_ahead_removed() -> None:
    r = Rig(queue_model="prorata")
    o = r.limit("BUY", "59999", "0.5")
    r.market.set_level(SYM, True, px("59999"), lots("0.5"))  # 0.5 cancelled; all of it was ahead
    assert o.queue_ahead == lots("0.5")
    r2 = Rig(queue_model="prorata")
    o2 = r2.limit("BUY", "59999", "0.5")
    r2.market.set_level(SYM, True, px("59999"), lots("2"))
    r2.market.set_level(SYM, True, px("59999"), lots("1"))  # 1 of 2 cancelled: half of ours ahead
    assert o2.queue_ahead == lots("0.5")


def test_prorata_queue_when_trade_then_level_shrink_not_counted_twice() -> None:
    r = Rig(queue_model="prorata")
    o = r.limit("BUY", "59999", "0.5")
    r.market.set_level(SYM, True, px("59999"), lots("2"))
    r.market.trade(SYM, px("59999"), lots("0.4"), True)
    assert o.queue_ahead == lots("0.6")
    r.market.set_level(SYM, True, px("59999"), lots("1.6"))  # the trade's own decrease
    assert o.queue_ahead == lots("0.6")


def test_trade_through_when_market_trades_below_buy_then_fills_up_to_trade_qty() -> None:
    r = Rig()
    o = r.limit("BUY", "59999.50", "1")
    assert o.queue_ahead == 0
    r.market.trade(SYM, px("59999"), lots("0.3"), True)
    assert o.filled_lots == lots("0.3")
    assert o.cum_quote == px("59999.50") * lots("0.3")  # at our price, as maker


def test_price_time_priority_among_resting_orders() -> None:
    r = Rig()
    first = r.limit("BUY", "59999.50", "0.2", acct="ka")
    second = r.limit("BUY", "59999.50", "0.2", acct="kb")
    better = r.limit("BUY", "59999.60", "0.1", acct="kb")
    r.market.trade(SYM, px("59999"), lots("0.25"), True)
    assert better.filled_lots == lots("0.1")
    assert first.filled_lots == lots("0.15") and second.filled_lots == 0


def test_crossing_level_when_ask_appears_at_buy_price_then_fills_once() -> None:
    r = Rig()
    o = r.limit("BUY", "60000.50", "2")
    r.market.set_level(SYM, False, px("60000.50"), lots("0.7"))
    assert o.filled_lots == lots("0.7")
    r.market.set_level(SYM, False, px("60000.50"), lots("0.9"))  # grows by 0.2: only that is new
    assert o.filled_lots == lots("0.9")


def test_market_impact_when_taken_then_hidden_until_market_removes_it() -> None:
    r = Rig()
    r.place(side="BUY", type="MARKET", quantity="0.6")
    o = r.limit("BUY", "60001", "1", tif="IOC")
    assert o.filled_lots == lots("0.4")
    r.market.set_level(SYM, False, px("60001"), lots("0.5"))  # market removes 0.5 of our 1.0 consumed
    o2 = r.limit("BUY", "60001", "1", tif="IOC")
    assert o2.filled_lots == 0
    r.market.set_level(SYM, False, px("60001"), lots("0.8"))
    o3 = r.limit("BUY", "60001", "1", tif="IOC")
    assert o3.filled_lots == lots("0.3")


def test_no_market_impact_when_disabled_then_same_liquidity_taken_again() -> None:
    r = Rig(market_impact=False)
    a = r.limit("BUY", "60001", "1", tif="IOC")
    b = r.limit("BUY", "60001", "1", tif="IOC")
    assert a.filled_lots == b.filled_lots == lots("1")


def test_sim_orders_of_two_accounts_match_with_maker_and_taker_fees() -> None:
    r = Rig()
    maker = r.limit("BUY", "60000", "0.5", acct="ka")
    taker = r.limit("SELL", "60000", "0.5", tif="IOC", acct="kb")
    # The market's bid at 59999 is worse than 60000, so the sim buy is the best bid.
    assert maker.status == FILLED and taker.status == FILLED
    notional = Decimal("60000") * Decimal("0.5")
    assert r.wallet("ka") == Decimal("100000") - notional * Decimal("0.0002")
    assert r.wallet("kb") == Decimal("100000") - notional * Decimal("0.0005")
    assert r.pos("ka") == lots("0.5") and r.pos("kb") == -lots("0.5")


def test_same_account_orders_never_match_each_other() -> None:
    r = Rig()
    buy = r.limit("BUY", "60000", "0.5")
    sell = r.limit("SELL", "60000", "0.5")
    assert buy.filled_lots == 0 and sell.filled_lots == 0


def test_realized_pnl_and_fees_when_round_trip() -> None:
    r = Rig(maker_fee_bps="0", taker_fee_bps="0")
    r.limit("BUY", "60001", "1", tif="IOC")
    r.market.set_level(SYM, True, px("60010"), lots("1"))
    r.limit("SELL", "60010", "1", tif="IOC")
    assert r.pos() == 0
    assert r.wallet() == Decimal("100000") + Decimal("9")
    acct_updates = [e for a, e in r.events if e["e"] == "ACCOUNT_UPDATE"]
    assert acct_updates[-1]["a"]["P"][0]["pa"] == "0.000"
    assert acct_updates[-1]["a"]["m"] == "ORDER"


def test_reduce_only_when_no_position_then_2022() -> None:
    r = Rig()
    with pytest.raises(ApiError) as ei:
        r.limit("SELL", "60000", "0.1", reduceOnly="true")
    assert ei.value.code == -2022


def test_reduce_only_when_larger_than_position_then_capped_and_rest_expired() -> None:
    r = Rig()
    r.limit("BUY", "60001", "0.3", tif="IOC")
    assert r.pos() == lots("0.3")
    o = r.place(side="SELL", type="MARKET", quantity="1", reduceOnly="true")
    assert o.filled_lots == lots("0.3") and r.pos() == 0 and o.status == EXPIRED


def test_resting_reduce_only_when_position_closed_then_expired_reason_4() -> None:
    r = Rig()
    r.limit("BUY", "60001", "0.3", tif="IOC")
    ro = r.limit("SELL", "60100", "0.3", reduceOnly="true")
    r.place(side="SELL", type="MARKET", quantity="0.3")
    assert r.pos() == 0
    assert ro.status == EXPIRED and ro.expire_reason == 4


def test_margin_when_order_exceeds_available_then_2019() -> None:
    r = Rig()
    r.venue.accounts["ka"].wallet["USDT"] = Decimal("100")
    with pytest.raises(ApiError) as ei:
        r.limit("BUY", "59000", "0.1")  # 5900 notional / 20 = 295 > 100
    assert ei.value.code == -2019
    ok = r.limit("BUY", "59000", "0.03")  # 88.5 margin
    assert ok.status == NEW


def test_cancel_then_canceled_event_and_unknown_second_time() -> None:
    r = Rig()
    o = r.limit("BUY", "59000", "0.1", newClientOrderId="abc")
    acct = r.venue.accounts["ka"]
    r.venue.cancel(acct, {"symbol": SYM, "origClientOrderId": "abc"})
    assert o.status == CANCELED and r.otu()[-1] == ("CANCELED", "CANCELED")
    with pytest.raises(ApiError) as ei:
        r.venue.cancel(acct, {"symbol": SYM, "orderId": str(o.order_id)})
    assert ei.value.code == -2011


def test_filters_reject_with_binance_codes() -> None:
    r = Rig()
    cases = [
        ({"price": "60000.001", "quantity": "0.1"}, -1111),
        ({"price": "60000", "quantity": "0.0001"}, -1111),
        ({"price": "60000", "quantity": "0"}, -4003),
        ({"price": "60000", "quantity": "2000"}, -4005),
        ({"price": "500", "quantity": "0.1"}, -4013),
        ({"price": "2000000", "quantity": "0.1"}, -4002),
        ({"price": "70000", "quantity": "0.1"}, -4016),
        ({"price": "60000", "quantity": "0.00005"}, -1111),
        ({"price": "100", "quantity": "0.001"}, -4013),
        ({"price": "1000", "quantity": "0.001"}, -4164),
    ]
    for extra, code in cases:
        with pytest.raises(ApiError) as ei:
            r.place(side="BUY", type="LIMIT", timeInForce="GTC", **extra)
        assert ei.value.code == code, (extra, ei.value.code, ei.value.msg)
    with pytest.raises(ApiError) as ei:
        r.place(side="SELL", type="LIMIT", timeInForce="GTC", price="50000", quantity="0.1")
    assert ei.value.code == -4024
    for bad, code in (({"side": "UP"}, -1117), ({"type": "STOP_MARKET"}, -1106), ({"type": "WEIRD"}, -1116),
                      ({"timeInForce": "XXX"}, -1115), ({"symbol": "NOPE"}, -1121),
                      ({"newClientOrderId": "has space"}, -4015)):
        p = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "59000", "quantity": "0.1", **bad}
        with pytest.raises(ApiError) as ei:
            r.place(**p)
        assert ei.value.code == code, bad
    live = Rig(conditional_on_order_endpoint=False)  # the exchange since 2025-12-09
    with pytest.raises(ApiError) as ei:
        live.place(side="SELL", type="STOP_MARKET", stopPrice="59000", quantity="0.1")
    assert ei.value.code == -4120


def test_duplicate_client_order_id_among_open_orders_then_4116_and_reuse_after_close() -> None:
    r = Rig()
    o = r.limit("BUY", "59000", "0.1", newClientOrderId="dup-1")
    with pytest.raises(ApiError) as ei:
        r.limit("BUY", "59000", "0.1", newClientOrderId="dup-1")
    assert ei.value.code == -4116
    r.venue.cancel(r.venue.accounts["ka"], {"symbol": SYM, "orderId": str(o.order_id)})
    again = r.limit("BUY", "59000", "0.1", newClientOrderId="dup-1")
    assert again.order_id == o.order_id + 1


def test_max_num_orders_then_2025() -> None:
    r = Rig()
    for _ in range(200):
        r.limit("BUY", "59000", "0.001")
    with pytest.raises(ApiError) as ei:
        r.limit("BUY", "59000", "0.001")
    assert ei.value.code == -2025


def test_order_log_records_new_trade_and_cancel_in_order() -> None:
    r = Rig()
    o = r.limit("BUY", "60001", "1.5")
    r.venue.cancel(r.venue.accounts["ka"], {"symbol": SYM, "orderId": str(o.order_id)})
    assert [e["event"] for e in r.venue.order_log] == ["NEW", "TRADE", "CANCELED"]
    assert r.venue.order_log[1]["lastQty"] == "1" and r.venue.order_log[1]["maker"] is False


def _run_generated(seed: int, steps: int) -> tuple[list[dict], Venue]:
    """Resting orders near the touch of the market side's seeded generator, for ``steps`` events."""
    from pathlib import Path

    from procs.exchange_sim.config import GeneratorConfig
    from procs.exchange_sim.market.generator import Generator
    from procs.exchange_sim.market.true_book import Market

    root = Path(__file__).resolve().parents[2]
    clock = [1_700_000_000_000]
    market = Market(load_exchange_info(root / INFO), clock_ms=lambda: clock[0])
    gen = Generator(market, GeneratorConfig(seed=seed), [SYM])
    gen.seed_books()
    venue = Venue(market, TradingConfig(), lambda acct, ev: None)
    market.add_listener(venue)
    acct = venue.accounts[TEST_ACCOUNT[0]]
    for i in range(steps):
        if i % 200 == 0:
            bb, ba = market.best_bid(SYM), market.best_ask(SYM)
            assert bb and ba
            for k in range(3):
                for side, p in (("BUY", bb[0] - k), ("SELL", ba[0] + k)):
                    try:
                        venue.place(acct, {"symbol": SYM, "side": side, "type": "LIMIT", "timeInForce": "GTX",
                                           "price": market.instruments[SYM].ticks_to_price(p), "quantity": "0.01"})
                    except ApiError as e:
                        assert e.code in (-5022, -2025), e.msg
        gen.step()
        clock[0] += 5
    return venue.order_log, venue


def test_generated_market_when_same_seed_then_same_orders_and_fills() -> None:
    log1, venue = _run_generated(7, 3000)
    log2, _ = _run_generated(7, 3000)
    assert log1 == log2
    trades = [r for r in log1 if r["event"] == "TRADE"]
    assert len(trades) > 20 and all(r["maker"] for r in trades)
    # Every order filled at most its quantity, and the position is the sum of the signed fills.
    for o in venue.orders.values():
        assert 0 <= o.filled_lots <= o.qty_lots
    net = sum((1 if r["side"] == "BUY" else -1) * lots(r["lastQty"]) for r in trades)
    assert venue.accounts[TEST_ACCOUNT[0]].amount(SYM) == net


def test_coarse_tick_and_step_then_4014_4023_4004() -> None:
    from procs.core.instruments import Instrument

    inst = Instrument(symbol="XUSDT", price_scale=2, qty_scale=3, tick_size="0.10", step_size="0.010",
                      min_price="0.10", max_price="100000", min_qty="0.020", max_qty="100",
                      market_min_qty="0.020", market_max_qty="100", min_notional="1")
    market = SettableMarket({"XUSDT": inst})
    market.set_level("XUSDT", True, 9990, 1000)
    market.set_level("XUSDT", False, 10010, 1000)
    venue = Venue(market, TradingConfig(), lambda a, e: None)
    acct = venue.accounts[TEST_ACCOUNT[0]]
    base = {"symbol": "XUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    for price, qty, code in (("99.95", "0.050", -4014), ("99.90", "0.055", -4023), ("99.90", "0.010", -4004)):
        with pytest.raises(ApiError) as ei:
            venue.place(acct, {**base, "price": price, "quantity": qty})
        assert ei.value.code == code
    order, _ = venue.place(acct, {**base, "price": "99.90", "quantity": "0.050"})
    assert order.status == NEW


class _Placer:
    """A market listener that posts a GTX order at each side's touch every ``every`` book updates."""

    def __init__(self, market: Any, venue: Venue, symbol: str, every: int) -> None:
        self.market, self.venue, self.symbol, self.every = market, venue, symbol, every
        self.n = 0
        self.acct = venue.accounts[TEST_ACCOUNT[0]]

    def on_book_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        self.n += 1
        if symbol != self.symbol or self.n % self.every:
            return
        inst = self.market.instruments[symbol]
        step = inst.step_lots
        for side, lvl in (("BUY", self.market.best_bid(symbol)), ("SELL", self.market.best_ask(symbol))):
            if lvl is None:
                continue
            try:
                self.venue.place(self.acct, {"symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": "GTX",
                                             "price": inst.ticks_to_price(lvl[0]),
                                             "quantity": inst.lots_to_qty(step * 10)})
            except ApiError as e:
                assert e.code in (-5022, -2025, -2019), e.msg

    def on_market_trade(self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool,
                        ts_ms: int) -> None:
        pass


def _replay_once(path: Path, queue_model: str) -> list[dict]:
    from procs.exchange_sim.config import SimConfig
    from procs.exchange_sim.server import SimServer
    from procs.exchange_sim.trading.orderapi import build_trading

    async def main() -> list[dict]:
        srv = SimServer(SimConfig(rest_port=0, ws_port=0, source="replay", replay=[str(path)], speed=0.0,
                                  replay_wait_subscriber=False))
        rest, ws = build_trading(srv.market, TradingConfig(queue_model=queue_model))  # type: ignore[arg-type]
        srv.set_handlers(rest, ws)
        srv.market.add_listener(_Placer(srv.market, rest.venue, "BTCUSDT", 400))
        await srv.start()
        try:
            await asyncio.wait_for(srv.done.wait(), 60)
        finally:
            await srv.stop()
        return rest.order_log

    return asyncio.run(main())


@pytest.mark.parametrize("queue_model", ["conservative", "prorata"])
def test_replayed_market_when_replayed_twice_then_same_fills(real_data: Path, queue_model: str) -> None:
    path = real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"
    if not path.exists():
        pytest.skip(f"recording missing: {path}")
    log1 = _replay_once(path, queue_model)
    log2 = _replay_once(path, queue_model)
    assert log1 == log2
    trades = [r for r in log1 if r["event"] == "TRADE"]
    assert len([r for r in log1 if r["event"] == "NEW"]) > 10 and trades
    assert all(r["maker"] for r in trades)


def test_queue_when_resting_where_we_took_liquidity_then_taken_part_not_ahead() -> None:
    r = Rig()
    r.limit("BUY", "60001", "0.4", tif="IOC", acct="ka")  # takes 0.4 of the 1.0 at 60001
    o = r.limit("SELL", "60001", "0.5", acct="kb")
    assert o.status == NEW and o.queue_ahead == lots("0.6")
    r.market.set_level(SYM, False, px("60001"), lots("0.6"))  # the market catches up with our take
    assert o.queue_ahead == lots("0.6")
    r.market.set_level(SYM, False, px("60001"), lots("0.5"))  # a cancel somewhere in the queue
    assert o.queue_ahead == lots("0.5")


def test_market_order_when_walking_many_levels_then_takes_them_in_price_order() -> None:
    r = Rig()
    for i in range(5, 80):
        r.market.set_level(SYM, False, px("60001") + i * 100, lots("0.1"))
    o = r.place(side="BUY", type="MARKET", quantity="10")  # 5 x 1.0 + 50 x 0.1
    assert o.status == FILLED
    prices = [int(Decimal(x["lastPrice"]) * 100) for x in r.venue.order_log if x["event"] == "TRADE"]
    assert prices == sorted(prices) and len(prices) == 55
    assert prices[-1] == px("60001") + 54 * 100
