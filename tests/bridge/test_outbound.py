"""The bridge's outbound side over real rings (no process, no NATS): what each ring's records
become, book conflation, lapping, and the durable rings' resume after a restart."""

from __future__ import annotations

import numpy as np
import pytest

from procs.bridge import schema as S
from procs.bridge.config import BridgeConfig
from procs.bridge.outbound import Outbound, Outgoing
from procs.core import messages as M
from procs.core.registry import EXEC, MD_BOOK, MD_TRADE, RISK_STATE, alerts_name, build_registry

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
SCALES = [(2, 3), (2, 3)]
MS = 1_000_000


def book(sid: int, seq: int, bid: int = 100, ask: int = 101) -> np.ndarray:
    b = np.zeros(1, M.BookUpdate)
    b["symbol_id"], b["seq"], b["update_id"], b["ts_pub"] = sid, seq, 1000 + seq, 5
    b["n_bids"] = b["n_asks"] = 2
    b["bid_px"][0, :2], b["bid_qty"][0, :2] = (bid, bid - 1), (3, 4)
    b["ask_px"][0, :2], b["ask_qty"][0, :2] = (ask, ask + 1), (6, 7)
    return b


def exec_event(seq: int, kind: int = M.ORDER_DENIED, strategy: int = 77) -> tuple:
    vals = [0] * 24
    vals[0], vals[1], vals[2], vals[3], vals[4], vals[5] = seq, kind, strategy, 1, M.SELL, M.LIMIT
    vals[8], vals[9], vals[14], vals[22] = 300000, 40, M.DENY_MAX_ORDER_QTY, M.SOURCE_REMOTE
    return (*vals, b"b25-1-%d" % seq, 0)  # client order id, trigger price


@pytest.fixture
def rings(instance: str):
    reg = build_registry()
    made = {n: reg.producer(instance, n) for n in (MD_BOOK, MD_TRADE, EXEC, alerts_name("risk"))}
    risk = reg.writer(instance, RISK_STATE)
    yield made, risk
    for p in made.values():
        p.close(unlink=True)
    risk.close(unlink=True)


def outbound(instance: str, **cfg) -> Outbound:
    return Outbound(BridgeConfig(**cfg), instance, SYMBOLS, SCALES, {77: "remote_mm"})


def decoded(out: list[Outgoing]) -> list[tuple[str, S.Message]]:
    return [(o.subject.split(".", 2)[2], S.decode_any(o.payload)) for o in out]


def test_poll_when_records_arrive_then_one_message_each_on_its_subject(instance: str, rings) -> None:
    made, risk = rings
    ob = outbound(instance, book_max_hz=0)
    out: list[Outgoing] = []
    ob.poll(out)  # attach: md starts at the head, the durable rings at their oldest record
    made[MD_BOOK].publish_batch(book(1, 9))
    made[MD_TRADE].try_publish(0, 55, 300001, 12, 1, 2, 3, M.TRADE_BUYER_MAKER)
    made[EXEC].try_publish(*exec_event(1))
    made[alerts_name("risk")].try_publish(123, M.ALERT_CRITICAL, 7, -1, 1.5, b"halted: daily loss")
    rs = np.zeros(1, M.RiskState)
    rs["trading_state"], rs["updated_ns"], rs["version"], rs["position"][0, 1] = M.HALTED, 1, 4, -40
    risk.write(0, rs[0])
    out.clear()
    ob.poll(out)
    got = dict(decoded(out))
    b = got["md.book.ETHUSDT"]
    assert isinstance(b, S.Book) and (b.seq, b.bids, b.asks) == (9, [(100, 3), (99, 4)], [(101, 6), (102, 7)])
    t = got["md.trade.BTCUSDT"]
    assert isinstance(t, S.Trade) and (t.trade_id, t.price, t.qty, t.buyer_maker, t.price_scale) == (55, 300001, 12, True, 2)
    e = got["exec.remote_mm"]
    assert isinstance(e, S.OrderEvent)
    assert (e.kind, e.reason_name, e.source, e.symbol, e.side, e.client_order_id) == (
        "denied", "max_order_qty", "remote", "ETHUSDT", "SELL", "b25-1-1")
    a = got["alerts.critical"]
    assert isinstance(a, S.Alert) and (a.proc, a.text, a.symbol) == ("risk", "halted: daily loss", "")
    r = got["risk.state"]
    assert isinstance(r, S.RiskState) and r.trading_state == "HALTED" and r.symbols["ETHUSDT"].position == -40
    durable = [o for o in out if o.durable]
    assert [o.msg_id.split(":")[0] for o in durable] == [EXEC, alerts_name("risk")]
    out.clear()
    ob.poll(out)
    assert out == []  # nothing new, and risk.state's version did not change
    ob.close()


def test_books_when_faster_than_book_max_hz_then_the_newest_goes_out_with_the_skipped_count(instance: str,
                                                                                           rings) -> None:
    made, _ = rings
    ob = outbound(instance, book_max_hz=10)  # one Book per symbol per 100 ms
    out: list[Outgoing] = []
    ob.poll(out, now_ns=0)
    for seq in range(1, 6):
        made[MD_BOOK].publish_batch(book(0, seq, bid=100 + seq))
    ob.poll(out, now_ns=1 * MS)
    assert [(m.seq, m.conflated) for _, m in decoded(out)] == [(1, 0)]  # the first goes out at once
    out.clear()
    ob.poll(out, now_ns=50 * MS)
    assert out == []  # 2..5 wait: the interval has not passed
    ob.poll(out, now_ns=101 * MS)
    assert [(m.seq, m.conflated, m.bids[0][0]) for _, m in decoded(out)] == [(5, 3, 105)]  # 2, 3, 4 skipped
    assert ob.conflated == 3
    ob.close()


def test_poll_when_nats_is_down_then_md_is_dropped_and_durable_kept(instance: str, rings) -> None:
    made, _ = rings
    ob = outbound(instance)
    out: list[Outgoing] = []
    ob.poll(out)
    made[MD_BOOK].publish_batch(book(0, 1))
    made[EXEC].try_publish(*exec_event(1))
    ob.poll(out, md=False)
    assert ob.dropped == 1 and [o.durable for o in out] == [EXEC]
    ob.close()


def test_durable_ring_when_the_bridge_restarts_then_it_resumes_at_the_saved_sequence(instance: str, rings) -> None:
    made, _ = rings
    for seq in range(1, 6):
        made[EXEC].try_publish(*exec_event(seq))
    first = outbound(instance)
    out: list[Outgoing] = []
    first.poll(out)
    assert [o.seq for o in out if o.durable == EXEC] == [0, 1, 2, 3, 4]  # a first run takes the ring's history
    created = first.exec.created_ns
    first.close()
    again = outbound(instance)
    again.exec.resume(created, 3)  # the cursor file said: 0..2 acknowledged
    out.clear()
    again.poll(out)
    assert [o.seq for o in out if o.durable == EXEC] == [3, 4]
    other = outbound(instance)
    other.exec.resume(created + 1, 3)  # another incarnation's cursor: this ring is new, all of it goes
    out.clear()
    other.poll(out)
    assert [o.seq for o in out if o.durable == EXEC] == [0, 1, 2, 3, 4]
    again.close()
    other.close()


def test_observer_when_lapped_then_counted_and_never_gating(instance: str, rings) -> None:
    made, _ = rings
    ob = outbound(instance, book_max_hz=0)
    out: list[Outgoing] = []
    ob.poll(out)
    cap = made[MD_BOOK].capacity
    for seq in range(cap + 10):  # the producer never waits for the bridge
        assert made[MD_BOOK].publish_batch(book(0, seq)) == 1
    out.clear()
    ob.poll(out, limit=cap * 2)
    assert ob.lapped == 11 and len(out) == cap - 1
    assert [S.decode_any(o.payload).seq for o in out][-1] == cap + 9
    ob.close()
