"""What the venue remembers is bounded, so a long run stays the same size (issue 16): closed orders
(``keep_closed_orders``), trade history (``keep_trades``), income (``keep_income``), and the order
log, which lives in its file when there is one."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from procs.core.config import ConfigError, convert
from procs.exchange_sim.trading import order_log as order_log_module
from procs.exchange_sim.trading.config import AccountConfig, TradingConfig
from procs.exchange_sim.trading.settable_market import SettableMarket
from procs.exchange_sim.trading.venue import Venue
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from tests.support.trading import ROOT, SYM
from tests.support.trading import TradingApi as Api


def rest_and_cancel(api: Api, cid: str, price: str = "59000") -> dict:
    """A resting LIMIT buy, canceled: a closed order without fills."""
    placed = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="0.001", price=price, newClientOrderId=cid)
    api.ok("DELETE", "/fapi/v1/order", symbol=SYM, orderId=placed["orderId"])
    return placed


def file_records(path: Path) -> list[dict]:
    """The order records of a log file as a reader sees them: no SESSION lines."""
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] != "SESSION"]


# -- closed orders -----------------------------------------------------------------------------
def test_closed_orders_beyond_the_bound_answer_does_not_exist_and_the_newest_still_answer() -> None:
    api = Api(keep_closed_orders=3)
    resting = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                     quantity="0.001", price="58000", newClientOrderId="resting")
    closed = [rest_and_cancel(api, f"closed-{i}") for i in range(6)]
    filled = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.001",
                    newClientOrderId="filled")
    for old in closed[:4]:  # the 4 oldest closed orders are forgotten, as the exchange forgets them
        assert api.error("GET", "/fapi/v1/order", symbol=SYM, orderId=old["orderId"]) == -2013
        assert api.error("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId=old["clientOrderId"]) == -2013
        assert api.error("DELETE", "/fapi/v1/order", symbol=SYM, orderId=old["orderId"]) == -2011
    for kept in closed[4:]:
        got = api.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId=kept["clientOrderId"])
        assert (got["orderId"], got["status"]) == (kept["orderId"], "CANCELED")
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=filled["orderId"])["status"] == "FILLED"
    # the open order is older than all of them and is never dropped
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="resting")["status"] == "NEW"
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=resting["orderId"])["clientOrderId"] == "resting"
    listed = {o["clientOrderId"] for o in api.ok("GET", "/fapi/v1/allOrders", symbol=SYM)}
    assert listed == {"resting", "closed-4", "closed-5", "filled"}
    venue = api.rest.venue
    assert len(venue.orders) == len(venue.by_cid) == 4 and len(venue.closed_orders) == 3


def test_keep_closed_orders_zero_forgets_an_order_once_it_closes_and_keeps_it_while_open() -> None:
    api = Api(keep_closed_orders=0)
    placed = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="0.001", price="59000", newClientOrderId="only")
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=placed["orderId"])["status"] == "NEW"
    canceled = api.ok("DELETE", "/fapi/v1/order", symbol=SYM, orderId=placed["orderId"])
    assert canceled["status"] == "CANCELED"  # the cancel's own answer still tells the order
    assert api.error("GET", "/fapi/v1/order", symbol=SYM, orderId=placed["orderId"]) == -2013


def test_a_reused_client_id_keeps_naming_its_newest_order_when_the_older_one_is_dropped() -> None:
    api = Api(keep_closed_orders=2)
    first = rest_and_cancel(api, "reused")
    second = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="0.001", price="59000", newClientOrderId="reused")
    for i in range(3):  # pushes the first "reused" order out of the bound
        rest_and_cancel(api, f"other-{i}")
    assert api.error("GET", "/fapi/v1/order", symbol=SYM, orderId=first["orderId"]) == -2013
    got = api.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="reused")
    assert (got["orderId"], got["status"]) == (second["orderId"], "NEW")
    api.ok("DELETE", "/fapi/v1/order", symbol=SYM, origClientOrderId="reused")
    got = api.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="reused")
    assert (got["orderId"], got["status"]) == (second["orderId"], "CANCELED")


def test_an_amended_order_forgotten_takes_its_amendment_history_with_it() -> None:
    api = Api(keep_closed_orders=1)
    placed = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity="0.001", price="59000", newClientOrderId="amended")
    api.ok("PUT", "/fapi/v1/order", symbol=SYM, orderId=placed["orderId"], side="BUY", quantity="0.001",
           price="59001")
    assert len(api.ok("GET", "/fapi/v1/orderAmendment", symbol=SYM, orderId=placed["orderId"])) == 1
    api.ok("DELETE", "/fapi/v1/order", symbol=SYM, orderId=placed["orderId"])
    rest_and_cancel(api, "later")
    assert api.error("GET", "/fapi/v1/orderAmendment", symbol=SYM, orderId=placed["orderId"]) == -2013
    assert api.rest.venue.amendment_log == {}


def test_a_triggered_stop_and_the_order_it_became_are_each_counted_once() -> None:
    api = Api(keep_closed_orders=10)
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.002")
    stop = api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="STOP_MARKET", stopPrice="59999",
                  quantity="0.001", reduceOnly="true", newClientOrderId="stop")
    api.ok("POST", "/fapi/v1/order", symbol=SYM, side="SELL", type="MARKET", quantity="0.001")  # trades at 59999
    venue = api.rest.venue
    closed = list(venue.closed_orders)
    assert len(closed) == len({id(o) for o in closed}) == 4  # buy, sell, the stop (EXPIRED), its market order
    assert venue.orders[(SYM, stop["orderId"])].status == "EXPIRED"
    assert api.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="stop")["status"] == "FILLED"



def test_closed_algo_orders_beyond_the_bound_answer_does_not_exist_and_open_ones_stay() -> None:
    api = Api(keep_closed_orders=2)
    base = {"algoType": "CONDITIONAL", "symbol": SYM, "side": "BUY", "type": "TAKE_PROFIT_MARKET", "quantity": "0.1"}
    resting = api.ok("POST", "/fapi/v1/algoOrder", **base, triggerPrice="58000", clientAlgoId="resting")
    closed = []
    for i in range(5):
        a = api.ok("POST", "/fapi/v1/algoOrder", **base, triggerPrice=str(59000 - i), clientAlgoId=f"closed-{i}")
        api.ok("DELETE", "/fapi/v1/algoOrder", algoId=a["algoId"])
        closed.append(a)
    for old in closed[:3]:
        assert api.error("GET", "/fapi/v1/algoOrder", algoId=old["algoId"]) == -2013
        assert api.error("GET", "/fapi/v1/algoOrder", clientAlgoId=old["clientAlgoId"]) == -2013
    for kept in closed[3:]:
        assert api.ok("GET", "/fapi/v1/algoOrder", algoId=kept["algoId"])["algoStatus"] == "CANCELED"
    assert api.ok("GET", "/fapi/v1/algoOrder", algoId=resting["algoId"])["algoStatus"] == "NEW"
    listed = [a["clientAlgoId"] for a in api.ok("GET", "/fapi/v1/allAlgoOrders", symbol=SYM)]
    assert listed == ["resting", "closed-3", "closed-4"]
    venue = api.rest.venue
    assert len(venue.algos) == 3 and len(venue.closed_algos) == 2


# -- history queries ------------------------------------------------------------------------------
def test_all_orders_pages_by_limit_order_id_and_time_as_the_exchange_does() -> None:
    api = Api()
    placed = []
    for i in range(6):
        api.market.clock_ms = 1_700_000_000_000 + i * 1000
        placed.append(rest_and_cancel(api, f"o-{i}"))
    ids = [p["orderId"] for p in placed]

    def listed(**params: object) -> list[int]:
        return [o["orderId"] for o in api.ok("GET", "/fapi/v1/allOrders", symbol=SYM, **params)]

    assert listed() == ids  # oldest first
    assert listed(limit=2) == ids[-2:]  # the newest without an orderId
    assert listed(orderId=ids[1], limit=2) == ids[1:3]  # from orderId on
    assert listed(startTime=1_700_000_002_000, endTime=1_700_000_003_000) == ids[2:4]
    assert listed(limit=5000) == ids  # at most 1000, no error
    assert api.error("GET", "/fapi/v1/allOrders", symbol=SYM, limit=0) == -1130
    assert api.error("GET", "/fapi/v1/allOrders", symbol=SYM, limit="x") == -1102
    assert api.error("GET", "/fapi/v1/allOrders", symbol=SYM, startTime=0, endTime=8 * 86_400_000) == -4165
    assert api.error("GET", "/fapi/v1/allOrders") == -1102  # symbol is mandatory
    assert api.error("GET", "/fapi/v1/userTrades", symbol=SYM, limit=-1) == -1130


# -- trades and income ---------------------------------------------------------------------------
def test_trade_history_and_income_keep_the_newest_rows() -> None:
    api = Api(keep_trades=5, keep_income=4)
    for side in ("BUY", "SELL") * 6:
        api.ok("POST", "/fapi/v1/order", symbol=SYM, side=side, type="MARKET", quantity="0.001")
    trades = api.ok("GET", "/fapi/v1/userTrades", symbol=SYM)
    all_ids = [t["id"] for t in api.rest.venue.user_trades[("default", SYM)]]
    assert len(trades) == 5 and [t["id"] for t in trades] == all_ids[-5:]
    assert len(api.rest.venue.user_trades[("default", SYM)]) <= 10  # trimmed in chunks, never past 2x
    # fromId before what is kept answers from the oldest kept row
    assert api.ok("GET", "/fapi/v1/userTrades", symbol=SYM, fromId=1) == trades
    income = api.ok("GET", "/fapi/v1/income")
    tran_ids = [r["tranId"] for r in api.rest.venue.account_named("default").income]
    assert [r["tranId"] for r in income] == tran_ids[-4:] and len(tran_ids) <= 8
    assert income[-1]["tranId"] == api.rest.venue.next_tran_id - 1  # the newest row is there


# -- the order log in its file -------------------------------------------------------------------
def test_file_log_serves_every_record_from_any_point_across_checkpoints(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_log_module, "CHECKPOINT_EVERY", 3)
    path = tmp_path / "orders.jsonl"
    api = Api(order_log=str(path))
    for i in range(4):
        rest_and_cancel(api, f"c{i}")
        api.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.001")
    written = file_records(path)
    log = api.rest.order_log
    assert len(written) == len(log) == 4 * 4 and log == written
    for start in range(len(written) + 2):
        assert api.raw("GET", "/sim/order_log", query=f"from={start}", key=None)[1] == written[start:]
    assert log[5] == written[5] and log[-1] == written[-1] and log[3:7] == written[3:7]
    assert log[-4:] == written[-4:] and log[2:-3] == written[2:-3] and list(log) == written
    with pytest.raises(IndexError):
        log[len(written)]
    assert log._records is None  # the records are not held in memory


def test_file_log_without_restore_begins_at_the_files_end_and_after_restore_at_its_start(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    first = Api(order_log=str(path), restore=True)
    rest_and_cancel(first, "before")
    first.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="MARKET", quantity="0.001")
    resting = first.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                       quantity="0.001", price="58000", newClientOrderId="resting")
    first.rest.venue.close()

    fresh = Api(order_log=str(path))  # restore = false: a fresh venue, its log starts empty
    assert fresh.raw("GET", "/sim/order_log", key=None)[1] == [] and len(fresh.rest.order_log) == 0
    rest_and_cancel(fresh, "fresh")
    served = fresh.raw("GET", "/sim/order_log", key=None)[1]
    assert [(r["event"], r["clientOrderId"]) for r in served] == [("NEW", "fresh"), ("CANCELED", "fresh")]
    fresh.rest.venue.close()

    again = Api(order_log=str(path), restore=True)
    written = file_records(path)
    assert again.raw("GET", "/sim/order_log", key=None)[1] == written == again.rest.order_log
    assert written[-1]["clientOrderId"] == "resting" and written[-1]["reason"] == "venue_restart"
    assert sum(r["clientOrderId"] == "resting" for r in written) == 2  # not written twice by the restore
    assert again.raw("GET", "/sim/order_log", query="from=4", key=None)[1] == written[4:]
    rest_and_cancel(again, "after")
    assert again.raw("GET", "/sim/order_log", key=None)[1] == file_records(path) == written + again.rest.order_log[-2:]
    assert again.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=resting["orderId"])["status"] == "EXPIRED"
    again.rest.venue.close()


def test_file_log_skips_a_torn_line_and_the_next_record_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    first = Api(order_log=str(path))
    rest_and_cancel(first, "one")
    first.rest.venue.close()
    with path.open("a") as f:
        f.write('{"event": "NEW", "sym')  # SIGKILL mid-write
    again = Api(order_log=str(path), restore=True)
    rest_and_cancel(again, "two")
    assert [r["clientOrderId"] for r in again.rest.order_log] == ["one", "one", "two", "two"]
    again.rest.venue.close()


def test_restore_keeps_the_newest_closed_orders_within_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    first = Api(order_log=str(path), restore=True)
    closed = [rest_and_cancel(first, f"c{i}") for i in range(5)]
    resting = first.ok("POST", "/fapi/v1/order", symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                       quantity="0.001", price="58000", newClientOrderId="resting")
    first.rest.venue.close()
    again = Api(order_log=str(path), restore=True, keep_closed_orders=3)
    # the newest closed: the one open at the restart (closed by it), then c4 and c3
    assert again.ok("GET", "/fapi/v1/order", symbol=SYM, orderId=resting["orderId"])["status"] == "EXPIRED"
    for kept in closed[3:]:
        assert again.ok("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId=kept["clientOrderId"]
                        )["status"] == "CANCELED"
    for old in closed[:3]:
        assert again.error("GET", "/fapi/v1/order", symbol=SYM, orderId=old["orderId"]) == -2013
    assert len(again.rest.venue.orders) == len(again.rest.venue.closed_orders) == 3
    new = rest_and_cancel(again, "after")  # the running venue keeps counting from the restored ones
    assert new["orderId"] > resting["orderId"]
    assert again.error("GET", "/fapi/v1/order", symbol=SYM, origClientOrderId="c3") == -2013
    again.rest.venue.close()


# -- memory ------------------------------------------------------------------------------------
def test_memory_after_warm_up_does_not_grow_with_the_number_of_orders(tmp_path: Path) -> None:
    """5000 more orders (with fills) grow traced memory by less than a bound set by the keep_* limits,
    not by the number of orders; the unbounded venue grew ~9 KB per 3 orders + 2 trades."""
    market = SettableMarket(load_exchange_info(ROOT / "procs/exchange_sim/exchange_info_default.json"))
    market.set_level(SYM, True, 5_999_900, 1_000_000)
    market.set_level(SYM, False, 6_000_100, 1_000_000)
    cfg = TradingConfig(accounts=[AccountConfig()], order_log=str(tmp_path / "orders.jsonl"), market_impact=False,
                        keep_closed_orders=200, keep_trades=100, keep_income=100)
    venue = Venue(market, cfg, lambda account, event: None)
    market.add_listener(venue)
    acct = next(iter(venue.accounts.values()))

    def cycle(i: int) -> None:
        order, _ = venue.place(acct, {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                      "quantity": "0.001", "price": "59000", "newClientOrderId": f"c{i % 50}"})
        venue.cancel(acct, {"symbol": SYM, "orderId": str(order.order_id)})
        venue.place(acct, {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": "0.001"})
        venue.place(acct, {"symbol": SYM, "side": "SELL", "type": "MARKET", "quantity": "0.001"})

    for i in range(400):  # warm-up: every bound reached
        cycle(i)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        cycles = 5000 // 3
        for i in range(cycles):
            cycle(i)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    venue.close()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 512 * 1024, f"{grown} bytes over {cycles} cycles"
    assert len(venue.order_log) == 6 * (400 + cycles)  # 3 orders (NEW, CANCELED) and 2 fills a cycle
    assert len(venue.orders) <= 200 and len(venue.by_cid) <= 200


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["keep_closed_orders", "keep_trades", "keep_income"])
def test_config_when_a_keep_bound_is_negative_then_refused_naming_it(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field} must be >= 0"):
        convert({field: -1}, TradingConfig, "b25.toml [sim_trading]")
