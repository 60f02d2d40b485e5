"""The chaos campaign's checks on hand-made journals and venue logs: each finding is found, and a
consistent history finds nothing."""

from __future__ import annotations

import json
from pathlib import Path

from procs.core import messages as M
from procs.exchange_sim.observe import logged_orders
from procs.execution.journal import JournalRecord
from procs.tools.reliability import checks as C
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from procs.venue.binance.orders import order_report

ROOT = Path(__file__).resolve().parents[3]
INSTRUMENTS = load_exchange_info(json.loads((ROOT / "procs/exchange_sim/exchange_info_default.json").read_text()))
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def sent(cid: str, tag: int, seq: int, num: int = 7) -> JournalRecord:
    return JournalRecord(M.ORDER_SENT, cid, num, 0, M.BUY, M.LIMIT, M.GTC, 6000000, 2, client_tag=tag,
                         source=M.SOURCE_STRATEGY, ring=0, ring_seq=seq)


def rec(kind: int, cid: str, cum: int = 0, flags: int = 0) -> JournalRecord:
    return JournalRecord(kind, cid, 7, 0, M.BUY, M.LIMIT, M.GTC, 6000000, 2, cum_qty=cum, flags=flags,
                         source=M.SOURCE_STRATEGY)


def venue_rec(event: str, cid: str, status: str, executed: str = "0.000", oid: int = 1, **kw) -> dict:
    return {"event": event, "account": "default", "symbol": "BTCUSDT", "orderId": oid, "clientOrderId": cid,
            "status": status, "executedQty": executed, **kw}


def history() -> tuple[list[JournalRecord], list[dict]]:
    """a: accepted then filled; b: resting; c: vanished at a venue restart after a partial fill."""
    journal = [sent("b25-1-1", 11, 0), rec(M.ORDER_ACCEPTED, "b25-1-1"), rec(M.ORDER_FILLED, "b25-1-1", cum=2),
               sent("b25-1-2", 12, 1), rec(M.ORDER_ACCEPTED, "b25-1-2"),
               sent("b25-1-3", 13, 2), rec(M.ORDER_ACCEPTED, "b25-1-3"),
               rec(M.ORDER_PARTIALLY_FILLED, "b25-1-3", cum=1), rec(M.ORDER_EXPIRED, "b25-1-3", cum=1,
                                                                     flags=M.FLAG_VANISHED)]
    log = [venue_rec("NEW", "b25-1-1", "NEW", oid=1), venue_rec("TRADE", "b25-1-1", "FILLED", "0.002", oid=1),
           venue_rec("NEW", "b25-1-2", "NEW", oid=2),
           venue_rec("NEW", "b25-1-3", "NEW", oid=3), venue_rec("TRADE", "b25-1-3", "PARTIALLY_FILLED", "0.001", oid=3),
           venue_rec("EXPIRED", "b25-1-3", "EXPIRED", "0.001", oid=3, reason="venue_restart")]
    return journal, log


def findings(journal: list, log: list, open_at_venue: list, working: dict, live: set) -> dict[str, list]:
    j, v = C.journal_orders(journal), C.venue_orders(logged_orders(log))
    lost, doubled = C.find_lost_and_doubled(j, v)
    return {"lost": lost, "doubled": doubled, "orphaned": C.find_orphaned(open_at_venue, j, working, live),
            "mismatches": C.find_state_mismatches(j, v, INSTRUMENTS, SYMBOLS)}


def test_consistent_history_when_checked_then_nothing_is_found():
    journal, log = history()
    got = findings(journal, log, [order_report({"clientOrderId": "b25-1-2"})], {7: {12}}, {7})
    assert got == {"lost": [], "doubled": [], "orphaned": [], "mismatches": []}


def test_each_defect_when_present_then_found_and_named():
    journal, log = history()
    log.append(venue_rec("NEW", "b25-9-9", "NEW", oid=9))  # accepted, unknown to the journal
    log.append(venue_rec("NEW", "b25-1-2", "NEW", oid=10))  # the same id accepted twice
    journal += [sent("b25-2-1", 12, 5), sent("b25-2-2", 14, 1)]  # one tag twice, one intent twice
    journal.append(rec(M.ORDER_CANCELED, "b25-1-1"))  # an illegal late close does not rewrite FILLED
    log[1] = venue_rec("TRADE", "b25-1-1", "PARTIALLY_FILLED", "0.001", oid=1)  # the venue says otherwise
    got = findings(journal, log, [order_report({"clientOrderId": c}) for c in ("b25-1-2", "b25-9-9")], {7: set()},
                   {7})
    assert got["lost"] == ["b25-9-9"]
    assert {"cid": "b25-1-2", "accepted": 2} in got["doubled"]
    assert {"ring": 0, "ring_seq": 1, "cids": ["b25-1-2", "b25-2-2"]} in got["doubled"]
    assert {"source": M.SOURCE_STRATEGY, "strategy_id": 7, "client_tag": 12, "cids": ["b25-1-2", "b25-2-1"]} \
        in got["doubled"]
    assert [o["cid"] for o in got["orphaned"]] == ["b25-1-2", "b25-9-9"]
    by_cid = {m["cid"]: m for m in got["mismatches"]}
    assert by_cid["b25-1-1"]["journal"] == "filled" and by_cid["b25-1-1"]["venue"] == "partially_filled"
    assert by_cid["b25-2-1"]["venue"] is None  # journaled as sent, never seen by the venue


def test_order_never_at_the_venue_when_withdrawn_before_the_wire_then_no_mismatch_else_one():
    """Canceled while the limiter (or a dead link) held it: the venue cannot know it, and
    execution says so with FLAG_NOT_SENT; a plain cancel of an order the venue never saw is a
    mismatch, as is a withdrawn order with a fill."""
    journal, log = history()
    journal += [sent("b25-3-1", 31, 7), rec(M.ORDER_CANCELED, "b25-3-1", flags=M.FLAG_NOT_SENT),
                sent("b25-3-2", 32, 8), rec(M.ORDER_CANCELED, "b25-3-2")]
    got = findings(journal, log, [order_report({"clientOrderId": "b25-1-2"})], {7: {12}}, {7})
    assert [(m["cid"], m["journal"], m["venue"]) for m in got["mismatches"]] == [("b25-3-2", "canceled", None)]


def test_orphans_when_strategy_not_running_or_order_manual_then_found():
    journal, _ = history()
    journal.append(JournalRecord(M.ORDER_SENT, "b25-1-8", 0, 0, M.BUY, M.LIMIT, M.GTC, 1, 1, client_tag=1,
                                 source=M.SOURCE_MANUAL, ring=1, ring_seq=0))
    got = C.find_orphaned([order_report({"clientOrderId": c}) for c in ("b25-1-2", "b25-1-8")],
                          C.journal_orders(journal), {7: {12}}, set())
    assert [o["why"] for o in got] == ["strategy 7 is not running", "source manual: no strategy manages it"]


def test_positions_when_any_of_venue_risk_strategies_differ_then_mismatch_per_symbol():
    state = {"strategies": {"a": {"num": 1, "positions": {"BTCUSDT": {"qty": 3}}, "open_orders": [5]},
                            "b": {"num": 2, "positions": {"BTCUSDT": {"qty": -1}, "ETHUSDT": {"qty": 4}}}}}
    strategies = C.strategy_positions(state)
    assert strategies == {"BTCUSDT": 2, "ETHUSDT": 4}
    assert C.working_sets(state) == {1: {5}, 2: set()}
    got = C.find_position_mismatches(SYMBOLS, {"BTCUSDT": 2, "ETHUSDT": 4}, {"BTCUSDT": 2, "ETHUSDT": 5}, strategies)
    assert got == [{"symbol": "ETHUSDT", "venue": 4, "risk": 5, "strategies": 4}]
