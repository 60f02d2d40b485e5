"""The Grafana dashboard names only series a running monitor's /metrics exports, and has a
panel for every latency stage the processes record."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from procs.core.services import PIPELINE
from procs.tools.stack import Stack

OBS = Path(__file__).resolve().parents[2] / "scripts" / "observability"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_series(text: str) -> tuple[set[str], set[str]]:
    """(every series name a /metrics text exports, the latency stages it has histograms for)."""
    names, stages = set(), set()
    for fam in text_string_to_metric_families(text):
        names |= {fam.name + s for s in SUFFIXES.get(fam.type, ("",))}
        names |= {s.name for s in fam.samples}
        if fam.name == "b25_latency_seconds":
            stages |= {s.labels["stage"] for s in fam.samples}
    return names, stages


@pytest.mark.proc
def test_dashboard_when_checked_against_a_running_monitor_then_every_expression_names_an_exported_series(
        tmp_path: Path, instance: str):
    dash = json.loads((OBS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    strategy = {"id": "echo", "class": "strategies.echo:Echo", "symbols": ["BTCUSDT"]}
    with Stack(tmp_path, procs=(*PIPELINE, "monitor", "notifier"), instance=instance,
               overrides={"strategy": {"strategies": []}, "alerts": {"enabled": True}}, strategies=[strategy]) as s:
        url = f"http://127.0.0.1:{s.monitor_port}/metrics"

        def metrics() -> tuple[set[str], set[str]]:
            with urllib.request.urlopen(url, timeout=5) as r:
                return exported_series(r.read().decode())

        # every process has recorded into each of its histograms once orders went out and filled
        s.wait_for(lambda: {"tick_to_wire", "fill_to_state", "book_to_intent"} <= metrics()[1],
                   "latency samples of the order path", 60)
        names, stages = metrics()
    used = {m for e in exprs for m in re.findall(r"\bb25_[a-z0-9_]+", e)}
    assert len(used) > 20 and used <= names, f"not exported: {sorted(used - names)}"
    charted = {m for e in exprs for m in re.findall(r'stage="([a-z0-9_]+)"', e)}
    assert stages and stages <= charted, f"latency stages without a panel: {sorted(stages - charted)}"
    for family in ("b25_risk_daily_pnl", "b25_risk_equity", "b25_order_fills_total", "b25_order_refusals_total",
                   "b25_delivery_failures_total"):
        assert family in used, family
    rules = (OBS / "alerts.yml").read_text()
    in_rules = set(re.findall(r"\bb25_[a-z0-9_]+", rules)) - {"b25_"}
    assert in_rules <= names, f"alerts.yml names series /metrics does not export: {sorted(in_rules - names)}"
