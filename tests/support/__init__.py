"""Test helpers shared across the suite: paths, process spawning, rigs and harnesses (one package)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real"


def spawn(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    """Start ``python <args>`` in the repo root with the test's interpreter."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    if env:
        e.update(env)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=e, **kw)
