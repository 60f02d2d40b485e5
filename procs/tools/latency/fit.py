"""Fit a latency model (procs/exchange_sim/latency.py) to the samples of one or more session traces.

``empirical`` (the default) keeps every measured sample: the model file names a samples file per
latency, written beside it (``<model>.<latency>.txt``, one duration in ns a line). ``lognormal``
fits each latency by maximum likelihood (the median is exp(mean ln x), sigma the standard
deviation of ln x). A latency with no sample stays ``constant 0`` and the summary says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from procs.exchange_sim.latency import KINDS, LatencyModel, LatencySpec, load_model_file


def pooled_samples(traces: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Every trace's samples per latency, pooled (int64 ns)."""
    return {k: np.asarray([s for t in traces for s in t["samples_ns"].get(k, [])], np.int64) for k in KINDS}


def fit(traces: list[dict[str, Any]], out: str | Path, model: str = "empirical", seed: int = 1) -> dict[str, Any]:
    """Write the model file ``out`` (and its sample files); returns what was fitted, per latency."""
    if model not in ("empirical", "lognormal"):
        raise ValueError(f"model must be empirical or lognormal: model={model}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pooled = pooled_samples(traces)
    specs: dict[str, LatencySpec] = {}
    report: dict[str, Any] = {}
    for kind in KINDS:
        a = pooled[kind]
        if not len(a):
            specs[kind] = LatencySpec()
            report[kind] = {"samples": 0, "model": "constant 0", "note": "no sample in the traces"}
            continue
        row: dict[str, Any] = {"samples": len(a), "p50_us": round(float(np.percentile(a, 50)) / 1000, 1),
                               "p99_us": round(float(np.percentile(a, 99)) / 1000, 1),
                               "mean_us": round(float(a.mean()) / 1000, 1)}
        if model == "empirical":
            f = out.with_name(f"{out.stem}.{kind}.txt")
            f.write_text("".join(f"{int(v)}ns\n" for v in a))
            specs[kind] = LatencySpec("empirical", samples_ns=tuple(int(v) for v in a), source=f.name)
        else:
            logs = np.log(np.maximum(a, 1).astype(np.float64))
            specs[kind] = LatencySpec("lognormal", median_ns=max(1, int(round(float(np.exp(logs.mean()))))),
                                      sigma=round(float(logs.std()), 4))
        row["model"] = specs[kind].text()
        report[kind] = row
    m = LatencyModel(**specs, seed=seed, name=str(out))
    out.write_text("# b25 latency fit: " + ", ".join(f"{k} {report[k]['samples']} samples" for k in KINDS) + "\n"
                   + m.toml())
    load_model_file(out)  # what was written reads back
    return {"model_file": str(out), "latencies": report}
