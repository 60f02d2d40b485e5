"""nats_server: the local NATS server of ``[bridge] embedded_server = true``.

``python -m procs.nats_server --config F`` writes the server's config (listen on the host and
port of ``[bridge] url``, JetStream in ``server_store_dir``, the bridge's user and password) to
``<server_store_dir>/nats-server.conf`` (0600) and replaces itself with the nats-server binary, so
supervisord starts, signals and restarts the server itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from procs.bridge.config import BridgeConfig
from procs.bridge.server import binary, write_config
from procs.core.config import ConfigError, load_section
from shm.segment import DEFAULT_INSTANCE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nats_server", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None)
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--print", action="store_true", help="print the server command and config instead of running it")
    a = ap.parse_args(argv)
    try:
        cfg = load_section(a.config, "bridge", BridgeConfig)
        exe = binary()
    except (ConfigError, FileNotFoundError) as exc:
        print(f"nats_server: {exc}", file=sys.stderr)
        return 2
    password = cfg.password or (os.environ.get(cfg.password_env, "") if cfg.password_env else "")
    conf = write_config(cfg, Path(cfg.server_store_dir).resolve(), password)
    if a.print:
        print(exe, "-c", conf)
        return 0
    try:
        os.nice(cfg.server_nice - os.nice(0))  # the same scheduling the bridge runs at ([bridge.runtime] sched)
    except OSError as exc:
        print(f"nats_server: nice {cfg.server_nice} refused ({exc.strerror}); running at {os.nice(0)}", file=sys.stderr)
    os.execv(exe, [exe, "-c", str(conf)])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
