"""The risk agent in-process on real shm: the test produces ``exec`` and ``md.book`` records,
sends control commands over the real queue and reads ``risk.state``, ``alerts.risk``, counters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import msgspec
import numpy as np
import pytest

from procs.core import control as C
from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.core.registry import EXEC, MD_BOOK, RISK_STATE, alerts_name, build_registry
from procs.risk import alerts as A
from procs.risk import state as S
from procs.risk.agent import RiskAgent
from procs.risk.config import HistoryConfig, RiskConfig, SymbolLimits
from procs.tools.stack import dumps_toml
from shm.counters import read_counters
from shm.inspect import clean
from shm.segment import Segment

NO_HISTORY = HistoryConfig(enabled=False)  # nothing written under run/ (tests/risk/test_history.py covers it)

BTC = Instrument(symbol="BTCUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")
ETH = Instrument(symbol="ETHUSDT", price_scale=2, qty_scale=3, tick_size="0.01", step_size="0.001")


class Rig:
    """Producers of exec and md.book, an execution inbox, the agent, and readers of its output."""

    def __init__(self, instance: str, cfg: RiskConfig) -> None:
        self.instance = instance
        self.reg = build_registry()
        self.exec_p = self.reg.producer(instance, EXEC)
        self.book_p = self.reg.producer(instance, MD_BOOK)
        self.exec_inbox = C.ControlInbox(instance, "execution")
        self.shutdowns = 0
        self.agent = RiskAgent(cfg, instance, [BTC, ETH], 20, on_shutdown=self._shutdown)
        self.agent.on_start()
        self.state_r = self.reg.reader(instance, RISK_STATE)
        self.alerts_c = self.reg.consumer(instance, alerts_name("risk"))
        self.alerts_c._next = 0  # observer from the first alert
        self.seq = 0

    def _shutdown(self) -> None:
        self.shutdowns += 1

    def fill(self, strategy: int, symbol: int, side: int, qty: int, px: int, fee_e8: int = 0,
             kind: int = M.ORDER_FILLED) -> None:
        self.seq += 1
        rec = np.zeros(1, M.OrderEvent)
        r = rec[0]
        r["event_seq"], r["kind"], r["strategy_id"], r["symbol_id"] = self.seq, kind, strategy, symbol
        r["side"], r["qty"], r["cum_qty"], r["last_qty"], r["last_px"] = side, qty, qty, qty, px
        r["fee_e8"], r["ts_recv"] = fee_e8, 1
        slot = self.exec_p.try_claim()
        assert slot >= 0
        self.exec_p.records[slot] = r
        self.exec_p.publish()

    def book(self, symbol: int, bid: int, ask: int, flags: int = 0) -> None:
        rec = np.zeros(1, self.book_p.dtype)
        r = rec[0]
        r["symbol_id"], r["flags"], r["n_bids"], r["n_asks"] = symbol, flags, int(bid > 0), int(ask > 0)
        r["bid_px"][0], r["ask_px"][0], r["bid_qty"][0], r["ask_qty"][0] = bid, ask, 1000, 1000
        slot = self.book_p.try_claim()
        self.book_p.records[slot] = r
        self.book_p.publish()

    def state(self) -> np.void:
        rec, _ = self.state_r.read()
        return rec[0]

    def work_until(self, cond: Callable[[], bool], cycles: int = 2000) -> None:
        for _ in range(cycles):
            self.agent.do_work()
            if cond():
                return
            self.agent.waiter.park(0.002)  # the command poll is rate-limited to every 5 ms
        raise AssertionError("condition not reached")

    def alerts(self) -> list[tuple[int, int, str]]:
        b = self.alerts_c.poll()
        out = [(int(a["level"]), int(a["code"]), a["text"].decode()) for a in b]
        self.alerts_c.commit()
        return out

    def close(self) -> None:
        self.agent.on_close()
        self.state_r.close()
        self.alerts_c.close()
        self.exec_p.close(unlink=True)
        self.book_p.close(unlink=True)
        self.exec_inbox.close(unlink=True)
        clean(self.instance, force=True)


@pytest.fixture
def rig_factory(instance: str) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(**cfg: object) -> Rig:
        cfg.setdefault("reconcile", False)
        cfg.setdefault("holds_file", "-")  # nothing kept under run/
        cfg.setdefault("history", NO_HISTORY)
        rigs.append(Rig(instance, RiskConfig(**cfg)))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


def test_agent_when_fills_and_books_arrive_then_risk_state_has_positions_marks_equity(rig_factory) -> None:
    rig = rig_factory(capital="1000", default=SymbolLimits(max_position="1", price_band_bps=100))
    s = rig.state()
    assert s["trading_state"] == M.ACTIVE and s["max_position"][0] == 1000 and s["price_band_bps"][1] == 100
    rig.fill(1, 0, M.BUY, 500, 10_000_00, fee_e8=1_000_000)  # 0.5 BTC @ 10000, fee 0.01
    rig.fill(-1, 1, M.SELL, 2000, 2_000_00, kind=M.ORDER_PARTIALLY_FILLED)  # manual: 2 ETH short @ 2000
    rig.fill(2, 0, M.SELL, 200, 10_010_00, kind=M.ORDER_ACCEPTED)  # not a fill: ignored
    rig.book(0, 10_019_99, 10_020_01)
    rig.book(1, 1_990_00, 1_990_02)
    rig.book(1, 1_999_00, 1_999_02, flags=M.BOOK_RESYNCING)  # resyncing: mark kept
    rig.work_until(lambda: rig.state()["mark"][1] != 0)
    s = rig.state()
    assert list(s["position"][:2]) == [500, -2000] and list(s["mark"][:2]) == [10_020_00, 1_990_01]
    # equity = 1000 + 0.5*(10020-10000) - 0.01 + 2*(2000-1990.01) = 1029.97
    assert s["equity_e8"] == 1029_97 * 10**6
    assert rig.agent.engine.ledger.position(1, -1).pos == -2000
    assert rig.agent.exec_c.position == rig.exec_p.next_sequence == 3  # drained: execution never waits on risk
    rig.agent.refresh_counters()
    c, h = read_counters(Segment.attach(rig.instance, "counters.risk", None, None, timeout=1))
    assert c["fills"] == 2 and c["exec_events"] == 3 and c["trading_state"] == M.ACTIVE
    assert int(h["fill_to_state"].sum()) == 2


def test_agent_when_kill_switch_command_then_halted_in_risk_state_and_cancel_all_sent(rig_factory) -> None:
    rig = rig_factory()
    C.send_command(rig.instance, "risk", C.SetKillSwitch(on=True, operator=""))
    rig.work_until(lambda: rig.state()["trading_state"] == M.HALTED)
    assert rig.state()["halt_reason"] == S.REASON_KILL_SWITCH
    cmds = rig.exec_inbox.poll()
    assert len(cmds) == 1 and isinstance(cmds[0], C.CancelAll) and cmds[0].operator == "risk"
    C.send_command(rig.instance, "risk", C.SetKillSwitch(on=False))
    rig.work_until(lambda: rig.agent.engine.refused == 1)
    assert rig.state()["trading_state"] == M.HALTED
    C.send_command(rig.instance, "risk", C.SetKillSwitch(on=False, operator="alice"))
    rig.work_until(lambda: rig.state()["trading_state"] == M.ACTIVE)
    codes = [a[1] for a in rig.alerts()]
    assert codes.index(A.KILL_SWITCH_ON) < codes.index(A.COMMAND_REFUSED) < codes.index(A.KILL_SWITCH_OFF)
    assert A.CANCEL_ALL_SENT in codes


def test_agent_when_kill_switch_then_risk_state_is_halted_before_cancel_all_is_sent(rig_factory,
                                                                                   monkeypatch) -> None:
    # execution runs the CancelAll as soon as it reads it: risk.state must already say HALTED,
    # or the strategy's next intent passes the old ACTIVE and its order outlives the cancel pass
    rig = rig_factory()
    seen: list[int] = []
    real = C.send_command

    def send(instance: str, proc: str, cmd: object, **kw: object) -> None:
        if isinstance(cmd, C.CancelAll):
            seen.append(int(rig.state()["trading_state"]))
        real(instance, proc, cmd, **kw)

    monkeypatch.setattr("procs.risk.agent.C.send_command", send)
    real(rig.instance, "risk", C.SetKillSwitch(on=True, operator="test"))
    rig.work_until(lambda: bool(seen))
    assert seen == [M.HALTED]


def test_agent_when_loss_breached_then_reducing_published_on_the_same_cycle(rig_factory) -> None:
    rig = rig_factory(max_daily_loss="100", on_loss_breach="REDUCING")
    rig.fill(1, 0, M.BUY, 1000, 10_000_00)
    rig.book(0, 9_899_00, 9_901_00)  # mid 9900: -100
    rig.work_until(lambda: rig.state()["trading_state"] == M.REDUCING)
    assert rig.state()["halt_reason"] == S.REASON_DAILY_LOSS
    levels = {a[1]: a[0] for a in rig.alerts()}
    assert levels[A.DAILY_LOSS_BREACHED] == M.ALERT_CRITICAL


def test_agent_when_reload_command_then_new_limits_published(rig_factory, tmp_path) -> None:
    rig = rig_factory()
    cfg = tmp_path / "b25.toml"
    running = msgspec.to_builtins(rig.agent.cfg)  # the file the agent runs, as TOML

    def write(**risk: object) -> None:
        cfg.write_text(dumps_toml({"risk": {**running, **risk}}))

    write(max_open_orders=9, default={**running["default"], "max_order_qty": "0.25"})
    rig.agent.config_path = cfg
    C.send_command(rig.instance, "risk", C.Reload())
    rig.work_until(lambda: rig.state()["max_open_orders"] == 9)
    assert rig.state()["max_order_qty"][0] == 250
    cfg.write_text('[risk]\nmax_open_order = 9\n')
    C.send_command(rig.instance, "risk", C.Reload())
    rig.work_until(lambda: any(a[1] == A.RELOAD_FAILED for a in rig.alerts()))  # alerts() reads each once
    assert rig.state()["max_open_orders"] == 9
    write(max_open_orders=7, publish_interval_ms=50)  # restart-only: nothing of it is applied
    C.send_command(rig.instance, "risk", C.Reload())
    refused: list[str] = []
    rig.work_until(lambda: refused.extend(t for _l, c, t in rig.alerts() if c == A.RELOAD_FAILED) or refused)
    assert "publish_interval_ms" in refused[0]
    assert rig.state()["max_open_orders"] == 9 and rig.agent.cfg.publish_interval_ms == running["publish_interval_ms"]


def test_agent_when_shutdown_command_then_asks_to_stop(rig_factory) -> None:
    rig = rig_factory()
    C.send_command(rig.instance, "risk", C.Shutdown(operator="ops"))
    rig.work_until(lambda: rig.shutdowns == 1)


def _publish(producer, rec) -> None:
    slot = producer.try_claim()
    producer.records[slot] = rec
    producer.publish()


def _stop(agent, instance: str, *producers) -> None:
    """Close the agent, then the rings these tests created themselves, then anything left."""
    agent.on_close()
    for p in producers:
        if p is not None:
            p.close(unlink=True)
    clean(instance, force=True)


def test_agent_when_started_before_execution_then_seeded_once_from_the_exchange(instance: str) -> None:
    # The exchange already holds 0.004 BTC when risk starts, before execution (no exec ring).
    # Execution then fills 0.002 more: the exchange says 0.006 before the fill is on the ring.
    # Seeding when the ring appeared counted that fill twice (0.008); the snapshot taken
    # while the ring did not exist counts it once.
    from procs.venue.messages import AccountSnapshot

    exchange = {"BTCUSDT": "0.004"}

    class Exchange:  # the venue's account, as the adapter reports it
        def snapshot(self) -> AccountSnapshot:
            return AccountSnapshot(positions=dict(exchange), entry_prices={"BTCUSDT": "10000"})

        def open_orders(self, symbol: str = "") -> list:
            return []

        def margin_tiers(self, symbols: list[str]) -> dict:
            return {}

    reg = build_registry()
    book_p = reg.producer(instance, MD_BOOK)
    agent = RiskAgent(RiskConfig(reconcile=True, reconcile_interval_s=3600, holds_file="-", history=NO_HISTORY), instance,
                      [BTC, ETH], 20, account=Exchange(), on_shutdown=lambda: None)
    exec_p = None
    try:
        agent.on_start()
        assert agent.exec_c is None and agent.engine.ledger.total[0].pos == 4
        exchange["BTCUSDT"] = "0.006"  # filled at the exchange, not yet reported by execution
        exec_p = reg.producer(instance, EXEC)
        for _ in range(300):
            agent.do_work()
            if agent.exec_c is not None:
                break
            agent.waiter.park(0.01)
        assert agent.exec_c is not None
        rec = np.zeros(1, M.OrderEvent)
        r = rec[0]
        r["event_seq"], r["kind"], r["strategy_id"], r["symbol_id"], r["side"] = 1, M.ORDER_FILLED, 1, 0, M.BUY
        r["qty"], r["cum_qty"], r["last_qty"], r["last_px"], r["ts_recv"] = 2, 2, 2, 10_000_00, 1
        _publish(exec_p, r)
        agent.drain_exec()
        assert agent.engine.ledger.total[0].pos == 6
    finally:
        _stop(agent, instance, book_p, exec_p)


def test_agent_when_exec_ring_appears_while_books_move_every_cycle_then_attached(instance: str) -> None:
    # a moving book makes risk.state dirty on every cycle; the attach retry must still run
    reg = build_registry()
    book_p = reg.producer(instance, MD_BOOK)
    agent = RiskAgent(RiskConfig(reconcile=False, holds_file="-", history=NO_HISTORY), instance, [BTC, ETH], 20, on_shutdown=lambda: None)
    exec_p = None
    rec = np.zeros(1, book_p.dtype)
    r = rec[0]
    r["symbol_id"], r["n_bids"], r["n_asks"], r["bid_qty"][0], r["ask_qty"][0] = 0, 1, 1, 1000, 1000
    try:
        agent.on_start()
        assert agent.exec_c is None
        exec_p = reg.producer(instance, EXEC)
        deadline = time.monotonic() + 3.0
        px = 10_000_00
        while agent.exec_c is None and time.monotonic() < deadline:
            px += 1
            r["bid_px"][0], r["ask_px"][0] = px, px + 2
            _publish(book_p, r)
            agent.do_work()
            time.sleep(0.002)
        assert agent.exec_c is not None
    finally:
        _stop(agent, instance, book_p, exec_p)
