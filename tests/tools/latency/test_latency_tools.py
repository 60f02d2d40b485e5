"""``b25 latency``: the session trace's join, the fit, and a free-running replay's trace end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from procs.exchange_sim.latency import LatencyModel
from procs.tools.latency.cli import main
from procs.tools.latency.fit import fit
from procs.tools.latency.trace import join, read_trace, write_trace
from procs.tools.replay.run import ReplayOptions, replay

RECORDING = "hftbacktest-binance/usdm/btcusdt_20240718.gz"


def _trace() -> dict:
    return {"frames": [["BTCUSDT", 10, 1_000], ["BTCUSDT", 11, 2_000], ["BTCUSDT", 11, 2_500], ["BTCUSDT", 12, 3_000]],
            "orders": [{"ts_recv_ns": 5_000, "api": "ws", "method": "place", "symbol": "BTCUSDT",
                        "clientOrderId": "b25-1-1"},
                       {"ts_recv_ns": 9_000, "api": "ws", "method": "place", "symbol": "BTCUSDT",
                        "clientOrderId": "b25-1-1"},
                       {"ts_recv_ns": 6_000, "api": "ws", "method": "cancel", "symbol": "BTCUSDT",
                        "clientOrderId": "b25-1-2"}],
            "answers": [{"ts_sent_ns": 5_100, "channel": "stream", "clientOrderId": "b25-1-1", "what": "NEW",
                         "tradeId": 0},
                        {"ts_sent_ns": 5_200, "channel": "ws", "clientOrderId": "b25-1-1", "what": "NEW",
                         "tradeId": 0},
                        {"ts_sent_ns": 7_000, "channel": "stream", "clientOrderId": "b25-1-1", "what": "TRADE",
                         "tradeId": 4}]}


def test_join_when_both_sides_stamped_then_one_sample_per_frame_order_and_answer_first_writes_only() -> None:
    books = {(0, 10): 1_400, (0, 11): 2_300}  # frame 12 never reached the observer
    sent = {"b25-1-1": 4_000, "b25-1-9": 4_500}  # b25-1-9 never reached the simulator's trace
    learnt = [("b25-1-1", "accepted", 0, 5_150), ("b25-1-1", "fill", 4, 7_400), ("b25-1-1", "canceled", 0, 8_000)]
    out = join(_trace(), books, sent, learnt, ["BTCUSDT"])
    s = out["samples_ns"]
    assert s["feed"] == [400, 300]  # frame 11 was written twice: its first write
    assert s["entry"] == [1_000]  # the first arrival of a resent order; a cancel is not an entry sample
    assert s["response"] == [50, 400]  # the ack from the first of reply and stream event; the fill by trade id
    j = out["join"]
    assert (j["frames"], j["frames_joined"], j["orders_joined"], j["answers_joined"], j["noncausal"]) == (4, 2, 1, 2, 0)
    backwards = join(_trace(), {(0, 10): 900}, {}, [], ["BTCUSDT"])
    assert backwards["samples_ns"]["feed"] == [] and backwards["join"]["noncausal"] == 1


def test_fit_when_empirical_or_lognormal_then_a_model_file_that_reads_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    traces = [{"samples_ns": {"feed": rng.lognormal(np.log(200_000), 0.3, 4000).astype(int).tolist(),
                              "entry": [1_000_000, 2_000_000], "response": []}},
              {"samples_ns": {"feed": [], "entry": [3_000_000], "response": []}}]
    out = fit(traces, tmp_path / "m.toml")
    m = LatencyModel.parse(str(tmp_path / "m.toml"))
    assert m.entry.samples_ns == (1_000_000, 2_000_000, 3_000_000)  # pooled over the traces
    assert len(m.feed.samples_ns) == 4000 and m.response.model == "constant" and m.response.value_ns == 0
    assert out["latencies"]["response"]["samples"] == 0
    out = fit(traces, tmp_path / "ln.toml", model="lognormal")
    ln = LatencyModel.parse(str(tmp_path / "ln.toml"))
    assert ln.feed.model == "lognormal" and abs(ln.feed.median_ns / 200_000 - 1) < 0.02
    assert abs(ln.feed.sigma - 0.3) < 0.02
    with pytest.raises(ValueError, match="model must be"):
        fit(traces, tmp_path / "x.toml", model="gamma")


def test_cli_when_not_a_trace_then_exit_2_naming_the_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": []}')
    assert main(["fit", "--trace", str(bad), "--out", str(tmp_path / "m.toml")]) == 2
    err = capsys.readouterr().err
    assert "not a latency trace" in err and str(bad) in err


@pytest.mark.proc
def test_free_running_replay_when_traced_then_causal_samples_of_all_three_and_a_model(
        real_data: Path, instance: str, tmp_path: Path) -> None:
    trace_file = tmp_path / "trace.json"
    res = replay(ReplayOptions(data=[str(real_data / RECORDING)], strategy="strategies.market_maker:MarketMaker",
                               params={"spread_ticks": 10, "requote_ticks": 2}, mode="speed", speed=8.0,
                               limit_events=4000, instance=instance, trace=str(trace_file)))
    assert all(rc == 0 for rc in res.exit_codes.values()), res.exit_codes
    t = read_trace(trace_file)
    j = t["join"]
    assert j["noncausal"] == 0, j
    s = t["samples_ns"]
    assert len(s["feed"]) > 500 and len(s["entry"]) > 5 and len(s["response"]) > 5, j
    assert j["frames_joined"] >= 0.9 * j["frames"]  # the observer kept up: nearly every frame joined
    # loopback on one host: every leg well under a second, never zero
    for kind in ("feed", "entry", "response"):
        assert 0 < min(s[kind]) and max(s[kind]) < 1e9, kind
    assert main(["fit", "--trace", str(trace_file), "--out", str(tmp_path / "m.toml"), "--json"]) == 0
    m = LatencyModel.parse(str(tmp_path / "m.toml"))
    assert m.feed.model == m.entry.model == m.response.model == "empirical"
    write_trace(tmp_path / "again.json", t, {"copy": True})
    assert json.loads((tmp_path / "again.json").read_text())["samples_ns"] == s
