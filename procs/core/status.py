"""Process status: each process's heartbeat and state in a SeqLock block ``status.<proc>``.

The monitor's /health and the TUI read these; a block whose heartbeat is older than the stale
limit, or whose pid is dead, marks its process stale.
"""

from __future__ import annotations

import os
import time
from enum import IntEnum

import numpy as np

from shm.segment import pid_alive
from shm.seqlock import StateReader, StateWriter

ProcessStatus = np.dtype([
    ("pid", "<i8"), ("state", "<i8"), ("heartbeat_ns", "<i8"), ("started_ns", "<i8"),
    ("work", "<i8"),  # work items done so far (from do_work)
    ("cpu", "<i8"),  # pinned CPU or -1
    ("config_hash", "S16"),
])
assert ProcessStatus.itemsize == 64


class State(IntEnum):
    STARTING = 1
    RUNNING = 2
    STOPPING = 3
    STOPPED = 4
    FAILED = 5


def status_name(proc: str) -> str:
    return f"status.{proc}"


class StatusWriter:
    """The owner's side: ``set_state``, ``beat(work)``."""

    def __init__(self, instance: str, proc: str, cpu: int = -1, config_hash: str = "") -> None:
        self.w = StateWriter.create(instance, status_name(proc), ProcessStatus)
        self.rec = self.w.records
        self.w.begin()
        self.rec[0] = (os.getpid(), State.STARTING, time.monotonic_ns(), time.monotonic_ns(), 0, cpu,
                       config_hash.encode()[:16])
        self.w.end()

    def set_state(self, state: State) -> None:
        self.w.begin()
        self.rec["state"][0] = int(state)
        self.rec["heartbeat_ns"][0] = time.monotonic_ns()
        self.w.end()

    def set_config_hash(self, config_hash: str) -> None:
        """The config version applied now (a process that reloads its config shows the new one)."""
        self.w.begin()
        self.rec["config_hash"][0] = config_hash.encode()[:16]
        self.w.end()

    def beat(self, work: int = 0) -> None:
        self.w.begin()
        self.rec["heartbeat_ns"][0] = time.monotonic_ns()
        self.rec["work"][0] = work
        self.w.end()
        self.w.heartbeat()

    def close(self, unlink: bool = False) -> None:
        self.w.close(unlink=unlink)


def read_status(instance: str, proc: str, timeout: float = 0.0) -> dict | None:
    """A process's status as a dict (with ``age_s`` and ``alive``), or None if it never started."""
    try:
        r = StateReader.attach(instance, status_name(proc), ProcessStatus, timeout=timeout)
    except (TimeoutError, OSError):
        return None
    try:
        rec, _ = r.read()
        s = rec[0]
        return {
            "proc": proc, "pid": int(s["pid"]), "state": State(int(s["state"])).name,
            "age_s": (time.monotonic_ns() - int(s["heartbeat_ns"])) / 1e9,
            "alive": pid_alive(int(s["pid"])), "work": int(s["work"]), "cpu": int(s["cpu"]),
            "uptime_s": (time.monotonic_ns() - int(s["started_ns"])) / 1e9,
            "config_hash": bytes(s["config_hash"]).rstrip(b"\0").decode(errors="replace"),
        }
    finally:
        r.close()
