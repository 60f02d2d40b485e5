"""notifier: ``python -m procs.notifier [--config F] [--instance NAME]``.

Reads every ``alerts.*`` ring as an observer plus the status blocks and counters it watches
(``procs.notifier.sources``) and delivers by ``[alerts] routes`` (``procs.notifier.delivery``).
Its counters and histograms (deliveries, retries, failures, raise -> delivered) are in its shm
counters segment, so the monitor's /metrics exports them; each outcome is a line of
``[alerts] delivery_log``.
"""

from __future__ import annotations

import argparse
import sys

from procs.core import deploy, log, versions
from procs.core.agent import exit_bad_config, run_process
from procs.core.config import ConfigError, load_section, read_toml
from procs.notifier.agent import PROC, start, watched
from procs.notifier.config import AlertsConfig
from procs.notifier.delivery import check_routes
from shm.segment import DEFAULT_INSTANCE


def run(config: str | None, instance: str) -> int:
    try:
        cfg = load_section(config, "alerts", AlertsConfig)
        check_routes(cfg, str(config))
        symbols, depth = deploy.symbols(config), deploy.depth(config)
        watch = watched(read_toml(config))
    except (ConfigError, ValueError) as exc:
        return exit_bad_config(PROC, exc)
    return run_process(PROC, instance, cfg.runtime,
                       lambda startup: start(cfg, instance, symbols, depth, watch, config, startup.status),
                       versions.on_start(config, instance, PROC))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="notifier", description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    return run(a.config, a.instance)


if __name__ == "__main__":
    sys.exit(main())
