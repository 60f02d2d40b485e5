"""``make run`` / ``make stop``: start supervisord with every b25 process, wait until all are
RUNNING and fresh, then open the TUI (quitting it leaves the system running); or stop it all
and remove the instance's shared memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = ROOT / ".venv" / "bin"
CONF = ROOT / "supervisord.conf"
SOCK = ROOT / "run" / "supervisor.sock"


def _rpc():
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{SOCK}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def _running() -> bool:
    if not SOCK.exists():
        return False
    try:
        _rpc().supervisor.getState()
        return True
    except (OSError, xmlrpc.client.Fault):
        return False


def _switches(config: Path) -> dict[str, bool]:
    """Each switchable service of the table -> whether this deployment runs it."""
    import tomllib

    from procs.core.services import SERVICES, enabled

    data = tomllib.loads(config.read_text())
    return {s.name: enabled(s.name, data) for s in SERVICES if s.enabled_by}


def _environment(instance: str, config: Path) -> dict[str, str]:
    """What supervisord.conf expands: the instance, the config path and every service's on/off switch."""
    from procs.core.services import service

    env = dict(os.environ, B25_INSTANCE=instance, B25_CONFIG=str(config))
    env.update({service(name).enable_env: "true" if on else "false" for name, on in _switches(config).items()})
    return env


def status(instance: str, config: Path) -> int:
    return subprocess.call([str(VENV_BIN / "supervisorctl"), "-c", str(CONF), "status"], cwd=ROOT,
                           env=_environment(instance, config.resolve()))


def start(instance: str, timeout: float, config: Path) -> int:
    config = config.resolve()
    if not config.is_file():
        print(f"config file not found: {config}", file=sys.stderr)
        return 2
    switches = _switches(config)
    env = _environment(instance, config)
    (ROOT / "run" / "log").mkdir(parents=True, exist_ok=True)
    os.chmod(ROOT / "run", 0o700)
    token = ROOT / "run" / "monitor.token"
    if not token.exists():  # the ops API's bearer token for state-changing calls
        import secrets

        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    if not _running():
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(CONF)], cwd=ROOT, env=env, check=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            infos = _rpc().supervisor.getAllProcessInfo()
        except OSError:
            time.sleep(0.2)
            continue
        states = {i["name"]: i["statename"] for i in infos if switches.get(i["name"], True)}
        bad = {n: s for n, s in states.items() if s in ("FATAL", "BACKOFF", "EXITED")}
        if all(s == "RUNNING" for s in states.values()):
            print("all running: " + ", ".join(sorted(states)))
            break
        if bad and time.monotonic() > deadline - timeout / 2:
            print(f"not starting: {bad}; see run/log/", file=sys.stderr)
        time.sleep(0.3)
    else:
        print("timed out waiting for every program to be RUNNING; see run/log/", file=sys.stderr)
        subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(CONF), "status"])
        return 1
    subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(CONF), "status"])
    tui = ROOT / "tui" / "app.py"
    if tui.exists() and sys.stdout.isatty():
        return subprocess.call([str(VENV_BIN / "b25"), "tui", "--instance", instance, "--config", str(config)],
                               cwd=ROOT)
    print("the system keeps running; `make stop` stops it")
    return 0


def stop(instance: str) -> int:
    if _running():
        subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(CONF), "shutdown"], cwd=ROOT)
        deadline = time.monotonic() + 30
        while SOCK.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    subprocess.run([str(VENV_BIN / "b25"), "shm", "clean", "--instance", instance], cwd=ROOT)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instance", default=os.environ.get("B25_INSTANCE", "main"))
    ap.add_argument("--stop", action="store_true")
    ap.add_argument("--status", action="store_true", help="supervisorctl status")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--config", type=Path, default=ROOT / "b25.toml", help="deployment file (b25.toml)")
    a = ap.parse_args()
    if a.status:
        return status(a.instance, a.config)
    return stop(a.instance) if a.stop else start(a.instance, a.timeout, a.config)


if __name__ == "__main__":
    sys.exit(main())
