"""``--measure``: runs ``b25 bench e2e --json`` before and after applying a layout, and diffs
every numeric figure of the two results (the benchmark's own JSON shape, flattened)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


class BenchUnavailable(RuntimeError):
    """``b25 bench e2e`` does not exist (yet) or does not run."""


def bench_available(cmd: list[str], timeout_s: float = 60.0) -> tuple[bool, str]:
    """Whether ``<cmd> bench e2e --help`` succeeds; the reason when it does not."""
    try:
        r = subprocess.run([*cmd, "bench", "e2e", "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot run {' '.join(cmd)}: {exc}"
    if r.returncode == 0:
        return True, ""
    last = (r.stderr.strip() or r.stdout.strip()).splitlines()
    return False, last[-1] if last else f"exit status {r.returncode}"


def run_bench(cmd: list[str], extra: list[str] | None = None, timeout_s: float = 900.0) -> dict:
    """One ``b25 bench e2e --json`` result; raises BenchUnavailable with the reason."""
    try:
        r = subprocess.run([*cmd, "bench", "e2e", "--json", *(extra or [])], cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchUnavailable(f"b25 bench e2e did not finish: {exc}") from None
    if r.returncode != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
        raise BenchUnavailable(f"b25 bench e2e exited {r.returncode}: {' | '.join(tail)}")
    text = r.stdout.strip()
    for candidate in (text, *reversed(text.splitlines())):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    raise BenchUnavailable("b25 bench e2e --json printed no JSON object")


def flatten(doc: object, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON document by dotted path (lists by index)."""
    out: dict[str, float] = {}
    if isinstance(doc, bool):
        return out
    if isinstance(doc, int | float):
        out[prefix] = float(doc)
    elif isinstance(doc, dict):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
    return out


def diff(before: dict, after: dict) -> list[dict]:
    """Each figure present in both results: before, after, delta and percent change."""
    a, b = flatten(before), flatten(after)
    rows = []
    for key in [k for k in a if k in b]:
        delta = b[key] - a[key]
        pct = (delta / a[key] * 100.0) if a[key] else None
        rows.append({"figure": key, "before": a[key], "after": b[key], "delta": delta, "pct": pct})
    return rows


def format_diff(rows: list[dict]) -> list[str]:
    if not rows:
        return ["no numeric figure appears in both results"]
    width = max(len(r["figure"]) for r in rows)
    lines = [f"{'figure':<{width}} {'before':>14} {'after':>14} {'change':>10}"]
    for r in rows:
        pct = f"{r['pct']:+.1f}%" if r["pct"] is not None else "n/a"
        lines.append(f"{r['figure']:<{width}} {r['before']:>14.6g} {r['after']:>14.6g} {pct:>10}")
    return lines
