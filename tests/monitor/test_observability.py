"""The Grafana dashboard and Prometheus config name only metrics the monitor exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from procs.market_data.publisher import Counter as MdCounter
from procs.monitor.collector import metric_name
from procs.monitor.ops import Counter as MonCounter

OBS = Path(__file__).resolve().parents[2] / "scripts" / "observability"
FIXED = {"b25_latency_seconds_bucket", "b25_latency_seconds_count", "b25_latency_seconds_sum",
         "b25_latency_quantile_seconds", "b25_process_up", "b25_process_heartbeat_age_seconds",
         "b25_process_state", "b25_process_uptime_seconds", "b25_ring_cursor", "b25_ring_full_waits_total",
         "b25_ring_producer_alive", "b25_ring_consumer_lag", "b25_ring_consumer_lost_total"}


def test_dashboard_when_parsed_then_every_metric_is_one_the_monitor_exports():
    exported = FIXED | {f"b25_{metric_name(c.name)}_total" for c in (*MdCounter, *MonCounter)}
    dash = json.loads((OBS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bb25_[a-z0-9_]+", e)}
    assert used and used <= exported, sorted(used - exported)
    assert "127.0.0.1:9725" in (OBS / "prometheus.yml").read_text()
