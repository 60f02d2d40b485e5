"""The bridge's state, lag and drops where an operator looks: the monitor's /metrics text and the
TUI's system tab (both read the bridge's shm counters; no process here)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from procs.bridge.counters import Counter, Hist
from procs.core.status import State, StatusWriter
from procs.monitor.collector import ShmCollector
from procs.monitor.shmview import InstanceView
from shm.counters import Counters
from tui.source import ShmSource


def test_bridge_counters_when_nats_is_down_then_metrics_and_the_system_tab_say_so(instance: str) -> None:
    counters = Counters.create(instance, "bridge", Counter, Hist)
    source = ShmSource(instance, ["BTCUSDT"], {})
    view = InstanceView(instance)
    try:
        assert "bridge" not in [p["name"] for p in source.processes()]  # off: not listed as DOWN
        status = StatusWriter(instance, "bridge", -1, "test")
        status.set_state(State.RUNNING)
        counters.set(Counter.CONNECTED, 0)
        counters.set(Counter.LAG_US, 2_500_000)
        counters.set(Counter.BUFFERED, 42)
        counters.inc(Counter.DROPPED_OUTAGE, 7)
        counters.inc(Counter.DROPPED_SLOW, 1)
        source.invalidate()
        row = next(p for p in source.processes() if p["name"] == "bridge")
        assert row["why"] == "NATS DOWN, lag 2.5s, held 42, dropped md 8 exec/alerts 0, lapped 0"
        reg = CollectorRegistry()
        reg.register(ShmCollector(view, 2.0))
        text = generate_latest(reg).decode()
        for line in ('b25_connected_total{proc="bridge"} 0.0', 'b25_lag_us_total{proc="bridge"} 2.5e+06',
                     'b25_dropped_outage_total{proc="bridge"} 7.0', 'b25_buffered_total{proc="bridge"} 42.0'):
            assert line in text
        status.close(unlink=True)
    finally:
        view.close()
        source.close()
        counters.close(unlink=True)
