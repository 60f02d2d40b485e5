"""web: ``b25 web [--config F] [--instance NAME] [--host H] [--port P]`` (also
``python -m procs.web``): the TUI in a browser on ``[web] host/port`` (127.0.0.1:9726), one TUI
process per browser session (``procs.web.server``). supervisord runs it when ``[web] enabled``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import msgspec
import uvloop
from aiohttp import web

from procs.core import log
from procs.core.agent import HEARTBEAT_NS, pin_cpu
from procs.core.config import ConfigError, config_hash, load_section
from procs.core.status import State, StatusWriter
from procs.monitor.config import load_monitor_config, load_token
from procs.monitor.feed import loopback
from procs.web.config import WebConfig
from procs.web.server import WebServer
from shm.segment import DEFAULT_INSTANCE

PROC = "web"


async def serve(server: WebServer, cfg: WebConfig, instance: str, chash: str) -> int:
    status = StatusWriter(instance, PROC, pin_cpu(cfg.cpu), chash)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    try:
        await site.start()
    except OSError as exc:
        log.error("start_failed", reason=f"cannot listen on {cfg.host}:{cfg.port}: {exc}")
        status.set_state(State.FAILED)
        await runner.cleanup()
        status.close()
        return 1
    port = site._server.sockets[0].getsockname()[1] if site._server else cfg.port  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status.set_state(State.RUNNING)
    log.info("listening", host=cfg.host, port=port, max_sessions=cfg.max_sessions, login_required=server.needs_login,
             url=f"http://{cfg.host}:{port}/")
    try:
        while not stop.is_set():
            status.beat(server.started)
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_NS / 1e9)
            except TimeoutError:
                pass
    finally:
        status.set_state(State.STOPPING)
        await runner.cleanup()  # ends every session's TUI
        status.set_state(State.STOPPED)
        status.close()
    log.info("web_stopped", sessions_started=server.started, sessions_refused=server.refused)
    return 0


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
        print(f"web: {exc}", file=sys.stderr)
        return 2
    if not loopback(cfg.host) and not token:
        print(f"web: refusing to listen on {cfg.host} without the ops token ([monitor] token_file or "
              "B25_MONITOR_TOKEN): off loopback the page itself needs it", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "tui.app", "--instance", args.instance, "--web-session",
               "--refresh", str(cfg.refresh_s)] + (["--config", config] if config else [])
    server = WebServer(cfg, command, token, f"b25 {args.instance}")
    return uvloop.run(serve(server, cfg, args.instance, config_hash(config)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="b25 web", description=__doc__)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
