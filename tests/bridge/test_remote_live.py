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


def test_remote_examples_when_run_against_a_live_stack_then_they_see_the_book_and_trade_through_the_checks(
        tmp_path: Path, procs: list) -> None:
    server = NatsServer(tmp_path / "nats", user=USER, password=PASSWORD).start()
    bridge = {"enabled": True, "url": server.url, "user": USER, "password": PASSWORD, "intents": True,
              "commands": True, "remote_strategies": ["remote_demo"], "remote_dead_s": 2.0,
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
