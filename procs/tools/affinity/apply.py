"""Applies a layout to running processes by pid: CPU mask, then SCHED_FIFO or nice.

Every thread of a process is set (``sched_setaffinity(pid)`` alone changes only the main
thread), and a child of a placed process (market_data's recorder) goes to the housekeeping
CPUs at normal priority: it compresses and writes to disk and must not share a hot core.
Nothing raises: each step is an ``Outcome`` saying what was done or refused and why.
"""

from __future__ import annotations

import errno
import http.client
import os
import xmlrpc.client
from dataclasses import asdict, dataclass
from pathlib import Path

from .layout import HOT_NICE, Placement, Proposal
from .topology import format_cpulist


@dataclass(frozen=True)
class Outcome:
    """One step of applying a layout."""

    name: str
    pid: int
    action: str  # "affinity" | "fifo" | "policy" | "nice" | "find"
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        return f"{'ok     ' if self.ok else 'REFUSED'} {self.name}[{self.pid}] {self.action}: {self.detail}"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EPERM:
        return "permission denied (needs CAP_SYS_NICE, a matching RLIMIT_RTPRIO/RLIMIT_NICE, or the same user)"
    if exc.errno == errno.ESRCH:
        return "no such process (it exited or the pid is stale)"
    if exc.errno == errno.EINVAL:
        return "invalid for this host (CPUs outside the cpuset or offline, or a bad priority)"
    return exc.strerror or str(exc)


def _threads(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return [pid]


def _children(pid: int) -> list[int]:
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except Exception:  # psutil.Error, gone: a child list is best effort
        return []


def apply_placement(p: Placement, pid: int, housekeeping: tuple[int, ...] = ()) -> list[Outcome]:
    """Set ``p`` on every thread of ``pid`` (and its children onto ``housekeeping``)."""
    out: list[Outcome] = []
    cpus = set(p.cpus)
    failed: list[str] = []
    for tid in _threads(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError as exc:
            if tid == pid or exc.errno != errno.ESRCH:  # a thread that just exited is fine
                failed.append(_reason(exc))
    if failed:
        out.append(Outcome(p.name, pid, "affinity", False, f"cpus {format_cpulist(cpus)}: {failed[0]}"))
    else:
        out.append(Outcome(p.name, pid, "affinity", True, f"pinned to cpus {format_cpulist(cpus)}"))

    if p.policy == "fifo":
        try:
            for tid in _threads(pid):
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(p.priority))
            out.append(Outcome(p.name, pid, "fifo", True, f"SCHED_FIFO priority {p.priority}"))
        except OSError as exc:
            out.append(Outcome(p.name, pid, "fifo", False, f"SCHED_FIFO {p.priority}: {_reason(exc)}; "
                                                           f"falling back to nice {HOT_NICE:+d}"))
            out += _set_other(p.name, pid, HOT_NICE)
    else:
        out += _set_other(p.name, pid, p.nice)

    if housekeeping:
        for child in _children(pid):
            try:
                for tid in _threads(child):
                    os.sched_setaffinity(tid, set(housekeeping))
                out.append(Outcome(p.name, child, "affinity", True,
                                   f"child process moved to housekeeping cpus {format_cpulist(housekeeping)}"))
            except OSError as exc:
                out.append(Outcome(p.name, child, "affinity", False, f"child process: {_reason(exc)}"))
            out += _set_other(p.name, child, 0)
    return out


def _set_other(name: str, pid: int, nice: int) -> list[Outcome]:
    out: list[Outcome] = []
    try:
        if os.sched_getscheduler(pid) in (os.SCHED_FIFO, os.SCHED_RR):  # left over from an earlier layout
            for tid in _threads(pid):
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            out.append(Outcome(name, pid, "policy", True, "back to the normal scheduler (SCHED_OTHER)"))
    except OSError as exc:
        out.append(Outcome(name, pid, "policy", False, f"SCHED_OTHER: {_reason(exc)}"))
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
    except OSError as exc:
        return out + [Outcome(name, pid, "nice", False, _reason(exc))]
    if current == nice:
        return out
    try:
        for tid in _threads(pid):  # Linux keeps nice per thread
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        out.append(Outcome(name, pid, "nice", True, f"nice {current:+d} -> {nice:+d}"))
    except OSError as exc:
        out.append(Outcome(name, pid, "nice", False, f"nice {current:+d} -> {nice:+d}: {_reason(exc)}"))
    return out


def apply_layout(proposal: Proposal, pids: dict[str, int]) -> list[Outcome]:
    """Apply every placement whose process has a pid in ``pids``; the rest are reported."""
    out: list[Outcome] = []
    for p in proposal.placements:
        pid = pids.get(p.name)
        if not pid:
            if p.section:  # a configured program that is not running is worth saying
                out.append(Outcome(p.name, 0, "find", False, "not running (no pid): nothing applied"))
            continue
        # supervisord's own children are the programs, placed one by one: leave them alone
        out += apply_placement(p, pid, proposal.housekeeping if p.name != "supervisord" else ())
    return out


def supervisor_pids(sock: str | Path) -> dict[str, int]:
    """Pids of supervisord (``supervisord``) and its running programs, over its unix socket.

    Raises OSError with the socket path when supervisord cannot be reached.
    """
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{sock}")
    rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    try:
        pids = {"supervisord": int(rpc.supervisor.getPID())}
        for info in rpc.supervisor.getAllProcessInfo():
            if info.get("pid"):
                pids[info["name"]] = int(info["pid"])
    except (OSError, xmlrpc.client.Error, http.client.HTTPException) as exc:
        raise OSError(f"supervisord not reachable: socket={sock} reason={exc}") from None
    return pids


def find_tui() -> int | None:
    """The pid of a running ``b25 tui`` of this user, if any."""
    try:
        import psutil
    except ImportError:
        return None
    me = os.getuid()
    for proc in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            cmd = proc.info["cmdline"] or []
            uids = proc.info["uids"]
            if uids and uids.real != me:
                continue
            if "tui" in cmd and any(a.endswith("b25") or a == "procs.cli" for a in cmd):
                return int(proc.info["pid"])
        except (TypeError, KeyError):
            continue
    return None


def parse_pids(text: str) -> dict[str, int]:
    """``"market_data=123,strategy=456"`` -> dict; raises ValueError naming the bad item."""
    out: dict[str, int] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, pid = item.partition("=")
        if not sep or not pid.strip().isdigit() or not name.strip():
            raise ValueError(f"--pids wants name=pid[,name=pid...]: item={item!r}")
        out[name.strip()] = int(pid)
    return out
