"""bridge: the instance's rings out to NATS (and JetStream), remote intents and commands in.

``python -m procs.bridge [--config F] [--instance NAME]`` — an observer of md.book, md.trade,
exec, alerts.*, risk.state and strategy.signals (it never gates a producer); publishes to
``b25.<instance>.*`` (procs/bridge/schema.py, docs/bridge.md); with ``[bridge] intents`` writes
remote order intents to ``orders.remote``. The logic lives in ``procs.bridge.agent``.
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.bridge.agent import PROC, BridgeSettings, start
from procs.core import log, versions
from procs.core.agent import exit_bad_config
from procs.core.async_agent import run_async_process
from procs.core.config import ConfigError
from shm.segment import DEFAULT_INSTANCE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    try:
        settings = BridgeSettings.load(a.config)
    except ConfigError as exc:
        return exit_bad_config(PROC, exc)
    runtime = settings.bridge.runtime
    return run_async_process(PROC, a.instance, runtime, functools.partial(start, settings, a.instance),
                             versions.on_start(a.config, a.instance, PROC))


if __name__ == "__main__":
    sys.exit(main())
