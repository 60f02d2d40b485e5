"""``b25 soak``: the stack at a steady market rate for minutes, sampled, drift reported.

An isolated ``Stack`` runs every process with the simulator's generator at ``--rate`` depth
events per second over the configured symbols and the shipped market maker trading. Every
``--sample-s`` (10) seconds each process is sampled: RSS, open fds, CPU (% of one core over the
interval), and from shared memory each ring consumer's lag and loss, the gating rings' full waits,
the strategy's dropped intents and the p99 of every latency histogram over the interval.

The report gives each series first to last, after ``--warmup-s``, and the goals:

* RSS within ``±5%`` of its first sample after warm-up, per process;
* no lag growth: every consumer's lag in the last third of the samples no worse than in the first
  third plus a ring batch (the lag is a snapshot: what is in flight when it is read);
* no drops on gating rings (``orders.*``, ``exec``): no intent dropped, no consumer loss;
* each stage's p99 within ``±20%``: the p99 of every event of the last third against the first
  third's, for the stages with at least ``MIN_POOLED_EVENTS`` events in each (the others are
  reported, not judged; the intervals' own p99s are reported too);
* it kept trading: risk ACTIVE in every sample after warm-up and orders sent in its last third
  (a held stack idles, and its drift says nothing of the trading path).

The warm-up defaults to execution's ``forget_closed_s`` plus a minute: closed orders are kept that
long (for late reports), so execution's memory only reaches its steady state then (the simulator's
closed orders, trades and income are bounded sooner by ``[sim_trading] keep_*``).

``--json`` prints the whole report (goals, drift, every sample); the exit status is 0 when the
goals are met. A 60-second soak runs in CI (``tests/tools/reliability/test_soak.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from procs.tools.stack import PIPELINE, Stack

GATING = ("orders.strategy", "orders.manual", "orders.remote", "exec")
LAG_SLACK = 256  # records: a consumer's lag read mid-batch is noise up to a batch
RSS_PCT = 5.0
P99_PCT = 20.0
# per process where it has them: drops, execution's orders and fills, risk's reconciliations
SAMPLED_COUNTERS = ("intents_dropped", "exec_full_waits", "lost", "orders_sent", "fills", "reconciliations",
                    "mismatches", "reconcile_in_flight")
MIN_P99_EVENTS = 100  # a stage's p99 is judged when its intervals hold at least this many events (median)
MIN_POOLED_EVENTS = 1000  # or, pooled over a third of the run, when each third holds this many
MARKET_MAKER = {"id": "mm_btc", "class": "strategies.market_maker:MarketMaker", "symbols": ["BTCUSDT"],
                "params": {"quote_qty": "0.002", "max_position": "0.01", "price_ref": "microprice",
                           "spread_ticks": 30, "skew_ticks": 10.0, "requote_ticks": 15}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    p.add_argument("--rate", type=float, default=20000.0, help="generator depth events per second (default 20000)")
    p.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples (default 10)")
    p.add_argument("--warmup-s", type=float, default=None,
                   help="samples before this are left out of the drift (default: execution's forget_closed_s "
                        "+ 60, when its memory of closed orders is full; at most half the run)")
    p.add_argument("--work-dir", default=None, help="where the stack's run directory goes (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    if args.minutes <= 0 or args.rate <= 0 or args.sample_s <= 0 or (args.warmup_s or 0) < 0:
        print("b25 soak: --minutes, --rate and --sample-s must be > 0, --warmup-s >= 0", file=sys.stderr)
        return 2
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="b25-soak-"))
    report = soak(work, args.minutes * 60, args.rate, args.sample_s, args.warmup_s,
                  progress=None if args.json else lambda t: print(t, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(json.dumps({k: report[k] for k in ("goals", "drift", "load_average")}, indent=1))
    return 0 if report["ok"] else 1


def default_warmup_s(seconds: float) -> float:
    """Execution's ``forget_closed_s`` plus a minute, at most half the run."""
    from procs.execution.config import ExecutionConfig

    return min(ExecutionConfig().forget_closed_s + 60.0, seconds / 2)


def soak(work: Path, seconds: float, rate: float, sample_s: float = 10.0, warmup_s: float | None = None,
         instance: str | None = None, progress: Any = None) -> dict[str, Any]:
    """Run the stack for ``seconds`` at ``rate`` events/s; the report (see the module docstring)."""
    import os

    if warmup_s is None:
        warmup_s = default_warmup_s(seconds)

    stack = Stack(work, instance=instance, procs=(*PIPELINE, "monitor"), strategies=[MARKET_MAKER],
                  overrides={"sim": {"generator": {"msg_rate": rate}},
                             "strategy": {"strategies": []}})
    samples: list[dict[str, Any]] = []
    died: list[str] = []
    stack.start()
    t_start = time.monotonic()
    try:
        sampler = Sampler(stack)
        sampler.sample()  # the CPU and histogram baselines
        next_at = time.monotonic() + sample_s
        while time.monotonic() - t_start < seconds:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += sample_s
            s = sampler.sample()
            s["t"] = round(time.monotonic() - t_start, 1)
            samples.append(s)
            died += [p for p, v in s["procs"].items() if not v["alive"]]
            if progress is not None:
                progress(f"t={s['t']:>7.1f}s " + " ".join(f"{p}:{v['rss_mb']}MB/{v['cpu_pct']}%"
                                                         for p, v in s["procs"].items()))
            if died:
                break
    finally:
        codes = stack.stop()
    steady = [k for k, smp in enumerate(samples) if smp["t"] > warmup_s]
    return analyse(samples, warmup_s, rate, seconds, sorted(set(died)), codes, os.getloadavg(),
                   pooled=sampler.pooled_thirds(steady) if steady else None)


class Sampler:
    """One sample of every process of a running stack."""

    def __init__(self, stack: Stack) -> None:
        import psutil

        self.stack = stack
        self.ps: dict[str, Any] = {}
        self.hist: dict[tuple[str, str], Any] = {}
        # every sample's cumulative histogram buckets by "proc.name" (the baseline first): a
        # window's events are the difference of its ends (pooled_thirds)
        self.cumulative: list[dict[str, Any]] = []
        for proc in stack.procs:
            with contextlib.suppress(Exception):
                self.ps[proc] = psutil.Process(stack.pid(proc))

    def sample(self) -> dict[str, Any]:
        from shm.counters import summary_us
        from shm.inspect import ls

        out: dict[str, Any] = {"procs": {}, "rings": {}, "p99_us": {}, "counters": {}, "trading_state": "?"}
        with contextlib.suppress(Exception):  # risk down: "?" (and the sample is not ACTIVE)
            from procs.core import messages as M

            out["trading_state"] = M.TRADING_STATE_NAMES.get(int(self.stack.risk_state()["trading_state"]), "?")
        for proc, p in self.ps.items():
            try:
                with p.oneshot():
                    out["procs"][proc] = {"alive": p.is_running() and p.status() != "zombie",
                                          "rss_mb": round(p.memory_info().rss / 2**20, 2), "fds": p.num_fds(),
                                          "cpu_pct": round(p.cpu_percent(None), 1)}
            except Exception:  # noqa: BLE001 - a dead process is a finding, not an error here
                out["procs"][proc] = {"alive": False, "rss_mb": 0.0, "fds": 0, "cpu_pct": 0.0}
        prefix = f"/b25.{self.stack.instance}."
        for row in ls(self.stack.instance):
            if row.get("kind") != "ring":
                continue
            name = row["segment"].removeprefix(prefix)
            out["rings"][name] = {"full_waits": row["full_waits"], "policy": row["policy"],
                                  "consumers": [{"lag": c["lag"], "lost": c["lost"]} for c in row["consumers"]]}
        cumulative: dict[str, Any] = {}
        self.cumulative.append(cumulative)
        for proc in self.ps:
            try:
                counters, hists = self.stack.counters(proc)
            except Exception:  # noqa: BLE001 - not every process has counters (the simulator)
                continue
            out["counters"][proc] = {k: counters[k] for k in SAMPLED_COUNTERS if k in counters}
            for name, buckets in hists.items():
                key = (proc, name)
                prev = self.hist.get(key)
                self.hist[key] = cumulative[f"{proc}.{name}"] = buckets.copy()
                delta = buckets - prev if prev is not None else buckets
                s = summary_us(delta)
                if s["count"]:
                    out["p99_us"][f"{proc}.{name}"] = {"p99": s["p99_us"], "count": s["count"]}
        return out


    def pooled_thirds(self, steady: list[int]) -> dict[str, dict[str, float]]:
        """Each stage's p99 over all the events of the first and of the last third of the
        ``steady`` samples (indices into the samples): thousands of events a window, where one
        10 s interval of the order path holds a few hundred, whose p99 is its third-largest."""
        from shm.counters import summary_us

        early, late = _thirds(steady)
        out: dict[str, dict[str, float]] = {}
        ends = {"early": (early[0], early[-1]), "late": (late[0], late[-1])}
        for key in self.cumulative[-1]:
            row: dict[str, float] = {}
            for window, (a, b) in ends.items():
                # sample k's cumulative buckets are cumulative[k + 1]: the baseline is first
                start, end = self.cumulative[a].get(key), self.cumulative[b + 1].get(key)
                if start is None or end is None:
                    break
                sm = summary_us(end - start)
                row[f"{window}_p99_us"], row[f"{window}_count"] = sm["p99_us"], sm["count"]
            else:
                out[key] = row
        return out


def _thirds(values: list[Any]) -> tuple[list[Any], list[Any]]:
    k = max(1, len(values) // 3)
    return values[:k], values[-k:]


def analyse(samples: list[dict[str, Any]], warmup_s: float, rate: float, seconds: float, died: list[str],
            codes: dict, load: tuple[float, float, float],
            pooled: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """Drift first to last after warm-up, and the goals. ``pooled``: each stage's p99 over the
    first and the last third's events (``Sampler.pooled_thirds``); it judges the p99 goal where
    given, else the median of the intervals' p99s does."""
    steady = [s for s in samples if s["t"] > warmup_s] or samples[-1:]
    drift: dict[str, Any] = {"rss_pct": {}, "fds": {}, "cpu_pct": {}, "lag": {}, "p99_pct": {}}
    goals = {"rss_within_5pct": True, "no_lag_growth": True, "no_gating_drops": True, "p99_within_20pct": True,
             "all_alive": not died, "kept_trading": False}
    if steady:
        first, last = steady[0], steady[-1]
        for proc, v in first["procs"].items():
            end = last["procs"].get(proc, v)
            pct = round((end["rss_mb"] - v["rss_mb"]) / v["rss_mb"] * 100, 2) if v["rss_mb"] else 0.0
            drift["rss_pct"][proc] = {"first_mb": v["rss_mb"], "last_mb": end["rss_mb"], "pct": pct}
            drift["fds"][proc] = {"first": v["fds"], "last": end["fds"]}
            drift["cpu_pct"][proc] = {"first": v["cpu_pct"], "last": end["cpu_pct"],
                                      "mean": round(statistics.fmean(s["procs"][proc]["cpu_pct"] for s in steady
                                                                     if proc in s["procs"]), 1)}
            if abs(pct) > RSS_PCT:
                goals["rss_within_5pct"] = False
        for ring, r in first["rings"].items():
            for k in range(len(r["consumers"])):
                lags = [s["rings"][ring]["consumers"][k]["lag"] for s in steady if ring in s["rings"]]
                early, late = _thirds(lags)
                grew = max(late) > max(early) + LAG_SLACK
                drift["lag"][f"{ring}[{k}]"] = {"first": lags[0], "last": lags[-1], "max_early": max(early),
                                                "max_late": max(late), "grew": grew}
                if grew:
                    goals["no_lag_growth"] = False
        keys = sorted({k for s in steady for k in s["p99_us"]})
        for key in keys:
            rows = [s["p99_us"][key] for s in steady if key in s["p99_us"]]
            if len(rows) < 2:
                continue
            series = [r["p99"] for r in rows]
            early, late = _thirds(series)
            a, b = statistics.median(early), statistics.median(late)
            pct = round((b - a) / a * 100, 1) if a else 0.0
            # a p99 of a few events per interval is its largest one: reported, not judged
            judged = statistics.median(r["count"] for r in rows) >= MIN_P99_EVENTS
            entry = {"first_us": series[0], "last_us": series[-1], "early_median_us": a, "late_median_us": b}
            window = (pooled or {}).get(key)
            if window is not None:  # the thirds' own p99s, of every event in them
                a, b = window["early_p99_us"], window["late_p99_us"]
                pct = round((b - a) / a * 100, 1) if a else 0.0
                judged = min(window["early_count"], window["late_count"]) >= MIN_POOLED_EVENTS
                entry |= {"early_p99_us": a, "late_p99_us": b, "early_count": window["early_count"],
                          "late_count": window["late_count"]}
            drift["p99_pct"][key] = entry | {"pct": pct, "judged": judged}
            if judged and abs(pct) > P99_PCT:
                goals["p99_within_20pct"] = False
    trading = _trading(steady, samples)
    goals["kept_trading"] = trading["all_active"] and trading["orders_last_third"] > 0
    gating: dict[str, Any] = {}
    if samples:
        end = samples[-1]
        for ring in GATING:
            r = end["rings"].get(ring)
            if r is not None:
                gating[ring] = {"lost": sum(c["lost"] for c in r["consumers"]), "full_waits": r["full_waits"]}
        dropped = end["counters"].get("strategy", {}).get("intents_dropped", 0)
        gating["intents_dropped"] = dropped
        if dropped or any(v["lost"] for k, v in gating.items() if isinstance(v, dict)):
            goals["no_gating_drops"] = False
    return {"ok": all(goals.values()), "goals": goals, "rate": rate, "seconds": round(seconds, 1),
            "samples": len(samples), "steady_samples": len(steady), "warmup_s": warmup_s,
            "load_average": [round(x, 2) for x in load], "died": died, "exit_codes": codes,
            "trading": trading, "gating": gating, "drift": drift, "series": samples}


def _trading(steady: list[dict[str, Any]], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Risk's trading state over the steady samples and execution's orders sent and fills in them;
    risk's reconciliation counts over the whole run."""
    states = [s.get("trading_state", "?") for s in steady]
    sent = [s["counters"].get("execution", {}).get("orders_sent", 0) for s in steady]
    fills = [s["counters"].get("execution", {}).get("fills", 0) for s in steady]
    k = max(1, len(steady) // 3)
    return {"all_active": bool(states) and all(x == "ACTIVE" for x in states),
            "not_active": sorted({x for x in states if x != "ACTIVE"}),
            "orders": sent[-1] - sent[0] if sent else 0, "fills": fills[-1] - fills[0] if fills else 0,
            "orders_last_third": sent[-1] - sent[-k - 1] if len(sent) > k else 0,
            "risk": {name: samples[-1]["counters"].get("risk", {}).get(name, 0) if samples else 0
                     for name in ("reconciliations", "mismatches", "reconcile_in_flight")}}
