"""The engine in one process over the Binance gateway with a recording transport (answers and
stream events as the exchange sends them): report ordering, duplicates, the state machine's
refusals, cancel-before-ack, unknown outcomes, journal rebuild, and a full exec ring."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from procs.core import messages as M
from procs.execution import orders as O
from procs.execution.engine import Engine, EventSink
from procs.execution.journal import read_journal
from procs.venue.binance.orders import stream_report
from procs.venue.binance.rest import WireReply as Reply
from procs.venue.messages import REPLY_FAILED as FAILED
from procs.venue.messages import REPLY_OK as OK
from procs.venue.messages import REPLY_REJECTED as REJECTED
from procs.venue.messages import REPLY_UNKNOWN as UNKNOWN
from tests.support.execution_engine import Producer, make, run, submit


def kinds(prod: Producer) -> list[int]:
    return [v[1] for v in prod.out]


def otu(cid: str, x: str, status: str, *, t: int = 0, last: str = "0", cum: str = "0") -> dict:
    return {"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"c": cid, "x": x, "X": status, "i": 7, "t": t, "l": last,
                                                     "L": "50000", "z": cum, "n": "0.01", "m": False}}


def ack(status: str = "NEW", executed: str = "0") -> Reply:
    return Reply(OK, 200, {"orderId": 7, "status": status, "executedQty": executed})


def test_stream_when_same_trade_reported_twice_then_one_fill(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        method, params, cb = wire.sent[0]
        assert method == "order.place" and params["newClientOrderId"] == "b25-1-1"
        cb(ack())
        for _ in range(2):
            eng.on_report(stream_report(otu("b25-1-1", "TRADE", "PARTIALLY_FILLED", t=5, last="0.001", cum="0.001")), 0)
        assert kinds(prod) == [M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_PARTIALLY_FILLED]
        assert c["duplicate_fills"] == 1 and prod.out[-1][12] == 1 and prod.out[-1][13] == 1_000_000  # lots, fee e8
        eng.on_report(stream_report(otu("b25-1-1", "TRADE", "FILLED", t=6, last="0.001", cum="0.002")), 0)
        assert kinds(prod)[-1] == M.ORDER_FILLED and eng.store.by_cid["b25-1-1"].status == O.FILLED
    run(body)


def test_ack_when_it_arrives_after_the_fill_then_stale_not_illegal(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        eng.on_report(stream_report(otu("b25-1-1", "TRADE", "FILLED", t=9, last="0.002", cum="0.002")), 0)
        wire.sent[0][2](ack())
        eng.on_report(stream_report(otu("b25-1-1", "NEW", "NEW")), 0)
        assert kinds(prod) == [M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_FILLED]
        assert c["stale_reports"] == 2 and "illegal_transitions" not in c
    run(body)


def test_report_when_transition_illegal_then_counted_and_not_applied(tmp_path: Path, capsys: Any) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        wire.sent[0][2](ack())
        eng.on_report(stream_report(otu("b25-1-1", "TRADE", "FILLED", t=1, last="0.002", cum="0.002")), 0)
        eng.on_report(stream_report(otu("b25-1-1", "CANCELED", "CANCELED")), 0)
        assert eng.store.by_cid["b25-1-1"].status == O.FILLED
        assert M.ORDER_CANCELED not in kinds(prod) and c["illegal_transitions"] == 1
    run(body)
    assert "illegal_transition" in capsys.readouterr().err


def test_cancel_when_order_not_yet_acknowledged_then_sent_after_the_ack(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 11)
        eng.on_intent(0, 1, (2, M.CANCEL_ORDER, M.SOURCE_STRATEGY, 1, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0), 0)
        assert len(wire.sent) == 1
        wire.sent[0][2](ack())
        assert wire.sent[1][0] == "order.cancel" and wire.sent[1][1]["origClientOrderId"] == "b25-1-1"
        wire.sent[1][2](ack("CANCELED"))
        assert kinds(prod) == [M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_CANCELED]
    run(body)


def test_cancel_all_when_order_still_queued_then_withdrawn_and_never_sent(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        wire.send = lambda method, params, cb: 0  # the connection takes nothing: the place waits
        submit(eng, 0, 1)
        submit(eng, 1, 2)
        assert len(eng.queue) == 2 and not wire.sent
        assert eng.cancel_all() == 2
        del wire.send  # the class's recording send again
        eng._pump()
        assert not wire.sent and not eng.queue and not eng.store.open
        assert kinds(prod) == [M.ORDER_CANCELED, M.ORDER_CANCELED] and c["canceled"] == 2
        assert [v[23] & M.FLAG_NOT_SENT for v in prod.out] == [M.FLAG_NOT_SENT] * 2  # flags: never at the venue
    run(body)


def test_cancel_all_when_order_in_flight_then_cancelled_once_its_ack_arrives(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        eng.cancel_all()
        assert [m for m, _, _ in wire.sent] == ["order.place"]
        eng.on_report(stream_report(otu("b25-1-1", "NEW", "NEW")), 0)  # the stream's report comes first
        assert [m for m, _, _ in wire.sent] == ["order.place", "order.cancel"]
        wire.sent[0][2](ack())  # then the API's answer: the cancel is not sent twice
        assert len(wire.sent) == 2
        wire.sent[1][2](ack("CANCELED"))
        assert kinds(prod) == [M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_CANCELED] and not eng.store.open
    run(body)


def test_place_when_outcome_unknown_and_exchange_never_saw_it_then_resent_with_same_id(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        wire.sent[0][2](Reply(UNKNOWN, msg="connection lost"))
        assert wire.sent[1][0] == "order.status" and wire.sent[1][1]["origClientOrderId"] == "b25-1-1"
        wire.sent[1][2](Reply(REJECTED, 400, {"code": -2013}, -2013, "Order does not exist."))
        assert wire.sent[2][0] == "order.place" and wire.sent[2][1]["newClientOrderId"] == "b25-1-1"
        wire.sent[2][2](ack())
        assert kinds(prod) == [M.ORDER_SENT, M.ORDER_ACCEPTED] and c["resends"] == 1
    run(body)


def test_place_when_unavailable_then_rejected_and_breaker_counts(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        for i in range(5):
            submit(eng, i, i + 1)
            wire.sent[-1][2](Reply(FAILED, 503, {"code": -1001}, -1001, "Service Unavailable."))
        submit(eng, 5, 6)
        assert [v[14] for v in prod.out if v[1] == M.ORDER_REJECTED] == [M.REJECT_UNAVAILABLE] * 5
        assert prod.out[-1][1] == M.ORDER_DENIED and prod.out[-1][14] == M.DENY_BREAKER_OPEN
        assert c["breaker_state"] == 1
    run(body)


def test_rebuild_when_journal_replayed_then_orders_seqs_and_trades_restored(tmp_path: Path) -> None:
    def first() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        submit(eng, 1, 2)
        wire.sent[0][2](ack())
        eng.on_report(stream_report(otu("b25-1-1", "TRADE", "PARTIALLY_FILLED", t=3, last="0.001", cum="0.001")), 0)
        eng.journal.close()
    run(first)

    def second() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.epoch == 2 and eng.processed_seq == [1, -1, -1]
        a, b = eng.store.by_cid["b25-1-1"], eng.store.by_cid["b25-1-2"]
        assert a.status == O.PARTIALLY_FILLED and a.cum_qty == 1 and a.trade_ids == {3} and a.order_id == 7
        assert b.status == O.PENDING and eng.store.find_tag(1, 2) is b
        submit(eng, 1, 2)  # re-read after the crash: already journaled
        assert c["duplicate_intents"] == 1 and not wire.sent
        eng.on_report(stream_report(otu("b25-1-1", "TRADE", "PARTIALLY_FILLED", t=3, last="0.001", cum="0.001")), 0)
        assert c["duplicate_fills"] == 1
        submit(eng, 2, 3)
        assert wire.sent[0][1]["newClientOrderId"] == "b25-2-1"
    run(second)


def test_fills_when_an_earlier_trade_comes_after_a_later_ones_report_then_counted_once_and_after_a_rebuild(
        tmp_path: Path) -> None:
    """The 100-fault chaos run (seed 3031): after an execution restart the stream's report of
    trade 47 (cumulative 0.014) came before the trades 44-46 it already held; their lots were added
    on top, so the journal said 0.033 filled where the venue said 0.020 and the strategy's position
    was 0.013 off. A reported cumulative holds every trade up to its own id."""
    lots = []

    def fill(eng: Any, prod: Any, t: int, last: str, cum: str, status: str = "PARTIALLY_FILLED") -> None:
        eng.on_report(stream_report(otu("b25-1-1", "TRADE", status, t=t, last=last, cum=cum)), 0)
        lots.append(prod.out[-1])

    def first() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1, qty=20)
        wire.sent[0][2](ack())
        fill(eng, prod, 47, "0.001", "0.014")
        for t, last, cum in ((44, "0.009", "0.009"), (45, "0.003", "0.012"), (46, "0.001", "0.013")):
            fill(eng, prod, t, last, cum)
        o = eng.store.by_cid["b25-1-1"]
        assert o.cum_qty == 14 and o.trade_ids == {44, 45, 46, 47}
        fill(eng, prod, 54, "0.004", "0.018")
        eng.journal.close()
    run(first)

    def second() -> None:
        eng, prod, wire, c = make(tmp_path)
        o = eng.store.by_cid["b25-1-1"]
        assert o.cum_qty == 18, "rebuilt from the journal"
        fill(eng, prod, 55, "0.002", "0.020", "FILLED")
        assert o.cum_qty == 20 and o.status == O.FILLED
    run(second)
    # the events: their last quantities add up to the venue's 0.020, their cumulatives never pass it
    qty, cum = M.OrderEvent.names.index("last_qty"), M.OrderEvent.names.index("cum_qty")
    assert sum(e[qty] for e in lots) == 20 and max(e[cum] for e in lots) == 20


def test_filled_after_when_a_later_trade_comes_from_the_trade_list_before_its_report_then_it_adds() -> None:
    from procs.execution.orders import Order

    o = Order("c", 1, 0, M.SELL, M.LIMIT, M.GTC, 100, 20)
    assert o.filled_after(47, 1, 14) == 14  # the stream: trade 47, the venue's cumulative 14
    o.cum_qty = 14
    assert o.filled_after(54, 4) == 18  # the trade list (no cumulative): a later trade adds
    o.cum_qty = 18
    assert o.filled_after(44, 9) == 18  # an earlier one is in the reported 14 already
    plain = Order("d", 1, 0, M.BUY, M.LIMIT, M.GTC, 100, 20)
    assert [plain.filled_after(t, 2) for t in (1, 2, 3)] == [2, 4, 6]  # trades alone: their sum


def test_sink_when_exec_ring_full_then_events_wait_in_order_and_none_is_lost() -> None:
    async def main() -> None:
        prod = Producer(full_for=50)
        waits = []
        sink = EventSink(prod, lambda: waits.append(1))
        for i in range(10):
            sink.publish((i,))
        assert prod.out == [] and len(waits) == 10
        for _ in range(200):
            await asyncio.sleep(0.002)
            if len(prod.out) == 10:
                break
        assert prod.out == [(i,) for i in range(10)]
    asyncio.run(main())


def test_compact_when_journal_rotated_then_same_state_rebuilt_and_old_file_archived(tmp_path: Path) -> None:
    from procs.execution import recovery

    def first() -> None:
        eng, prod, wire, c = make(tmp_path)
        for i in range(6):
            submit(eng, i, i + 1)
            wire.sent[-1][2](ack() if i % 2 else Reply(REJECTED, 400, {"code": -4164}, -4164, "x"))
        eng.on_report(stream_report(otu("b25-1-2", "TRADE", "PARTIALLY_FILLED", t=3, last="0.001", cum="0.001")), 0)
        eng.journal.close()
        recovery.compact(eng, tmp_path / "j")
        assert eng.event_seq == max(r.event_seq for r in read_journal(tmp_path / "j.1")[0])
    run(first)
    assert (tmp_path / "j.1").exists() and len(read_journal(tmp_path / "j")[0]) < len(read_journal(tmp_path / "j.1")[0])

    def second() -> None:
        eng, prod, wire, c = make(tmp_path)
        assert eng.epoch == 2 and eng.processed_seq == [5, -1, -1]
        assert sorted(eng.store.open) == ["b25-1-2", "b25-1-4", "b25-1-6"]
        assert eng.store.by_cid["b25-1-2"].trade_ids == {3} and eng.store.by_cid["b25-1-2"].cum_qty == 1
        assert "b25-1-1" not in eng.store.by_cid  # closed in the earlier run: forgotten
        submit(eng, 6, 7)
        assert wire.sent[0][1]["newClientOrderId"] == "b25-2-1"
    run(second)


def cancel(eng: Engine, seq: int, tag: int) -> None:
    eng.on_intent(0, seq, (seq, M.CANCEL_ORDER, M.SOURCE_STRATEGY, 1, 0, M.BUY, M.LIMIT, M.GTC, 0, 0, 0, tag, 0, 0, 0, 0, 0, 0),
                  0)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


GONE = Reply(REJECTED, 400, {"code": -2013}, -2013, "Order does not exist.")


@pytest.mark.parametrize("trades", [[], [{"id": 9, "orderId": 7, "qty": "0.001", "price": "50000",
                                          "commission": "0.01", "maker": True, "time": 1}]])
def test_cancel_when_exchange_no_longer_knows_the_order_then_fills_caught_up_and_closed_expired(
        tmp_path: Path, trades: list) -> None:
    # a venue restart (or a purge) drops an acknowledged order. Before, it stayed open for ever
    # (counted against max_open_orders), and each cancel went cancel -> rejected -> query -> again
    async def main() -> None:
        eng, prod, wire, c = make(tmp_path)
        wire.call_replies["/fapi/v1/userTrades"] = Reply(OK, 200, trades)
        submit(eng, 0, 1)
        wire.sent[0][2](ack())
        cancel(eng, 1, 1)
        assert wire.sent[1][0] == "order.cancel"
        wire.sent[1][2](Reply(REJECTED, 400, {"code": -2011}, -2011, "Unknown order sent."))
        assert wire.sent[2][0] == "order.status"
        wire.sent[2][2](GONE)
        await settle()
        assert kinds(prod)[-1] == M.ORDER_EXPIRED and prod.out[-1][23] & M.FLAG_VANISHED
        assert not eng.store.open and c["vanished"] == 1 and len(wire.sent) == 3  # nothing more is asked
        assert c.get("fills", 0) == len(trades) and eng.store.by_cid["b25-1-1"].cum_qty == len(trades)
        assert [p for _, p, _ in wire.calls] == ["/fapi/v1/userTrades"]
    asyncio.run(main())


def test_query_when_order_gone_and_trades_unreadable_then_kept_open_and_asked_again(tmp_path: Path) -> None:
    async def main() -> None:
        eng, prod, wire, c = make(tmp_path)
        wire.call_replies["/fapi/v1/userTrades"] = Reply(FAILED, 503, {"code": -1001}, -1001, "x")
        submit(eng, 0, 1)
        wire.sent[0][2](ack())
        eng._enqueue(3, eng.store.by_cid["b25-1-1"])  # a status query (as reconciliation sends)
        wire.sent[1][2](GONE)
        await settle()
        assert "b25-1-1" in eng.store.open  # its fills unknown: not closed blind
        await asyncio.sleep(1.1)
        assert wire.sent[-1][0] == "order.status" and len(wire.sent) == 3  # asked again
        wire.call_replies["/fapi/v1/userTrades"] = Reply(OK, 200, [])
        wire.sent[-1][2](GONE)
        await settle()
        assert not eng.store.open and kinds(prod)[-1] == M.ORDER_EXPIRED
    asyncio.run(main())


def modify(eng: Engine, tag: int, price: int = 0, qty: int = 0) -> None:
    eng.on_intent(0, 100 + tag, (0, M.MODIFY_ORDER, M.SOURCE_STRATEGY, 1, 0, M.BUY, M.LIMIT, M.GTC, price, qty,
                                 0, tag, 0, 0, 0, 0, 0, 0), 0)


def amended(price: str, qty: str, ts: int) -> dict:
    return {"e": "ORDER_TRADE_UPDATE", "E": ts, "o": {"c": "b25-1-1", "x": "AMENDMENT", "X": "NEW", "i": 7,
                                                      "p": price, "q": qty, "z": "0"}}


def test_modify_when_order_pending_then_newest_amend_waits_for_the_ack_and_goes_once(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        modify(eng, 1, price=5_000_100)
        modify(eng, 1, price=5_000_200)  # the newest wins
        assert [m for m, _, _ in wire.sent] == ["order.place"]
        wire.sent[0][2](ack())
        method, params, cb = wire.sent[1]
        assert method == "order.modify" and len(wire.sent) == 2
        assert params == {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.002", "price": "50002",
                          "origClientOrderId": "b25-1-1"}
        cb(Reply(OK, 200, {"orderId": 7, "status": "NEW", "price": "50002.00", "origQty": "0.002",
                           "updateTime": 20}))
        assert kinds(prod)[-2:] == [M.ORDER_MODIFY_SENT, M.ORDER_MODIFIED]
        o = eng.store.by_cid["b25-1-1"]
        assert (o.price, o.qty) == (5_000_200, 2)
        eng.on_report(stream_report(amended("50001.00", "0.002", 10)), 0)  # an older amend's report, late: stale
        assert o.price == 5_000_200 and kinds(prod)[-1] == M.ORDER_MODIFIED and c["modified"] == 1
        eng.on_report(stream_report(amended("50003.00", "0.004", 30)), 0)  # amended elsewhere: taken
        assert (o.price, o.qty) == (5_000_300, 4) and eng.store.counts.buy_qty[0] == 4
    run(body)


def test_modify_when_outcome_unknown_then_order_queried_and_its_terms_taken(tmp_path: Path) -> None:
    def body() -> None:
        eng, prod, wire, c = make(tmp_path)
        submit(eng, 0, 1)
        wire.sent[0][2](ack())
        modify(eng, 1, qty=5)
        wire.sent[1][2](Reply(UNKNOWN, 0, None, msg="timeout"))
        method, _, cb = wire.sent[2]
        assert method == "order.status"
        cb(Reply(OK, 200, {"orderId": 7, "status": "NEW", "price": "50000.00", "origQty": "0.005"}))
        assert eng.store.by_cid["b25-1-1"].qty == 5 and kinds(prod)[-1] == M.ORDER_MODIFIED
    run(body)
