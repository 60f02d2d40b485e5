"""The latency model (procs/exchange_sim/latency.py) and the event clock's rules (eventclock.py),
without processes: parsing, seeded draws, the frames' exchange/receive schedule on a real
recording, the queue's order and the connections' FIFO."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from procs.core.config import ConfigError, load_section
from procs.exchange_sim.config import SimConfig
from procs.exchange_sim.eventclock import APPLY, ARRIVE, DELIVER, MARKET, EventQueue, Links
from procs.exchange_sim.latency import (
    LatencyModel,
    LatencySection,
    LatencySpec,
    load_model_file,
    parse_duration,
    schedule,
)

RECORDING = "hftbacktest-binance/usdm/btcusdt_20240718.gz"


def test_parse_duration_when_units_then_ns_and_bare_numbers_are_us() -> None:
    assert parse_duration("4ms") == 4_000_000
    assert parse_duration("250us") == 250_000
    assert parse_duration("1.5ms") == 1_500_000
    assert parse_duration("7ns") == 7
    assert parse_duration("0.002s") == 2_000_000
    assert parse_duration("0") == 0
    assert parse_duration("12") == 12_000  # a bare number is microseconds
    for bad in ("-1ms", "4 minutes", "ms", "", "1e"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad, "entry")


def test_spec_parse_when_each_model_then_its_parameters_and_when_wrong_then_the_latency_is_named(
        tmp_path: Path) -> None:
    assert LatencySpec.parse("constant 2ms", "entry") == LatencySpec("constant", value_ns=2_000_000)
    ln = LatencySpec.parse("lognormal 4ms 0.56", "response")
    assert (ln.model, ln.median_ns, ln.sigma) == ("lognormal", 4_000_000, 0.56)
    (tmp_path / "s.txt").write_text("# samples\n1ms\n\n2000us\n3\n")
    emp = LatencySpec.parse("empirical s.txt", "entry", tmp_path)
    assert emp.samples_ns == (1_000_000, 2_000_000, 3_000)
    assert LatencySpec.parse("recorded", "feed").model == "recorded"
    with pytest.raises(ValueError, match="recorded is a feed latency only.*entry="):
        LatencySpec.parse("recorded", "entry")
    with pytest.raises(ValueError, match="unknown latency model response="):
        LatencySpec.parse("gaussian 4ms", "response")
    with pytest.raises(ValueError, match="lognormal needs median > 0"):
        LatencySpec.parse("lognormal 0 0.5", "entry")
    with pytest.raises(ValueError, match="cannot read the samples of entry"):
        LatencySpec.parse("empirical missing.txt", "entry", tmp_path)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no samples"):
        LatencySpec.parse("empirical empty.txt", "feed", tmp_path)


def test_model_parse_when_default_zero_per_latency_and_file_then_the_three_latencies(tmp_path: Path) -> None:
    d = LatencyModel.parse("default")
    assert d.name == "default" and d.feed.model == "recorded"
    assert d.entry == d.response == LatencySpec("lognormal", median_ns=4_000_000, sigma=0.56)
    zero = LatencyModel.parse("constant 0")
    assert zero.is_zero and not d.is_zero and zero.name == "constant 0"
    mixed = LatencyModel.parse("feed=recorded; entry=constant 1ms")
    assert mixed.feed.model == "recorded" and mixed.entry.value_ns == 1_000_000
    assert mixed.response == LatencySpec()  # an unnamed latency is constant 0
    with pytest.raises(ValueError, match="feed=, entry= or response="):
        LatencyModel.parse("order=constant 1ms")
    with pytest.raises(ValueError, match="given twice"):
        LatencyModel.parse("entry=constant 1ms;entry=constant 2ms")
    (tmp_path / "entry.txt").write_text("1ms\n2ms\n")
    f = tmp_path / "model.toml"
    f.write_text('seed = 7\nfeed = "constant 3ms"\nentry = "empirical entry.txt"\nresponse = "lognormal 2ms 0.3"\n')
    m = LatencyModel.parse(str(f))
    assert (m.seed, m.feed.value_ns, m.entry.samples_ns, m.response.median_ns) == (7, 3_000_000, (1_000_000, 2_000_000),
                                                                                   2_000_000)
    back = tmp_path / "back.toml"
    back.write_text(m.toml())
    assert load_model_file(back) == LatencyModel(m.feed, m.entry, m.response, 7, str(back))
    f.write_text('feed = "constant 3ms"\nlatency = 1\n')
    with pytest.raises(ValueError, match="unknown key in latency model file.*key=latency"):
        LatencyModel.parse(str(f))


def test_sampler_when_same_seed_then_same_draws_and_each_latency_its_own_stream() -> None:
    m = LatencyModel.parse("lognormal 4ms 0.56")
    a, b = m.sampler("entry"), m.sampler("entry")
    first = [a.next() for _ in range(3000)]
    assert first == [b.next() for _ in range(3000)]  # across the 1024-draw blocks too
    assert first != [m.sampler("response").next() for _ in range(3000)]
    assert abs(np.median(first) / 4_000_000 - 1) < 0.05
    assert abs(np.percentile(first, 99) / 14_717_000 - 1) < 0.15  # 4 ms * exp(2.326 * 0.56)
    other_seed = LatencyModel.parse("lognormal 4ms 0.56", seed=2).sampler("entry")
    assert [other_seed.next() for _ in range(10)] != first[:10]
    emp = LatencyModel(entry=LatencySpec("empirical", samples_ns=(5, 6, 7))).sampler("entry")
    draws = [emp.next() for _ in range(300)]
    assert set(draws) == {5, 6, 7}
    assert LatencyModel.parse("constant 2ms").sampler("entry").next() == 2_000_000


def _independent_recorded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Receive and exchange times (ns) of every line of an hftbacktest file, parsed with json."""
    recv, exch = [], []
    with gzip.open(path, "rt") as f:
        for line in f:
            ts, body = line.split(" ", 1)
            msg = json.loads(body)
            data = msg.get("data", msg)
            recv.append(int(ts))
            exch.append(int(data.get("E", 0)) * 1_000_000)
    return np.array(recv), np.array(exch)


def test_schedule_when_recorded_feed_then_exchange_time_plus_the_recordings_clock_offset(real_data: Path) -> None:
    recv, exch = _independent_recorded(real_data / RECORDING)
    x, r = schedule(LatencyModel.parse("feed=recorded"), recv, exch)
    assert len(x) == len(recv) == 11414
    assert (np.diff(r) >= 0).all() and (np.diff(x) >= 0).all() and (x <= r).all()
    lat = r - x
    offset = (recv - exch).min()  # the recorder's clock runs ~1.52 s behind the exchange's
    assert -1.6e9 < offset < -1.4e9
    assert lat.min() == 0
    # where the clocks' order allowed it, x is exactly the exchange's time plus the offset
    exact = x == exch + offset
    assert exact.mean() > 0.9
    assert 0.5e6 < np.median(lat) < 5e6  # a few ms of jitter, as README's table says


def test_schedule_when_constant_or_drawn_feed_then_r_minus_the_latency_non_decreasing() -> None:
    recv = np.array([100, 200, 200, 150, 400], np.int64)  # a receive time that steps back
    x, r = schedule(LatencyModel.parse("constant 50ns"), recv, np.zeros(5, np.int64))
    assert r.tolist() == [100, 200, 200, 200, 400] and x.tolist() == [50, 150, 150, 150, 350]
    x, r = schedule(LatencyModel.parse("feed=lognormal 100ns 1.0"), recv, np.zeros(5, np.int64))
    assert (np.diff(x) >= 0).all() and (x <= r).all()
    # frames with no exchange time take the latency of the frame before them
    x, r = schedule(LatencyModel.parse("feed=recorded"), np.array([10, 20, 30, 40]), np.array([5, 18, 0, 39]))
    assert (r - x).tolist() == [4, 1, 1, 0]  # raw 5, 2, -, 1 less the smallest (1)


def test_section_when_bad_model_then_config_error_names_the_latency(tmp_path: Path) -> None:
    cfg = tmp_path / "b25.toml"
    cfg.write_text('[sim.latency]\nentry = "lognormal 4ms"\n')
    with pytest.raises(ConfigError, match="entry="):
        load_section(cfg, "sim", SimConfig)
    cfg.write_text('[sim.latency]\nentry = "constant 1ms"\nseed = 3\n')
    m = load_section(cfg, "sim", SimConfig).latency.model()
    assert m.entry.value_ns == 1_000_000 and m.feed.model == "recorded" and m.seed == 3
    assert LatencySection.of(m).model() == m


def test_queue_when_equal_times_then_exchange_first_private_before_market_then_insertion_order() -> None:
    q = EventQueue()
    seen = []
    q.push(10, MARKET, seen.append, "market@10")
    q.push(10, DELIVER, seen.append, "deliver@10")
    q.push(10, APPLY, seen.append, "apply@10")
    q.push(5, MARKET, seen.append, "market@5")
    q.push(10, ARRIVE, seen.append, "arrive-a@10")
    q.push(10, ARRIVE, seen.append, "arrive-b@10")
    assert q.peek() == 5
    while len(q):
        _t, _kind, fn, args = q.pop()
        fn(*args)
    assert seen == ["market@5", "apply@10", "arrive-a@10", "arrive-b@10", "deliver@10", "market@10"]
    assert q.peek() is None


def test_links_when_latencies_vary_then_each_connection_fifo_and_one_response_draw_per_action() -> None:
    links = Links(LatencyModel.parse("entry=lognormal 1ms 2.0;response=lognormal 1ms 2.0"))
    arrivals = [links.arrival(1000 * i, "api") for i in range(500)]
    assert arrivals == sorted(arrivals)  # a request never overtakes the one written before it
    ref = LatencyModel.parse("entry=lognormal 1ms 2.0").sampler("entry")
    assert arrivals[0] == ref.next()  # the draws are the entry stream's, in request order
    links.begin_action()
    a1, a2 = links.delivery(50, "stream"), links.delivery(50, "api")
    assert a1 == a2  # one exchange action: its answers share one response latency
    links.begin_action()
    b = links.delivery(60, "stream")
    assert b >= a1 and links.response.drawn == 2
