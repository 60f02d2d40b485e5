"""Read-only shm views, the collector's histogram mapping, order bookkeeping and body decoding."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from procs.core import messages as M
from procs.core.registry import SIGNALS, build_registry
from procs.core.status import ProcessStatus, State, StatusWriter
from procs.monitor.collector import histogram_buckets, metric_name
from procs.monitor.ops import BadRequest, CancelAllBody, KillSwitchBody, decode_body
from procs.monitor.orders import OrderTracker, Position
from procs.monitor.shmview import InstanceView, RingView, StateView, status_dict
from shm.counters import N_BUCKETS, bucket_of


def _signal(p, n: int) -> None:
    for i in range(n):
        assert p.try_publish(1, 0, i, float(i), 0, 0, 0.0, i)


def test_ring_view_when_polled_then_returns_history_then_only_new_records(instance):
    p = build_registry().producer(instance, SIGNALS)
    try:
        _signal(p, 5)
        v = RingView(instance, SIGNALS, M.Signal)
        assert list(v.poll(history=3)["md_seq"]) == [2, 3, 4]
        assert len(v.poll()) == 0
        _signal(p, 2)
        assert list(v.poll()["md_seq"]) == [0, 1]
        assert list(v.tail(4)["md_seq"]) == [3, 4, 0, 1]
        v.close()
    finally:
        p.close(unlink=True)


def test_ring_view_when_lapped_then_counts_lost_and_never_returns_overwritten_records(instance):
    p = build_registry().producer(instance, SIGNALS)  # capacity 4096
    try:
        v = RingView(instance, SIGNALS, M.Signal)
        assert len(v.poll()) == 0
        _signal(p, 5000)
        got = v.poll(limit=10000)
        assert v.lost == 5000 - 4095 and len(got) == 4095
        assert int(got["md_seq"][-1]) == 4999
        v.close()
    finally:
        p.close(unlink=True)


def test_views_when_segment_is_removed_and_recreated_then_reattach(instance):
    reg = build_registry()
    w = reg.writer(instance, "risk.state")
    w.write(0, np.zeros((), M.RiskState))
    v = StateView(instance, "risk.state", M.RiskState)
    assert v.read() is not None
    w.close(unlink=True)
    assert v.read() is None
    w = reg.writer(instance, "risk.state")
    rec = np.zeros((), M.RiskState)
    rec["trading_state"] = M.HALTED
    w.write(0, rec)
    try:
        got = v.read()
        assert got is not None and int(got[0][0]["trading_state"]) == M.HALTED
    finally:
        v.close()
        w.close(unlink=True)


def test_status_when_heartbeat_old_or_pid_dead_or_stopped_then_not_fresh(instance):
    s = StatusWriter(instance, "risk")
    try:
        s.set_state(State.RUNNING)
        view = InstanceView(instance)
        st = view.statuses(["risk", "strategy"], 2.0)
        assert st["risk"]["fresh"] and st["risk"]["state"] == "RUNNING"
        assert st["strategy"]["state"] == "ABSENT" and not st["strategy"]["fresh"]
        view.close()
    finally:
        s.close(unlink=True)
    rec = np.zeros((), ProcessStatus)
    now = time.monotonic_ns()
    import os
    rec["pid"], rec["state"], rec["heartbeat_ns"], rec["started_ns"] = os.getpid(), State.RUNNING, now - 5 * 10**9, now
    assert "heartbeat 5.0s old" in status_dict("x", rec, 2.0, now)["why"]
    rec["state"] = State.STOPPED
    assert status_dict("x", rec, 2.0, now)["why"] == "state STOPPED"
    rec["pid"] = 2**22 + 12345  # above pid_max on this kernel: never alive
    assert "not alive" in status_dict("x", rec, 2.0, now)["why"]


def test_histogram_buckets_when_counts_given_then_cumulative_powers_of_two_with_inf():
    counts = np.zeros(N_BUCKETS, np.int64)
    counts[bucket_of(100)] += 2  # first row: <= 128 ns
    counts[bucket_of(3_000)] += 5
    counts[N_BUCKETS - 1] += 1  # beyond the last bound
    buckets, total = histogram_buckets(counts)
    assert buckets[0] == ("1.28e-07", 2.0)
    assert buckets[-1] == ("+Inf", 8.0)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    le_4096 = dict(buckets)["4.096e-06"]
    assert le_4096 == 7.0
    assert total > 0 and math.isfinite(total)
    assert metric_name("recv-to.publish") == "recv_to_publish"


def test_position_when_filled_both_ways_then_average_cost_and_realized():
    p = Position()
    p.fill(M.BUY, 100, 2, 10)
    p.fill(M.BUY, 110, 2, 10)
    assert p.lots == 4 and p.avg_ticks == 105.0
    p.fill(M.SELL, 120, 3, 0)  # closes 3 at +15
    assert p.lots == 1 and p.realized == 45.0 and p.avg_ticks == 105.0
    p.fill(M.SELL, 100, 3, 0)  # closes 1 at -5, opens short 2 at 100
    assert p.lots == -2 and p.realized == 40.0 and p.avg_ticks == 100.0
    assert p.unrealized(90) == 20.0 and p.fees_e8 == 20


def test_order_tracker_when_events_arrive_then_open_orders_follow_their_lifecycle():
    ev = np.zeros(4, M.OrderEvent)
    for i, (kind, coid) in enumerate([(M.ORDER_ACCEPTED, b"a"), (M.ORDER_ACCEPTED, b"b"),
                                      (M.ORDER_CANCELED, b"a"), (M.ORDER_DENIED, b"c")]):
        ev[i]["kind"], ev[i]["client_order_id"], ev[i]["side"] = kind, coid, M.BUY
    t = OrderTracker()
    t.apply(ev)
    assert [bytes(e["client_order_id"]) for e in t.open_orders()] == [b"b"]
    assert t.events == 4 and len(t.recent) == 4


@pytest.mark.parametrize(("raw", "typ", "field", "words"), [
    (b'{"on": "yes"}', KillSwitchBody, "on", "bool"),
    (b"{}", KillSwitchBody, "on", "missing"),
    (b'{"on": true, "x": 1}', KillSwitchBody, "x", "unknown field"),
    (b"{\"on\": tr", KillSwitchBody, "", "not valid JSON"),
    (b'{"symbol": 5}', CancelAllBody, "symbol", "str"),
])
def test_decode_body_when_bad_then_bad_request_names_field_and_reason(raw, typ, field, words):
    with pytest.raises(BadRequest) as exc:
        decode_body(raw, typ)
    assert exc.value.field == field and words in exc.value.reason


def test_decode_body_when_empty_then_defaults():
    assert decode_body(b"", CancelAllBody) == CancelAllBody()
