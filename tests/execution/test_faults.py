"""Faults under execution (issue 16), each against a real execution process and a real simulator:
the journal's disk fills up; the venue's clock steps; the venue is unreachable for 30 s (hung, and
cut off by a network partition while it runs on, so its dead-man countdown fires)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procs.core import messages as M
from procs.exchange_sim.observe import logged_orders
from procs.execution.journal import read_journal
from procs.tools.reliability import checks as C
from procs.venue.binance.exchange_info import instruments as load_exchange_info
from tests.support.execution_rig import Rig, counters_of, http, rest_signed, write_config
from tests.support.partition import Partition

pytestmark = pytest.mark.proc
MakeRig = Callable[..., Rig]
FAR = 200_000  # 2000.00 under the mid: rests (GTC) or expires at once (IOC), never fills


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (mounted as root) for the journal to fill."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"the disk-full test mounts a 1 MiB tmpfs, which needs root: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(disk: Path) -> Path:
    """Take every free block of ``disk``."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def until(cond: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


def deny_until_breaker_open(rig: Rig, price: int, t0: float) -> None:
    """Orders into an outage until execution denies one: it must be the breaker, within 25 s."""
    denied = None
    while denied is None and time.monotonic() - t0 < 25:
        tag = rig.intent(price=price)
        got = rig.wait_for(lambda e, t=tag: e["client_tag"] == t and e["kind"] in (M.ORDER_DENIED, M.ORDER_SENT),
                           timeout=10, what=f"tag {tag} sent or denied")[0]
        if got["kind"] == M.ORDER_DENIED:
            denied = got
        time.sleep(0.5)
    assert denied is not None and denied["reason"] == M.DENY_BREAKER_OPEN, denied


def assert_journal_agrees_with_venue(rig: Rig) -> None:
    """Nothing lost or doubled, and every order in the same state in the journal and at the venue."""
    journal = C.journal_orders(rig.journal())
    venue = C.venue_orders(logged_orders(rig.order_log()))
    lost, doubled = C.find_lost_and_doubled(journal, venue)
    instruments = load_exchange_info(http("GET", f"{rig.base}/fapi/v1/exchangeInfo"))
    assert (lost, doubled) == ([], [])
    assert C.find_state_mismatches(journal, venue, instruments, ["BTCUSDT", "ETHUSDT"]) == []


def answer(rig: Rig, tag: int, ioc: bool = True) -> dict:
    """The event that settles an order: an IOC's end (expired, denied, rejected, filled), a GTC's
    acceptance (or denial, rejection)."""
    final = {M.ORDER_DENIED, M.ORDER_REJECTED} | ({M.ORDER_EXPIRED, M.ORDER_FILLED} if ioc else {M.ORDER_ACCEPTED})
    return rig.wait_for(lambda e: e["client_tag"] == tag and e["kind"] in final, what=f"an answer to tag {tag}")[0]


def test_journal_disk_full_when_it_fills_then_no_new_order_goes_out_and_it_recovers_when_space_returns(
        make_rig: MakeRig, small_disk: Path) -> None:
    journal = small_disk / "exec.journal"
    rig = make_rig(journal=str(journal), journal_grow_mb=0.0625)  # a 64 KiB step: low after ~32 KiB
    log = rig.start()
    mid = rig.mid()
    resting = rig.intent(price=mid - FAR)
    assert answer(rig, resting, ioc=False)["kind"] == M.ORDER_ACCEPTED
    filler = fill(small_disk)
    denied = None
    for i in range(2000):  # orders go out until the journal's room is down to its reserve
        ev = answer(rig, rig.intent(price=mid - FAR - i, tif=M.IOC))
        if ev["kind"] == M.ORDER_DENIED:
            denied = ev
            break
        assert ev["kind"] == M.ORDER_EXPIRED, ev
    assert denied is not None and denied["reason"] == M.DENY_JOURNAL_FULL, denied
    assert log.wait("journal_full")["room"] > 0 and counters_of(rig.instance)["journal_low"] == 1
    rig.intent(M.CANCEL_ORDER, tag=resting)  # the orders already out are still managed, in the reserve
    rig.wait_kind(resting, M.ORDER_CANCELED)
    for _ in range(5):
        assert answer(rig, rig.intent(price=mid - FAR, tif=M.IOC))["reason"] == M.DENY_JOURNAL_FULL
    on_disk = read_journal(journal)[0]
    journaled = {r.cid for r in on_disk if r.kind == M.ORDER_SENT}
    at_venue = {e["clientOrderId"] for e in rig.order_log() if e["event"] == "NEW"}
    assert at_venue and at_venue <= journaled  # nothing went out that the journal does not hold
    cid = next(e["client_order_id"] for e in rig.events if e["client_tag"] == resting and e["client_order_id"])
    assert any(r.kind == M.ORDER_CANCELED and r.cid == cid for r in on_disk)
    filler.unlink()  # space again: new orders go out once the journal has grown
    log.wait("journal_room_back", timeout=10)
    assert answer(rig, rig.intent(price=mid - FAR, tif=M.IOC))["kind"] == M.ORDER_EXPIRED
    assert counters_of(rig.instance)["journal_low"] == 0
    assert rig.stop() == 0


def test_venue_clock_when_it_steps_then_requests_re_sync_and_no_order_is_doubled(make_rig: MakeRig) -> None:
    rig = make_rig()
    log = rig.start()
    mid = rig.mid()
    resting = rig.intent(price=mid - FAR)
    assert answer(rig, resting, ioc=False)["kind"] == M.ORDER_ACCEPTED
    tags = [resting]
    # the venue's clock 2 s behind ours: our timestamps are "ahead" (>= 1 s: -1021) and must re-sync;
    # 2 s forward again: inside the 5 s recvWindow, nothing to do; 6 s more: outside it, re-sync
    for step, resync in ((-2000, True), (2000, False), (6000, True)):
        http("POST", f"{rig.base}/sim/clock?step_ms={step}")
        before = len(log.events("venue_clock_synced"))
        for i in range(3):
            tag = rig.intent(price=mid - FAR - 10 * len(tags) - i)
            tags.append(tag)
            assert answer(rig, tag, ioc=False)["kind"] == M.ORDER_ACCEPTED  # accepted (once re-synced)
        assert (step, len(log.events("venue_clock_synced")) > before) == (step, resync)
    rig.intent(M.CANCEL_ORDER, tag=resting)  # a cancel of an order from before the steps goes too
    rig.wait_kind(resting, M.ORDER_CANCELED)
    offsets = [e["offset_ms"] for e in log.events("venue_clock_synced")]
    assert abs(offsets[0] + 2000) < 500 and abs(offsets[-1] - 6000) < 500  # in step with the venue
    journal = rig.journal()
    sent = [r for r in journal if r.kind == M.ORDER_SENT]
    assert sorted(r.client_tag for r in sent) == sorted(tags)  # one order per intent
    news = [e["clientOrderId"] for e in rig.order_log() if e["event"] == "NEW"]
    assert sorted(news) == sorted(r.cid for r in sent)  # each accepted once by the venue
    assert [r for r in journal if r.kind == M.ORDER_REJECTED] == []  # a clock refusal is not the order's end
    assert rig.stop() == 0


def test_venue_unreachable_for_30s_then_breaker_opens_and_every_order_is_reconciled_on_return(
        make_rig: MakeRig, procs: list) -> None:
    sim = next(p for p in procs if "procs.exchange_sim" in p.args)
    rig = make_rig(breaker_failures=3, breaker_cooldown_s=1.0)
    log = rig.start()
    mid = rig.mid()
    resting = rig.intent(price=mid - FAR)
    assert answer(rig, resting, ioc=False)["kind"] == M.ORDER_ACCEPTED
    sim.send_signal(signal.SIGSTOP)  # the venue hangs: connections stay up, nothing answers
    t0 = time.monotonic()
    try:
        in_flight = rig.intent(price=mid - FAR - 1)  # written to the wire just as the venue went away
        rig.intent(M.CANCEL_ORDER, tag=resting)
        deny_until_breaker_open(rig, mid - FAR - 2, t0)
        assert counters_of(rig.instance)["breaker_opens"] >= 1
        time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
    finally:
        sim.send_signal(signal.SIGCONT)
    rig.wait_kind(resting, M.ORDER_CANCELED, timeout=30)  # the cancel sent during the outage lands
    answer(rig, in_flight, ioc=False)  # the order written as it went away: accepted once (never resent blind)
    log.wait("open_orders_requeried", timeout=30)  # reconciled on return
    until(lambda: counters_of(rig.instance)["breaker_state"] == 0, "the breaker closed again")
    after = rig.intent(price=mid - FAR - 3)
    assert answer(rig, after, ioc=False)["kind"] == M.ORDER_ACCEPTED
    time.sleep(2.0)  # let the sent-during-outage orders settle at the venue and in the journal
    assert_journal_agrees_with_venue(rig)
    assert rig.stop() == 0


def test_venue_cut_off_for_30s_then_breaker_opens_dead_man_cancels_at_the_venue_and_reconcile_agrees(
        instance: str, procs: list, sim: tuple[int, int], tmp_path: Path) -> None:
    """A partition, not a hung venue: the venue runs on behind it, so the countdown execution
    armed fires there and cancels the resting order while execution cannot reach it; on return
    reconciliation learns of the cancel, and journal and venue agree order by order."""
    rest_port, ws_port = sim
    rest_link, ws_link = Partition(rest_port), Partition(ws_port)
    cfg = write_config(tmp_path, rest_link.port, ws_link.port, breaker_failures=3, breaker_cooldown_s=1.0,
                       dead_man_s=3.0, dead_man_refresh_s=1.0)
    rig = Rig(instance, procs, cfg, rest_port)  # the test itself talks to the venue directly

    def venue_open() -> set[str]:
        code, body = rest_signed(rig.base, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
        assert code == 200, body
        return {o["clientOrderId"] for o in body}

    try:
        log = rig.start()
        mid = rig.mid()
        resting = rig.intent(price=mid - FAR)
        cid = answer(rig, resting, ioc=False)["client_order_id"]
        log.wait("dead_man_armed", match=lambda r: r["symbol"] == "BTCUSDT")
        rest_link.cut()
        ws_link.cut()
        t0 = time.monotonic()
        try:
            deny_until_breaker_open(rig, mid - FAR - 2, t0)
            until(lambda: cid not in venue_open(), "the venue's countdown to cancel the resting order", timeout=15)
            assert time.monotonic() - t0 < 30  # fired inside the outage, not on return
            assert rig.kinds(resting)[-1] == M.ORDER_ACCEPTED  # execution cannot know yet
            time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
        finally:
            rest_link.restore()
            ws_link.restore()
        rig.wait_kind(resting, M.ORDER_CANCELED, timeout=30)  # reconciliation learns of the venue's cancel
        until(lambda: counters_of(rig.instance)["breaker_state"] == 0, "the breaker closed again")
        after = rig.intent(price=mid - FAR - 3)
        assert answer(rig, after, ioc=False)["kind"] == M.ORDER_ACCEPTED
        time.sleep(2.0)  # the orders sent into the partition settle at the venue and in the journal
        assert_journal_agrees_with_venue(rig)
        assert rig.stop() == 0
    finally:
        rig.close()
        rest_link.close()
        ws_link.close()
