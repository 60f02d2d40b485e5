"""The dead-man switch's request schedule, without a process: armed before a symbol's first
order, refreshed when due, disarmed only when a symbol has been without orders for a whole
refresh interval, so a market maker's cancel-and-replace costs one request per refresh, not two per quote."""

from __future__ import annotations

from collections import Counter as Tally

from procs.execution.deadman import DeadMan
from procs.venue.messages import REPLY_OK, Reply

MS = 1_000_000


class Gateway:
    """Answers every countdown request at once and records it."""

    dead_man_cost = (10, 0)

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def arm_dead_man(self, symbol: str, countdown_ms: int, cb) -> int:  # noqa: ANN001 (the Protocol's callback)
        self.sent.append((symbol, countdown_ms))
        cb(Reply(outcome=REPLY_OK))
        return len(self.sent)


class Counts:
    def __init__(self) -> None:
        self.values: Tally = Tally()

    def inc(self, key: object, n: int = 1) -> None:
        self.values[key] += n

    def set(self, key: object, value: int) -> None:
        self.values[key] = value


def make(refresh_s: float = 3.0) -> tuple[DeadMan, Gateway]:
    gw = Gateway()
    return DeadMan(gw, 10.0, refresh_s, Counts(), lambda _w, _o: True), gw  # type: ignore[arg-type]


def test_quotes_replaced_often_when_ticked_then_one_request_per_refresh() -> None:
    dm, gw = make(refresh_s=3.0)
    dm.ensure("BTCUSDT", now_ns=0)
    # 30 s of quotes replaced every 50 ms: the symbol is without orders between cancel and place
    for k in range(600):
        now = k * 50 * MS
        dm.tick({"BTCUSDT"} if k % 2 else set(), now_ns=now)
    arms = [c for s, c in gw.sent if c]
    assert gw.sent[0] == ("BTCUSDT", 10_000)
    assert ("BTCUSDT", 0) not in gw.sent  # never without orders for a whole refresh interval
    assert 9 <= len(arms) <= 11  # one per 3 s over 30 s, not two per quote (600)


def test_symbol_left_without_orders_when_its_refresh_falls_due_then_disarmed_once() -> None:
    dm, gw = make(refresh_s=3.0)
    dm.tick({"ETHUSDT"}, now_ns=0)
    assert gw.sent == [("ETHUSDT", 10_000)]
    dm.tick(set(), now_ns=1000 * MS)  # orders all closed 1 s after arming: still armed, no request
    assert gw.sent == [("ETHUSDT", 10_000)] and "ETHUSDT" in dm.armed
    dm.tick(set(), now_ns=2500 * MS)  # its refresh is due, but it had orders 2.5 s ago: neither
    assert len(gw.sent) == 1
    dm.tick(set(), now_ns=3000 * MS)  # a whole interval without orders: disarmed
    assert gw.sent[-1] == ("ETHUSDT", 0) and "ETHUSDT" not in dm.armed
    dm.tick(set(), now_ns=9000 * MS)
    assert len(gw.sent) == 2  # an idle symbol costs nothing more
    dm.ensure("ETHUSDT", now_ns=9500 * MS)  # a new order: armed again before it is written
    assert gw.sent[-1] == ("ETHUSDT", 10_000)


def test_clean_stop_when_armed_then_disarm_all_asks_at_once() -> None:
    dm, gw = make()
    dm.tick({"BTCUSDT", "ETHUSDT"}, now_ns=0)
    assert sorted(dm.disarm_all()) == ["BTCUSDT", "ETHUSDT"]
    assert sorted(gw.sent[-2:]) == [("BTCUSDT", 0), ("ETHUSDT", 0)] and dm.armed == {}
