"""The real process: ``python -m procs.strategy`` against rings this test produces and consumes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from procs.core import control
from procs.core import messages as M
from procs.core.registry import EXEC, MD_BOOK, MD_TRADE, ORDERS_STRATEGY, build_registry
from procs.core.status import read_status
from shm.inspect import clean
from tests.support import spawn
from tests.support.strategy_harness import BTC, DEPTH, EXCHANGE_INFO

pytestmark = pytest.mark.timeout(60)

TOML = """
[venue]
exchange_info = "{info}"

[deploy]
symbols = ["BTCUSDT", "ETHUSDT"]
depth = {depth}

[strategy]
state_file = "{state}"
timer_resolution_ms = 5

[[strategy.strategies]]
id = "echo"
class = "strategies.echo:Echo"
symbols = ["BTCUSDT"]
params = {{ offset_ticks = {offset} }}
"""


def write_config(path: Path, offset: int) -> None:
    path.write_text(TOML.format(depth=DEPTH, info=EXCHANGE_INFO, offset=offset, state=path.parent / "state.json"))


def wait_for(pred, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Market:
    """This test as market_data and execution."""

    def __init__(self, instance: str) -> None:
        self.reg = build_registry(DEPTH)
        self.book = self.reg.producer(instance, MD_BOOK)
        self.trade = self.reg.producer(instance, MD_TRADE)
        self.exec = self.reg.producer(instance, EXEC)
        self.orders = None
        self.instance = instance
        self.seq = 0

    def publish(self, bid: int, ask: int) -> None:
        self.seq += 1
        slot = self.book.try_claim()
        r = self.book.records
        for f, v in (("symbol_id", BTC), ("update_id", self.seq), ("ts_recv", time.monotonic_ns()),
                     ("n_bids", 1), ("n_asks", 1), ("flags", 0), ("seq", self.seq)):
            r[f][slot] = v
        r["bid_px"][slot, 0], r["bid_qty"][slot, 0], r["ask_px"][slot, 0], r["ask_qty"][slot, 0] = bid, 5, ask, 5
        r["ts_pub"][slot] = time.monotonic_ns()
        self.book.publish()

    def intents(self) -> list[dict]:
        if self.orders is None:
            self.orders = self.reg.consumer(self.instance, ORDERS_STRATEGY, "execution", timeout=10)
        b = self.orders.poll()
        out = [{n: int(x[n]) for n in ("kind", "price", "md_seq", "client_tag")} for x in b]
        self.orders.commit()
        return out

    def close(self) -> None:
        if self.orders is not None:
            self.orders.close()
        for p in (self.book, self.trade, self.exec):
            p.close()


def submit_with_price(m: Market, price: int) -> dict | None:
    m.publish(100000, 100010)
    time.sleep(0.005)
    return next((i for i in m.intents() if i["kind"] == M.SUBMIT_ORDER and i["price"] == price), None)


@pytest.mark.proc
def test_process_when_books_arrive_then_writes_intents_reloads_on_sighup_and_stops_cleanly(
        instance, procs, tmp_path):
    cfg = tmp_path / "b25.toml"
    write_config(cfg, offset=100)
    m = Market(instance)
    try:
        p = spawn("-m", "procs.strategy", "--config", str(cfg), "--instance", instance)
        procs.append(p)
        wait_for(lambda: (read_status(instance, "strategy") or {}).get("state") == "RUNNING", "RUNNING")
        first = wait_for(lambda: submit_with_price(m, 100000 - 100), "an intent from the first config")
        assert first["md_seq"] > 0
        write_config(cfg, offset=200)
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: submit_with_price(m, 100000 - 200), "an intent from the reloaded config")
        write_config(cfg, offset=300)
        control.send_command(instance, "strategy", control.Reload(operator="test"))
        wait_for(lambda: submit_with_price(m, 100000 - 300), "an intent after the Reload command")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
        st = read_status(instance, "strategy")
        assert st is not None and st["state"] == "STOPPED"
        assert '"echo"' in (tmp_path / "state.json").read_text()  # positions snapshot written at stop
    finally:
        m.close()
        removed, refused = clean(instance, force=True)
        assert not refused


@pytest.mark.proc
def test_process_when_param_is_misspelled_then_exits_2_naming_the_field(instance, procs, tmp_path):
    cfg = tmp_path / "b25.toml"
    write_config(cfg, offset=100)
    cfg.write_text(cfg.read_text().replace("offset_ticks", "offset_tick"))
    m = Market(instance)
    try:
        p = spawn("-m", "procs.strategy", "--config", str(cfg), "--instance", instance,
                  stderr=__import__("subprocess").PIPE)
        procs.append(p)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 2 and b"offset_tick" in err
    finally:
        m.close()
        clean(instance, force=True)
