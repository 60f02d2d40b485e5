"""The bridge against a real nats-server and a live stack: market data and order events reach a
subscriber; a nats-server SIGKILLed and started again costs market data (counted) but no order
event: JetStream's exec stream, replayed with `b25 nats replay`, holds every event of the exec
ring once, in order."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import nats
import pytest

from procs.bridge import schema as S
from procs.bridge.cli import replay, tail
from procs.bridge.config import BridgeConfig
from procs.bridge.server import NatsServer
from procs.core.registry import EXEC, build_registry
from procs.tools.stack import PIPELINE, Stack

pytestmark = pytest.mark.proc


async def first_message(url: str, subject: str, timeout: float = 20.0) -> tuple[str, S.Message]:
    nc = await nats.connect(url)
    try:
        sub = await nc.subscribe(subject)
        msg = await sub.next_msg(timeout=timeout)
        return msg.subject, S.decode_any(msg.data)
    finally:
        await nc.close()


def replayed(url: str, instance: str, stream: str) -> list[dict]:
    out = io.StringIO()
    assert asyncio.run(replay(BridgeConfig(url=url), instance, stream, None, None, "", True, out)) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_bridge_when_nats_is_killed_and_back_then_reconnects_and_the_exec_stream_lost_nothing(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats").start()
    bridge = {"enabled": True, "url": server.url, "book_max_hz": 20.0, "reconnect_min_s": 0.05, "md_stream": True,
              "md_stream_limits": {"max_bytes": 64 << 20, "max_age_s": 600.0},
              "reconnect_max_s": 0.5, "exec_stream": {"max_bytes": 64 << 20}, "alerts_stream": {"max_bytes": 8 << 20}}
    try:
        with Stack(tmp_path, procs=(*PIPELINE, "bridge"), overrides={"bridge": bridge}, start_timeout=120) as st:
            inst = st.instance
            printed = io.StringIO()  # b25 nats tail md.book.* --json --count 1
            assert asyncio.run(tail(BridgeConfig(url=server.url), f"b25.{inst}.md.book.*", True, 1, 30, printed)) == 0
            book = json.loads(printed.getvalue())
            assert book["type"] == "book" and book["subject"] == f"b25.{inst}.md.book.{book['symbol']}"
            assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
            _, event = asyncio.run(first_message(server.url, f"b25.{inst}.exec.mm_btc"))
            assert isinstance(event, S.OrderEvent) and event.strategy == "mm_btc" and event.symbol == "BTCUSDT"
            st.wait_for(lambda: st.counters("bridge")[0]["acked"] > 0, "JetStream acknowledging exec events")

            server.kill()  # an outage: the market maker keeps quoting, execution keeps publishing
            st.wait_for(lambda: st.counters("bridge")[0]["connected"] == 0, "the bridge seeing NATS down")
            exec_ring = build_registry().consumer(inst, EXEC, None, timeout=5)
            head_in_outage = exec_ring.position
            st.wait_for(lambda: exec_ring.available() > 0 or exec_ring.position + exec_ring.available() > head_in_outage,
                        "order events published while NATS is down", timeout=30)
            st.wait_for(lambda: st.counters("bridge")[0]["dropped_outage"] > 0, "market data dropped in the outage")
            held = st.counters("bridge")[0]["buffered"]
            server.start()  # same port, same store
            st.wait_for(lambda: st.counters("bridge")[0]["connected"] == 1, "the bridge reconnecting", timeout=30)
            st.wait_for(lambda: st.counters("bridge")[0]["buffered"] == 0, "held exec events acknowledged")
            ring_head = exec_ring.position + exec_ring.available()
            exec_ring.close()
            c = st.counters("bridge")[0]
            assert c["connects"] >= 2 and c["disconnects"] >= 1 and c["dropped_durable"] == 0 and c["lapped"] == 0
            assert held > 0 or c["resent"] > 0  # something waited out the outage

            def stored() -> list[dict]:
                rows = replayed(server.url, inst, "exec")
                return rows if rows and max(r["seq"] for r in rows) >= ring_head - 1 else []

            rows = st.wait_for(stored, "the exec stream holding every event up to the ring's head")
            rings = {r["ring"] for r in rows}
            seqs = [r["seq"] for r in rows]
            assert len(rings) == 1 and seqs == list(range(len(seqs)))  # each once, in order, no gap
            assert all(r["type"] == "order_event" and r["subject"] == f"b25.{inst}.exec.{r['strategy']}" for r in rows)
            md = replayed(server.url, inst, "md")  # the optional md stream, for a remote recorder
            assert {r["type"] for r in md} == {"book", "trade"} and all(r["subject"].startswith(f"b25.{inst}.md.")
                                                                      for r in md)
            alerts = replayed(server.url, inst, "alerts")
            assert any(a["proc"] == "bridge" and "NATS connected" in a["text"] for a in alerts)
    finally:
        server.stop()
