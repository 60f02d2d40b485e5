"""``b25 bench dashboard``: a short run with 20 clients on the monitor's /ws through the real stack."""

from __future__ import annotations

import pytest

from procs.tools.bench.dashboard import run


@pytest.mark.proc
def test_dashboard_bench_when_20_clients_subscribe_then_each_gets_every_topic_and_both_phases_measure():
    out = run(clients=20, seconds=4.0, warmup_s=2.0)
    feed = out["clients"]
    assert feed["connected"] == 20 and feed["connect_failures"] == 0 and feed["errors"] == [], feed
    assert {"book", "trades", "positions", "risk"} <= set(feed["by_type"]), feed["by_type"]
    assert feed["delay_ms"]["count"] > 100 and feed["delay_ms"]["p50"] > 0
    for phase in ("without_clients", "with_clients"):
        assert out[phase]["tick_to_order"]["count"] > 0, phase  # the pipeline traded in both phases
        assert out[phase]["monitor"]["rss_mb_end"] > 0
    assert all(code == 0 for code in out["exit_codes"].values()), out["exit_codes"]
