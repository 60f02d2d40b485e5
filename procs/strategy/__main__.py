"""strategy: runs strategy plugins on market data and writes their order intents.

``python -m procs.strategy [--config F] [--instance NAME]`` — consumes ``md.book``, ``md.trade``
(broadcast) and ``exec`` (gating, drained every cycle) as consumer "strategy", writes
``orders.strategy`` and ``strategy.signals``. The logic is ``procs.strategy.engine``, the
process's edges ``procs.strategy.agent``; plugins live in ``strategies/`` and are listed in
``[[strategy.strategies]]``. SIGHUP or the control command ``Reload`` reloads them.
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.core import log, versions
from procs.core.agent import exit_bad_config, run_process
from procs.core.config import ConfigError
from procs.core.reload import Hangup
from procs.strategy.agent import PROC, StrategySettings, start
from shm.segment import DEFAULT_INSTANCE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    hangup = Hangup()
    try:
        settings = StrategySettings.load(a.config)
    except ConfigError as exc:
        return exit_bad_config(PROC, exc)
    runtime = settings.engine.runtime
    return run_process(PROC, a.instance, runtime, functools.partial(start, settings, a.instance, hangup),
                       versions.on_start(a.config, a.instance, PROC))


if __name__ == "__main__":
    sys.exit(main())
