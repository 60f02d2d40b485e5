#!/usr/bin/env python3
"""Propose, apply and measure a CPU layout for b25's processes.

    scripts/tune_affinity.py                 # topology + proposed layout, with the reasons
    scripts/tune_affinity.py --json          # the same as one JSON document
    scripts/tune_affinity.py --write FILE    # cpu/idle settings per b25.toml section ('-' = stdout)
    scripts/tune_affinity.py --apply         # pin the running supervisord programs, nice/SCHED_FIFO
    scripts/tune_affinity.py --apply --pids market_data=123,strategy=456
    scripts/tune_affinity.py --measure       # b25 bench e2e before and after --apply, and the difference

Importable: ``from scripts.tune_affinity import main``; the logic is ``procs.tools.affinity``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from anywhere, without installing b25
    sys.path.insert(0, str(ROOT))

from procs.tools.affinity.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
