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
import asyncio
import signal
import socket
import sys

import msgspec
import uvloop
from aiohttp import web

from procs.core import log
from procs.core.agent import HEARTBEAT_NS, pin_cpu
from procs.core.config import ConfigError, config_hash
from procs.core.deploy import depth, symbols
from procs.core.status import State, StatusWriter
from procs.monitor.config import MonitorConfig, load_monitor_config, load_token
from procs.monitor.ops import Counter, Hist, Monitor, make_app
from procs.monitor.shmview import InstanceView
from shm.counters import Counters
from shm.segment import DEFAULT_INSTANCE


def _listen(host: str, port: int) -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def amain(cfg: MonitorConfig, instance: str, syms: list[str], book_depth: int, token: str,
                chash: str) -> int:
    cpu = pin_cpu(cfg.cpu)
    status = StatusWriter(instance, "monitor", cpu, chash)
    counters = Counters.create(instance, "monitor", Counter, Hist)
    view = InstanceView(instance, book_depth)
    mon = Monitor(cfg, view, syms, token, counters)
    runner = web.AppRunner(make_app(mon), access_log=None)
    await runner.setup()
    sock = _listen(cfg.host, cfg.port)
    await web.SockSite(runner, sock).start()
    host, port = sock.getsockname()[:2]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status.set_state(State.RUNNING)
    log.info("listening", instance=instance, host=host, port=port, required=cfg.required,
             commands_enabled=bool(token))
    next_beat = 0
    try:
        while not stop.is_set():
            mon.poll()
            now = loop.time()
            if now >= next_beat:
                status.beat(mon.tracker.events)
                counters.heartbeat()
                next_beat = now + HEARTBEAT_NS / 1e9
            try:
                await asyncio.wait_for(stop.wait(), cfg.poll_s)
            except TimeoutError:
                pass
    finally:
        status.set_state(State.STOPPING)
        await runner.cleanup()
        view.close()
        status.set_state(State.STOPPED)
        counters.close()
        status.close()
    log.info("monitor_stopped")
    return 0


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", default=None, help="deployment TOML ([monitor] and [market_data] sections)")
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--host", default=None, help="override [monitor] host")
    ap.add_argument("--port", type=int, default=None, help="override [monitor] port (0 = any free port)")


def run(args: argparse.Namespace) -> int:
    log.set_process("monitor")
    try:
        cfg = load_monitor_config(args.config)
        if args.host is not None or args.port is not None:
            cfg = msgspec.structs.replace(cfg, host=args.host or cfg.host,
                                          port=cfg.port if args.port is None else args.port)
        token = load_token(cfg)
        syms, book_depth = symbols(args.config), depth(args.config)
    except (ConfigError, ValueError) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 2
    return uvloop.run(amain(cfg, args.instance, syms, book_depth, token, config_hash(args.config)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="monitor", description=__doc__)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
