"""web: ``b25 web [--config F] [--instance NAME] [--host H] [--port P]`` (also
``python -m procs.web``): the TUI in a browser on ``[web] host/port`` (127.0.0.1:9726), one TUI
process per browser session (``procs.web.server``). supervisord runs it when ``[web] enabled``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import msgspec

from procs.core import log, versions
from procs.core.agent import exit_bad_config
from procs.core.async_agent import run_async_process
from procs.core.config import ConfigError, load_section
from procs.monitor.config import load_monitor_config, load_token
from procs.monitor.feed import loopback
from procs.web.config import WebConfig
from procs.web.server import PROC, WebServer, start
from shm.segment import DEFAULT_INSTANCE


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", default=None, help="deployment TOML ([web], [monitor] for the ops token)")
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--host", default=None, help="override [web] host")
    ap.add_argument("--port", type=int, default=None, help="override [web] port (0 = any free port)")


def run(args: argparse.Namespace) -> int:
    log.set_process(PROC)
    config = str(Path(args.config).resolve()) if args.config else None
    try:
        cfg = load_section(config, "web", WebConfig)
        if args.host is not None or args.port is not None:
            cfg = msgspec.structs.replace(cfg, host=args.host or cfg.host, port=cfg.port if args.port is None else args.port)
        token = load_token(load_monitor_config(config))
    except (ConfigError, ValueError) as exc:
        return exit_bad_config(PROC, exc)
    if not loopback(cfg.host) and not token:
        print(f"web: refusing to listen on {cfg.host} without the ops token ([monitor] token_file or "
              "B25_MONITOR_TOKEN): off loopback the page itself needs it", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "tui.app", "--instance", args.instance, "--web-session",
               "--refresh", str(cfg.refresh_s)] + (["--config", config] if config else [])
    server = WebServer(cfg, command, token, f"b25 {args.instance}")
    return run_async_process(PROC, args.instance, cfg.runtime, functools.partial(start, server),
                             versions.on_start(config, args.instance, PROC))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="b25 web", description=__doc__)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
