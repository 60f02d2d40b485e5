"""supervisord over its unix socket (XML-RPC): program states for the processes panel, and
start / stop / restart. Absent socket = no process control (the panel shows shm status only)."""

from __future__ import annotations

import socket
import xmlrpc.client
from pathlib import Path
from typing import Any


class SupervisorClient:
    def __init__(self, sock: str | Path, timeout_s: float = 2.0) -> None:
        self.sock = Path(sock)
        self.timeout_s = timeout_s
        self.error = ""

    def available(self) -> bool:
        return self.sock.exists()

    def _proxy(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def programs(self) -> dict[str, dict[str, Any]]:
        """Program name -> {state, pid, uptime_s, description}; {} when supervisord is not there."""
        if not self.available():
            return {}
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.timeout_s)  # a wedged supervisord must not freeze the screen
        try:
            infos = self._proxy().supervisor.getAllProcessInfo()
            self.error = ""
        except (OSError, xmlrpc.client.Error) as exc:
            self.error = str(exc)
            return {}
        finally:
            socket.setdefaulttimeout(old)
        out = {}
        for i in infos:
            up = i["now"] - i["start"] if i["statename"] == "RUNNING" and i["start"] else 0
            out[i["name"]] = {"state": i["statename"], "pid": i["pid"], "uptime_s": up,
                              "description": i.get("description", "")}
        return out

    def control(self, action: str, name: str) -> str:
        """start / stop / restart one program; returns what happened, for a notification."""
        if action not in ("start", "stop", "restart"):
            raise ValueError(f"unknown action: action={action}")
        if not self.available():
            return f"no supervisord socket at {self.sock}"
        try:
            s = self._proxy().supervisor
            if action in ("stop", "restart"):
                try:
                    s.stopProcess(name, True)
                except xmlrpc.client.Fault as f:
                    if action == "stop" or "NOT_RUNNING" not in f.faultString:
                        return f"{action} {name}: {f.faultString}"
            if action in ("start", "restart"):
                s.startProcess(name, False)
            return f"{action} {name}: done"
        except (OSError, xmlrpc.client.Error) as exc:
            return f"{action} {name}: {exc}"
