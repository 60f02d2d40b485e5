"""Remote intents and NATS commands, checked and written to real rings and control queues (no
process, no NATS): what execution would read, what is refused and why, dead strategies."""

from __future__ import annotations

import msgspec
import pytest

from procs.bridge import schema as S
from procs.bridge.config import BridgeConfig
from procs.bridge.counters import Counter, Hist
from procs.bridge.inbound import Inbound
from procs.core import control as C
from procs.core import messages as M
from procs.core.registry import ORDERS_REMOTE, build_registry
from procs.strategy.config import strategy_number
from shm.counters import Counters

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
SCALES = [(2, 3), (2, 3)]


class Clock:
    t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world(instance: str):
    reg = build_registry()
    producer = reg.producer(instance, ORDERS_REMOTE)
    execution = reg.consumer(instance, ORDERS_REMOTE, "execution", timeout=1)
    counters = Counters.create(instance, "bridge", Counter, Hist)
    clock = Clock()
    cfg = BridgeConfig(intents=True, commands=True, user="b25", remote_strategies=["rmm", "rx"], remote_dead_s=5.0)
    inbound = Inbound(cfg, instance, SYMBOLS, SCALES, producer, counters, now=clock)
    yield inbound, execution, counters, clock
    execution.close()
    producer.close(unlink=True)
    counters.close(unlink=True)


def submit(intent_id: int, **kw) -> bytes:
    fields = {"symbol": "BTCUSDT", "side": "BUY", "price": 5999900, "qty": 2, "price_scale": 2, "qty_scale": 3,
              "client_tag": 11} | kw
    return msgspec.msgpack.encode(S.Submit(intent_id=intent_id, **fields))


def test_intent_when_well_formed_then_execution_reads_it_from_orders_remote(world) -> None:
    inbound, execution, counters, _ = world
    ack = inbound.on_intent(f"b25.{inbound.instance}.intent.rmm", submit(7, tif="POST_ONLY", reduce_only=True))
    assert ack == S.IntentAck(intent_id=7, accepted=True)
    row = execution.poll_one()
    assert row is not None
    (intent_id, kind, source, strategy, sid, side, otype, tif, price, qty, reduce_only, tag) = row[:12]
    assert (intent_id, kind, source, strategy, sid, side, otype, tif, price, qty, reduce_only, tag) == (
        7, M.SUBMIT_ORDER, M.SOURCE_REMOTE, strategy_number("rmm"), 0, M.BUY, M.LIMIT, M.POST_ONLY, 5999900, 2, 1, 11)
    cancel = inbound.on_intent(f"b25.{inbound.instance}.intent.rmm", msgspec.json.encode(
        S.Cancel(intent_id=8, symbol="BTCUSDT", client_tag=11)))
    assert cancel is not None and cancel.accepted
    assert execution.poll_one()[1:5] == (M.CANCEL_ORDER, M.SOURCE_REMOTE, strategy_number("rmm"), 0)
    assert counters.get(Counter.INTENTS) == 2


def test_intent_when_conditional_or_amend_then_written_with_trigger_callback_and_new_terms(world) -> None:
    inbound, execution, counters, _ = world
    subject = f"b25.{inbound.instance}.intent.rmm"
    stop = submit(20, side="SELL", order_type="STOP_MARKET", price=0, trigger_price=5900000, reduce_only=True,
                  working_type="MARK_PRICE")
    trailing = submit(21, side="SELL", order_type="TRAILING_STOP_MARKET", price=0, callback_bps=50)
    modify = msgspec.msgpack.encode(S.Modify(intent_id=22, symbol="ETHUSDT", client_tag=11, qty=5, price_scale=2,
                                             qty_scale=3))
    assert [inbound.on_intent(subject, m).accepted for m in (stop, trailing, modify)] == [True] * 3
    names = ("kind", "symbol_id", "side", "order_type", "tif", "price", "qty", "reduce_only", "client_tag", "flags",
             "trigger_price", "callback_bps")
    rows = [dict(zip(M.OrderIntent.names, execution.poll_one(), strict=False)) for _ in range(3)]
    assert [tuple(r[n] for n in names) for r in rows] == [
        (M.SUBMIT_ORDER, 0, M.SELL, M.STOP_MARKET, M.GTC, 0, 2, 1, 11, M.INTENT_ON_MARK, 5900000, 0),
        (M.SUBMIT_ORDER, 0, M.SELL, M.TRAILING_STOP_MARKET, M.GTC, 0, 2, 0, 11, 0, 0, 50),
        (M.MODIFY_ORDER, 1, 0, M.LIMIT, 0, 0, 5, 0, 11, 0, 0, 0),  # price 0: kept
    ]
    assert counters.get(Counter.INTENTS) == 3


def modify(intent_id: int, **kw) -> bytes:
    fields = {"symbol": "BTCUSDT", "client_tag": 11, "price": 5999800, "price_scale": 2, "qty_scale": 3} | kw
    return msgspec.msgpack.encode(S.Modify(intent_id=intent_id, **fields))


@pytest.mark.parametrize(("subject_strategy", "payload", "error", "field"), [
    ("rmm", submit(1, order_type="STOP_MARKET"), "STOP_MARKET order has price 0", "price"),
    ("rmm", submit(1, order_type="STOP_MARKET", price=0), "needs trigger_price > 0", "trigger_price"),
    ("rmm", submit(1, order_type="TAKE_PROFIT_MARKET", price=0, trigger_price=-5), "needs trigger_price > 0",
     "trigger_price"),
    ("rmm", submit(1, order_type="TRAILING_STOP_MARKET", price=0, callback_bps=15), "callback_bps must be 10..1000",
     "callback_bps"),
    ("rmm", submit(1, order_type="TRAILING_STOP_MARKET", price=0, callback_bps=1010), "callback_bps must be",
     "callback_bps"),
    ("rmm", submit(1, order_type="STOP_MARKET", price=0, trigger_price=1, callback_bps=50),
     "callback_bps is for TRAILING_STOP_MARKET", "callback_bps"),
    ("rmm", submit(1, order_type="STOP_MARKET", price=0, trigger_price=1, tif="IOC"), "conditional order is GTC",
     "tif"),
    ("rmm", submit(1, trigger_price=5), "trigger_price is for the conditional order types", "trigger_price"),
    ("rmm", submit(1, working_type="MARK_PRICE"), "working_type is for the conditional", "working_type"),
    ("rmm", modify(1, price=0), "an amend needs a price and/or qty", "qty"),
    ("rmm", modify(1, price=-1), "an amend needs a price and/or qty", "price"),
    ("rmm", modify(1, qty=-2), "an amend needs a price and/or qty", "qty"),
    ("rmm", modify(1, qty_scale=8), "scales differ", "price_scale"),
    ("rmm", modify(1, symbol="DOGEUSDT"), "unknown symbol", "symbol"),

    ("intruder", submit(1), "may not send intents", "subject"),
    ("rmm", submit(1, symbol="DOGEUSDT"), "unknown symbol", "symbol"),
    ("rmm", submit(1, price_scale=1), "scales differ", "price_scale"),
    ("rmm", submit(1, qty=0), "qty must be > 0", "qty"),
    ("rmm", submit(1, order_type="MARKET"), "MARKET order has price 0", "price"),
    ("rmm", b'{"type":"submit","intent_id":1,"symbol":"BTCUSDT","side":"BUY","qty":1}', "price_scale", "price_scale"),
    ("rmm", b"\xc1", "not a msgpack or JSON message", ""),
])
def test_intent_when_malformed_then_refused_naming_the_field_and_nothing_written(world, subject_strategy: str,
                                                                                payload: bytes, error: str,
                                                                                field: str) -> None:
    inbound, execution, counters, _ = world
    ack = inbound.on_intent(f"b25.{inbound.instance}.intent.{subject_strategy}", payload)
    assert ack is not None and not ack.accepted and error in ack.error and ack.field == field
    assert execution.poll_one() is None and counters.get(Counter.INTENTS_REFUSED) == 1


def test_intent_when_sent_twice_or_out_of_order_then_written_once(world) -> None:
    inbound, execution, counters, _ = world
    subject = f"b25.{inbound.instance}.intent.rmm"
    assert inbound.on_intent(subject, submit(10)).accepted
    for again in (10, 9):
        ack = inbound.on_intent(subject, submit(again))
        assert ack is not None and ack.duplicate and not ack.accepted
    assert inbound.on_intent(subject, submit(11)).accepted
    assert [execution.poll_one()[0] for _ in range(2)] == [10, 11] and execution.poll_one() is None
    assert counters.get(Counter.INTENTS_DUPLICATE) == 2


def test_remote_strategy_when_silent_for_remote_dead_s_then_its_orders_are_cancelled_once(world) -> None:
    inbound, execution, counters, clock = world
    subject = f"b25.{inbound.instance}.intent."
    clock.t += 3
    assert inbound.on_intent(subject + "rmm", msgspec.msgpack.encode(S.Heartbeat())) is None
    clock.t += 3  # rx silent 6 s since the bridge started, rmm 3 s since its heartbeat
    assert inbound.check_dead() == ["rx"]
    row = execution.poll_one()
    assert row[1:5] == (M.CANCEL_ALL, M.SOURCE_REMOTE, strategy_number("rx"), -1)
    assert inbound.check_dead() == [] and execution.poll_one() is None  # once
    clock.t += 3
    assert inbound.check_dead() == ["rmm"]
    assert counters.get(Counter.REMOTE_DEAD) == 2 and counters.get(Counter.REMOTE_ALIVE) == 0
    inbound.on_intent(subject + "rx", msgspec.msgpack.encode(S.Heartbeat()))  # back
    assert "rx" not in inbound.dead


def test_command_when_sent_then_the_risk_process_gets_it_with_the_operator_recorded(world) -> None:
    inbound, _, counters, _ = world
    inbox = C.ControlInbox(inbound.instance, "risk")
    try:
        reply = inbound.on_command(f"b25.{inbound.instance}.cmd.kill_switch",
                                   msgspec.json.encode(S.KillSwitch(on=True, operator="ann")))
        assert reply == S.CommandReply(ok=True, sent="SetKillSwitch", to="risk")
        assert inbox.poll() == [C.SetKillSwitch(on=True, operator="nats:b25/ann")]
        bad = inbound.on_command(f"b25.{inbound.instance}.cmd.kill_switch",
                                 msgspec.json.encode(S.TradingState(state="HALTED", operator="ann")))
        assert not bad.ok and bad.field == "type"
        nobody = inbound.on_command(f"b25.{inbound.instance}.cmd.kill_switch",
                                    msgspec.json.encode(S.KillSwitch(on=False, operator=" ")))
        assert not nobody.ok and nobody.field == "operator"
        down = inbound.on_command(f"b25.{inbound.instance}.cmd.cancel_all",
                                  msgspec.json.encode(S.CancelAllOrders(operator="ann")))
        assert not down.ok and "no control queue" in down.error  # execution is not running
        assert inbox.poll() == [] and counters.get(Counter.COMMANDS_REFUSED) == 3
    finally:
        inbox.close()
