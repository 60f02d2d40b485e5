"""market_data: the live order book per symbol from the exchange's WebSocket + REST snapshots.

``python -m procs.market_data [--config F] [--instance NAME]`` — publishes ``BookUpdate`` to
``md.book``, ``Trade`` to ``md.trade`` and the latest book to ``book.<symbol>``. The logic is
``procs.market_data.handler`` (no I/O), the network side ``procs.market_data.feed`` and the
process's edges ``procs.market_data.agent``.
"""

from __future__ import annotations

import argparse
import functools
import sys

from procs.core import log, versions
from procs.core.agent import exit_bad_config
from procs.core.async_agent import run_async_process
from procs.core.config import ConfigError
from procs.market_data.agent import PROC, load_config, start
from procs.market_data.recorder import Recorder
from shm.segment import DEFAULT_INSTANCE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROC, description=__doc__)
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--ws-url", default=None)
    ap.add_argument("--rest-url", default=None)
    a = ap.parse_args(argv)
    log.set_process(PROC)
    try:
        settings = load_config(a.config, a.ws_url, a.rest_url)
    except ConfigError as exc:
        return exit_bad_config(PROC, exc)
    # the recorder child starts before the runner pins us, so gzip and the disk never share the hot CPU
    cfg = settings.market_data
    recorder = Recorder(cfg.recorder, f"{a.instance}_md") if cfg.recorder.enabled else None
    return run_async_process(PROC, a.instance, cfg.runtime, functools.partial(start, settings, a.instance, recorder),
                             versions.on_start(a.config, a.instance, PROC), cpu_latency_us=cfg.cpu_latency_us)


if __name__ == "__main__":
    sys.exit(main())
