"""monitor: the one place that turns shared-memory telemetry into HTTP.

``python -m procs.monitor [--config F] [--instance NAME] [--host H] [--port P]`` (also
``b25 monitor``) serves ``/metrics`` (Prometheus text, read from every process's shm counters,
histograms, ring headers and status blocks on each scrape), ``/health`` (200 when every
required process is fresh, 503 naming the stale ones) and the JSON ops API (``procs.monitor.ops``),
on 127.0.0.1:9725 by default. ``--port 0`` picks a free port; the ``listening`` log line says
which. It is an asyncio (uvloop) process with its own status block and counters.
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.core import log, versions
from procs.core.agent import exit_bad_config
from procs.core.async_agent import run_async_process
from procs.core.config import ConfigError
from procs.monitor.agent import PROC, MonitorSettings, start
from shm.segment import DEFAULT_INSTANCE


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", default=None, help="deployment TOML ([monitor] and [market_data] sections)")
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--host", default=None, help="override [monitor] host")
    ap.add_argument("--port", type=int, default=None, help="override [monitor] port (0 = any free port)")


def run(args: argparse.Namespace) -> int:
    log.set_process(PROC)
    try:
        settings = MonitorSettings.load(args.config, args.host, args.port)
    except ConfigError as exc:
        return exit_bad_config(PROC, exc)
    return run_async_process(PROC, args.instance, settings.monitor.runtime,
                             functools.partial(start, settings, args.instance), versions.on_start(args.config, args.instance, PROC))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
