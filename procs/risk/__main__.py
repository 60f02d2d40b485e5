"""risk: positions, P&L, limits, trading state and reconciliation; writes ``risk.state``.

``python -m procs.risk [--config F] [--instance NAME] [--rest-url URL]`` — consumes ``exec`` and
``md.book`` as the named consumer ``risk``, writes the ``risk.state`` SeqLock block that
execution checks in line, publishes alerts to ``alerts.risk`` and takes control commands
(SetKillSwitch, SetTradingState, Reload, CancelAll, Shutdown, Ping) on its queue. The logic is
``procs.risk``; where the venue is and whose account: ``[venue]``.
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.core import log, versions
from procs.core.agent import exit_bad_config, run_process
from procs.core.config import ConfigError
from procs.risk.agent import PROC
from procs.risk.service import RiskSettings, start
from shm.segment import DEFAULT_INSTANCE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--rest-url", default=None)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    try:
        settings = RiskSettings.load(a.config, a.rest_url)
    except ConfigError as exc:
        return exit_bad_config(PROC, exc)
    return run_process(PROC, a.instance, settings.risk.runtime, functools.partial(start, settings, a.instance),
                       versions.on_start(a.config, a.instance, PROC))


if __name__ == "__main__":
    sys.exit(main())
