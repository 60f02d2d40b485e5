"""Prometheus collector over shared memory: every scrape reads the instance's counters
segments, histograms, ring headers and status blocks. Hot paths never touch a prometheus
object; the owners only bump int64 slots and this reader turns them into families.

Families (labels):
  b25_<counter>_total{proc}                 every counter of every process
  b25_latency_seconds{proc,stage}           histogram; le at powers of two ns (exact row bounds)
  b25_latency_quantile_seconds{proc,stage,quantile}  p50 / p95 / p99 / p99.9 (bucket upper bounds)
  b25_process_up / _heartbeat_age_seconds / _state / _uptime_seconds {proc}
  b25_ring_cursor{ring}, b25_ring_full_waits_total{ring}, b25_ring_producer_alive{ring},
  b25_ring_consumer_lag{ring,consumer}, b25_ring_consumer_lost_total{ring,consumer}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from procs.core.registry import build_registry
from procs.core.status import State
from shm.counters import MIN_EXP, N_BUCKETS, SUB, bucket_upper_ns, percentile_ns
from shm.inspect import describe
from shm.segment import list_segments

from .shmview import InstanceView

_BAD = re.compile(r"[^a-zA-Z0-9_]")
QUANTILES = (("0.5", 50.0), ("0.95", 95.0), ("0.99", 99.0), ("0.999", 99.9))
# cumulative bucket edges: one per power-of-two row of the shm histogram (exact, no interpolation)
_ROW_ENDS = list(range(SUB - 1, N_BUCKETS, SUB))
_ROW_LE = [bucket_upper_ns(i) / 1e9 for i in _ROW_ENDS]
_LOWER = np.array([0.0] + [bucket_upper_ns(i) for i in range(N_BUCKETS - 1)])
_MID_S = (_LOWER + np.array([bucket_upper_ns(i) for i in range(N_BUCKETS)])) / 2 / 1e9
assert MIN_EXP >= 0


def metric_name(label: str) -> str:
    name = _BAD.sub("_", label.strip().lower()) or "unnamed"
    return name if not name[0].isdigit() else "_" + name


def histogram_buckets(counts: np.ndarray) -> tuple[list[tuple[str, float]], float]:
    """(cumulative buckets with +Inf, estimated sum in seconds) of one shm histogram row.

    The sum is estimated from bucket midpoints (the shm histogram keeps counts only), within
    the histogram's 1/SUB relative error; it exists so rate(sum)/rate(count) gives a mean.
    """
    cum = np.cumsum(counts)
    out = [(repr(le), float(cum[end])) for le, end in zip(_ROW_LE, _ROW_ENDS, strict=True)]
    out[-1] = ("+Inf", float(cum[-1]))
    return out, float((counts * _MID_S).sum())


class ShmCollector(Collector):
    """Reads shm on each ``collect()``: cheap enough for a scrape every second."""

    def __init__(self, view: InstanceView, stale_after_s: float, required: tuple[str, ...] = ()) -> None:
        self.view = view
        self.stale_after_s = stale_after_s
        self.required = tuple(required)
        self._consumers = {name: spec.consumers for name, spec in build_registry(view.depth).rings.items()}

    def collect(self) -> Iterator:
        yield from self._counters()
        yield from self._processes()
        yield from self._rings()

    def _counters(self) -> Iterator:
        fams: dict[str, CounterMetricFamily] = {}
        hist = HistogramMetricFamily("b25_latency_seconds", "per-stage latency from shm histograms",
                                     labels=["proc", "stage"])
        quant = GaugeMetricFamily("b25_latency_quantile_seconds",
                                  "latency percentiles (bucket upper bound: never under-states)",
                                  labels=["proc", "stage", "quantile"])
        for proc, (counters, hists) in sorted(self.view.all_counters().items()):
            for label, value in counters.items():
                name = "b25_" + metric_name(label)
                fam = fams.get(name)
                if fam is None:
                    fam = fams[name] = CounterMetricFamily(name, f"shm counter {label}", labels=["proc"])
                fam.add_metric([proc], value)
            for label, counts in hists.items():
                buckets, total = histogram_buckets(counts)
                hist.add_metric([proc, label], buckets, total)
                for qname, q in QUANTILES:
                    v = percentile_ns(counts, q)
                    if not math.isnan(v):
                        quant.add_metric([proc, label, qname], v / 1e9)
        yield from fams.values()
        yield hist
        yield quant

    def _processes(self) -> Iterator:
        up = GaugeMetricFamily("b25_process_up", "1 when the process is fresh (heartbeat, state, pid)",
                               labels=["proc"])
        age = GaugeMetricFamily("b25_process_heartbeat_age_seconds", "age of the last heartbeat",
                                labels=["proc"])
        state = GaugeMetricFamily("b25_process_state", "1=STARTING 2=RUNNING 3=STOPPING 4=STOPPED 5=FAILED",
                                  labels=["proc"])
        uptime = GaugeMetricFamily("b25_process_uptime_seconds", "since the process started", labels=["proc"])
        for proc, s in self.view.statuses(self.required, self.stale_after_s).items():
            up.add_metric([proc], 1.0 if s["fresh"] else 0.0)
            if s["age_s"] is not None:
                age.add_metric([proc], s["age_s"])
                uptime.add_metric([proc], s["uptime_s"])
                state.add_metric([proc], float(State[s["state"]]) if s["state"] in State.__members__ else 0.0)
        yield from (up, age, state, uptime)

    def _rings(self) -> Iterator:
        inst = self.view.instance
        cursor = GaugeMetricFamily("b25_ring_cursor", "records ever published", labels=["ring"])
        full = CounterMetricFamily("b25_ring_full_waits", "gating producer found the ring full", labels=["ring"])
        alive = GaugeMetricFamily("b25_ring_producer_alive", "producer pid alive", labels=["ring"])
        lag = GaugeMetricFamily("b25_ring_consumer_lag", "records published but not consumed",
                                labels=["ring", "consumer"])
        lost = CounterMetricFamily("b25_ring_consumer_lost", "records a lapped consumer lost",
                                   labels=["ring", "consumer"])
        head = f"/b25.{inst}."
        for full_name in list_segments(inst):
            d = describe(full_name)
            if d.get("kind") != "ring":
                continue
            ring = full_name[len(head):]
            cursor.add_metric([ring], d["cursor"])
            full.add_metric([ring], d["full_waits"])
            alive.add_metric([ring], 1.0 if d["producer_alive"] else 0.0)
            names = self._consumers.get(ring, ())
            for c in d["consumers"]:
                cname = names[c["slot"]] if c["slot"] < len(names) else f"slot{c['slot']}"
                lag.add_metric([ring, cname], c["lag"])
                lost.add_metric([ring, cname], c["lost"])
        yield from (cursor, full, alive, lag, lost)
