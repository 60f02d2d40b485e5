"""The remote examples against a live stack and a real nats-server with authentication: the
top-of-book consumer, and a remote strategy trading through the pre-trade checks (an oversized
order denied, a good one on the exchange, cancelled once the strategy is killed and silent for
remote_dead_s), then the kill switch from a NATS operator."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from procs.bridge.server import NatsServer
from procs.core import messages as M
from procs.tools.stack import PIPELINE, Stack
from tests.support import spawn
from tests.support.execution_rig import rest_signed

pytestmark = pytest.mark.proc
USER, PASSWORD = "b25", "test-password"


class Lines:
    """A child's stdout, one JSON object per line, read on a thread; ``until`` finds a line in any
    order (an order event may be printed before the answer to the intent that caused it)."""

    def __init__(self, p: subprocess.Popen) -> None:
        self.p = p
        self.q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                continue

    def until(self, want: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for row in self.seen:
                if want(row):
                    self.seen.remove(row)
                    return row
            try:
                self.seen.append(self.q.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line for {what} within {timeout}s (rc={self.p.poll()}; "
                                     f"lines not taken: {self.seen})") from None


async def command(url: str, subject: str, body: dict) -> dict:
    nc = await nats.connect(url, user=USER, password=PASSWORD)
    try:
        return msgspec.json.decode((await nc.request(subject, msgspec.json.encode(body), timeout=5)).data)
    finally:
        await nc.close()


def _decode(data: bytes) -> dict[str, Any]:
    return msgspec.json.decode(data) if data[:1] == b"{" else msgspec.msgpack.decode(data)


async def amend_and_stop(url: str, inst: str, strategy: str, symbol: str,
                         at_venue: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A remote strategy's LIMIT order amended in place and a STOP_MARKET placed, both then
    cancelled, over NATS: the answers, the events, and ``at_venue()`` before the cancel."""
    nc = await nats.connect(url, user=USER, password=PASSWORD)
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    intent_subject = f"b25.{inst}.intent.{strategy}"
    last_id = [time.time_ns()]

    async def on_event(msg: Any) -> None:
        await events.put(_decode(msg.data))

    async def request(body: dict[str, Any]) -> dict[str, Any]:
        last_id[0] += 1
        reply = await nc.request(intent_subject, msgspec.json.encode({"intent_id": last_id[0], **body}), timeout=5)
        return _decode(reply.data)

    seen: dict[tuple[int, str], dict[str, Any]] = {}

    async def until(tag: int, kind: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while (tag, kind) not in seen:
            await nc.publish(intent_subject, msgspec.json.encode({"type": "heartbeat"}))
            try:
                e = await asyncio.wait_for(events.get(), timeout=max(0.01, min(1.0, deadline - time.monotonic())))
                seen[(e["client_tag"], e["kind"])] = e
            except TimeoutError:
                assert time.monotonic() < deadline, f"no {kind} for tag {tag}; seen {sorted(seen)}"
        return seen[(tag, kind)]

    try:
        await nc.subscribe(f"b25.{inst}.exec.{strategy}", cb=on_event)
        books = await nc.subscribe(f"b25.{inst}.md.book.{symbol}")
        book = _decode((await books.next_msg(timeout=30)).data)
        await books.unsubscribe()
        bid, scales = book["bids"][0][0], {"price_scale": book["price_scale"], "qty_scale": book["qty_scale"]}
        out: dict[str, Any] = {"bid": bid}
        out["limit_ack"] = await request({"type": "submit", "symbol": symbol, "side": "BUY", "price": bid - 100,
                                          "qty": 2, "client_tag": 1, **scales})
        out["accepted"] = await until(1, "accepted")
        out["modify_ack"] = await request({"type": "modify", "symbol": symbol, "client_tag": 1, "price": bid - 150,
                                           **scales})
        out["modified"] = await until(1, "modified")
        out["stop_ack"] = await request({"type": "submit", "symbol": symbol, "side": "SELL",
                                         "order_type": "STOP_MARKET", "trigger_price": bid - 5000, "qty": 2,
                                         "working_type": "MARK_PRICE", "client_tag": 2, **scales})
        out["stop_accepted"] = await until(2, "accepted")
        out["bad_trailing_ack"] = await request({"type": "submit", "symbol": symbol, "side": "SELL",
                                                 "order_type": "TRAILING_STOP_MARKET", "callback_bps": 15, "qty": 2,
                                                 "client_tag": 3, **scales})
        out["at_venue"] = await asyncio.to_thread(at_venue)
        out["cancel_all_ack"] = await request({"type": "cancel_all", "symbol": symbol})
        out["canceled"] = [await until(1, "canceled"), await until(2, "canceled")]
        return out
    finally:
        await nc.close()


def test_remote_examples_when_run_against_a_live_stack_then_they_see_the_book_and_trade_through_the_checks(
        tmp_path: Path, procs: list) -> None:
    server = NatsServer(tmp_path / "nats", user=USER, password=PASSWORD).start()
    bridge = {"enabled": True, "url": server.url, "user": USER, "password": PASSWORD, "intents": True,
              "commands": True, "remote_strategies": ["remote_demo", "remote_amend"], "remote_dead_s": 2.0,
              "exec_stream": {"max_bytes": 64 << 20}, "alerts_stream": {"max_bytes": 8 << 20}}
    auth = ["--url", server.url, "--user", USER, "--password", PASSWORD]
    try:
        with Stack(tmp_path, procs=(*PIPELINE, "bridge"), start_timeout=120,
                   overrides={"bridge": bridge, "strategy": {"strategies": []}}) as st:
            inst = st.instance
            top = spawn("scripts/remote_top_of_book.py", *auth, "--instance", inst, "--count", "3", "--json",
                        stdout=subprocess.PIPE, text=True)
            procs.append(top)
            out, _ = top.communicate(timeout=60)
            rows = [json.loads(line) for line in out.splitlines()]
            assert top.returncode == 0 and len(rows) == 3
            assert all(r["symbol"] in st.symbols and Decimal(r["bid"]) < Decimal(r["ask"]) for r in rows)

            def at_venue() -> dict[str, Any]:
                orders = {o.client_order_id: o.price for o in st.open_orders("BTCUSDT")}
                status, algos = rest_signed(st.rest_url, "GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"})
                assert status == 200, algos
                return {"orders": orders, "algos": {a["clientAlgoId"]: a for a in algos}}

            got = asyncio.run(amend_and_stop(server.url, inst, "remote_amend", "BTCUSDT", at_venue))
            bid = got["bid"]
            assert [got[k]["accepted"] for k in ("limit_ack", "modify_ack", "stop_ack")] == [True] * 3
            limit_cid = got["accepted"]["client_order_id"]
            assert got["modified"]["price"] == bid - 150 and got["modified"]["source"] == "remote"
            stop = got["stop_accepted"]
            assert stop["order_type"] == "STOP_MARKET" and stop["trigger_price"] == bid - 5000
            assert got["bad_trailing_ack"]["accepted"] is False and got["bad_trailing_ack"]["field"] == "callback_bps"
            venue = got["at_venue"]
            assert Decimal(venue["orders"][limit_cid]) * 100 == bid - 150  # amended in place at the venue
            algo = venue["algos"][stop["client_order_id"]]
            assert Decimal(algo["triggerPrice"]) * 100 == bid - 5000 and algo["workingType"] == "MARK_PRICE"
            assert [e["kind"] for e in got["canceled"]] == ["canceled", "canceled"]
            st.wait_for(lambda: not st.open_orders("BTCUSDT"), "the remote strategy's orders cancelled")

            remote = spawn("scripts/remote_strategy.py", *auth, "--instance", inst, "--strategy", "remote_demo",
                           "--symbol", "BTCUSDT", "--probe-qty", "100", "--qty", "2", "--offset-ticks", "100",
                           stdout=subprocess.PIPE, text=True)
            procs.append(remote)
            lines = Lines(remote)
            probe = lines.until(lambda r: r.get("of") == "probe", "the probe's intent_ack")
            assert probe["accepted"] and probe["type"] == "intent_ack"  # well formed: execution decides
            denied = lines.until(lambda r: r.get("kind") == "denied", "the probe denied by the pre-trade check")
            assert denied["client_tag"] == 1 and denied["reason"] == "max_order_qty" and denied["source"] == "remote"
            accepted = lines.until(lambda r: r.get("kind") == "accepted", "the order accepted by the exchange")
            assert accepted["client_tag"] == 2 and accepted["qty"] == 2
            cid = accepted["client_order_id"]
            assert [o.client_order_id for o in st.open_orders("BTCUSDT")] == [cid]

            killed_at = time.time()
            remote.send_signal(signal.SIGKILL)  # the remote host is gone: no cancel, no heartbeat
            remote.wait(10)
            st.wait_for(lambda: not st.open_orders("BTCUSDT"), "the dead remote strategy's order cancelled")
            # declared dead after the kill (and once before it came: not heard within remote_dead_s of
            # the bridge's start, which is how a bridge restart cancels the orders of those not back)
            dead = st.log_events("bridge", "remote_strategy_dead")
            assert dead[-1]["strategy"] == "remote_demo" and dead[-1]["ts"] >= killed_at
            assert st.counters("bridge")[0]["remote_dead"] == len(dead)

            reply = asyncio.run(command(server.url, f"b25.{inst}.cmd.kill_switch",
                                        {"type": "kill_switch", "on": True, "operator": "ann"}))
            assert reply == {"type": "command_reply", "v": 1, "ok": True, "sent": "SetKillSwitch", "to": "risk",
                             "error": "", "field": ""}
            st.wait_for(lambda: int(st.risk_state()["trading_state"]) == M.HALTED, "risk HALTED by the NATS operator")
            sent = st.log_events("bridge", "command_sent")
            assert sent and sent[-1]["operator"] == f"nats:{USER}/ann"
    finally:
        server.stop()
