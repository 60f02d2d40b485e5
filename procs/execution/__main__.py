"""execution: order intents in, exchange orders out, OrderEvents (journaled first) back.

``python -m procs.execution [--config F] [--instance NAME]`` — consumes ``orders.strategy`` and
``orders.manual`` (as consumer ``execution``), checks each new order against ``risk.state``,
sends it over the exchange's WebSocket API (REST as fallback), follows it through the
user-data stream and publishes ``OrderEvent`` records to ``exec``. On start it rebuilds its
orders from the journal and reconciles them with the exchange before it reads any intent.
The logic lives in ``procs.execution`` (the process's edges in ``procs.execution.agent``).
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.core import log, versions
from procs.core.agent import exit_bad_config
from procs.core.async_agent import run_async_process
from procs.core.config import ConfigError
from procs.execution.agent import PROC, ExecutionSettings, start
from shm.segment import DEFAULT_INSTANCE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    try:
        settings = ExecutionSettings.load(a.config)
    except ConfigError as exc:
        return exit_bad_config(PROC, exc)
    cfg = settings.execution
    return run_async_process(PROC, a.instance, cfg.runtime,
                             functools.partial(start, settings, a.instance), versions.on_start(a.config, a.instance, PROC))


if __name__ == "__main__":
    sys.exit(main())
