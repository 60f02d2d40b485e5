"""``b25 services``: the service table as text or JSON, and supervisord.conf rendered from it.

``b25 services --supervisord > supervisord.conf`` writes the repository's file; a test fails when
the committed file differs from what this module renders, so the table stays the one source. The
test Stack renders its own programs with ``program`` too.
"""

from __future__ import annotations

import argparse
import json

from procs.core.services import NAMES, Service, as_rows, service

HEADER = """\
; b25 under supervisord: `make run [CONFIG=b25.toml]` starts it, `make stop` stops it.
; GENERATED from procs/core/services.py by `b25 services --supervisord > supervisord.conf`;
; edit the table, not this file (tests/core/test_services.py checks they agree).
; scripts/run.py sets B25_INSTANCE, B25_CONFIG (absolute path) and B25_ENABLE_<NAME> (true/false
; from the config's switch) for the programs that can be turned off.
; supervisorctl -c supervisord.conf status|start|stop|restart <name>
; The control socket is a unix socket (0700); there is no TCP control port.

[unix_http_server]
file=%(here)s/run/supervisor.sock
chmod=0700

[supervisord]
logfile=%(here)s/run/log/supervisord.log
logfile_maxbytes=20MB
logfile_backups=3
pidfile=%(here)s/run/supervisord.pid
childlogdir=%(here)s/run/log
directory=%(here)s
umask=077
environment=B25_INSTANCE="%(ENV_B25_INSTANCE)s",B25_CONFIG="%(ENV_B25_CONFIG)s",PYTHONUNBUFFERED="1"

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/run/supervisor.sock

; producers come up before consumers (lower priority starts first, stops last)
"""


def program(s: Service, command: str, directory: str, logfile: str, autostart: str, restart_tries: int | None = None,
            log_rotation: bool = True) -> str:
    """One ``[program:<name>]`` section."""
    text = (f"[program:{s.name}]\ncommand={command}\ndirectory={directory}\npriority={s.priority}\n"
            f"autostart={autostart}\nautorestart=true\nstartsecs=1\n")
    if restart_tries is not None:
        text += f"startretries={restart_tries}\n"
    text += f"stopsignal=TERM\nstopwaitsecs=10\nredirect_stderr=true\nstdout_logfile={logfile}\n"
    if log_rotation:
        text += "stdout_logfile_maxbytes=50MB\nstdout_logfile_backups=5\n"
    return text


def repository_config() -> str:
    """The text of the repository's supervisord.conf."""
    out = HEADER
    for name in NAMES:
        s = service(name)
        extra = " --instance %(ENV_B25_INSTANCE)s" if s.name == "exchange_sim" else ""
        command = f"%(here)s/.venv/bin/python -m {s.module} --config %(ENV_B25_CONFIG)s{extra}"
        autostart = f"%(ENV_{s.enable_env})s" if s.enabled_by else "true"
        if s.enabled_by:
            out += f"\n; started only when [{s.enabled_by.replace('.', '] ')} is true\n"
        else:
            out += "\n"
        out += program(s, command, "%(here)s", "%(here)s/run/log/%(program_name)s.log", autostart)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help='{"services": [{name, section, priority, hot_path, ...}]}')
    p.add_argument("--supervisord", action="store_true", help="print supervisord.conf rendered from the table")


def run(args: argparse.Namespace) -> int:
    if args.supervisord:
        print(repository_config(), end="")
        return 0
    rows = as_rows()
    if args.json:
        print(json.dumps({"services": rows}, indent=1))
        return 0
    print(f"{'name':<13} {'section':<12} {'prio':>4} {'hot':<4} {'required':<8} produces -> consumes")
    for r in rows:
        req = "sim" if r["enabled_by"] == "deploy.sim" else ("yes" if r["required"] else "no")
        print(f"{r['name']:<13} {r['section']:<12} {r['priority']:>4} {'yes' if r['hot_path'] else 'no':<4} "
              f"{req:<8} {', '.join(r['produces']) or '-'} -> {', '.join(r['consumes']) or '-'}")
    return 0
