"""The CPU topology a layout is proposed for: logical CPUs, physical cores and their SMT
siblings, NUMA nodes, isolated and nohz_full CPUs, interrupt load, and what this user may change.

Everything is read from a ``/sys`` and ``/proc`` root given by the caller, so tests describe a
64-CPU two-socket machine with a fake tree in a temporary directory; ``read_topology()`` with no
arguments reads this host (and cross-checks the counts with psutil).
"""

from __future__ import annotations

import os
import re
import resource
from dataclasses import dataclass, field
from pathlib import Path

CAP_SYS_NICE = 23  # bit in /proc/<pid>/status CapEff (linux/capability.h)


def parse_cpulist(text: str) -> set[int]:
    """CPUs of a kernel cpulist (``"0-3,8,10-11"``, ``"0-15:2/4"``); ``""`` is the empty set.

    Raises ValueError naming the text when it is not a cpulist.
    """
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?", part)
        if m is None:
            raise ValueError(f"not a cpulist: text={text!r} part={part!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if m.group(3) is None:
            cpus.update(range(lo, hi + 1))
        else:  # "a-b:used/group": the first `used` CPUs of every `group`
            used, group = int(m.group(3)), int(m.group(4))
            for base in range(lo, hi + 1, group):
                cpus.update(c for c in range(base, min(base + used, hi + 1)))
    return cpus


def format_cpulist(cpus: set[int] | list[int] | tuple[int, ...]) -> str:
    """The shortest cpulist for ``cpus`` (``{0,1,2,5}`` -> ``"0-2,5"``); ``"none"`` when empty."""
    s = sorted(set(cpus))
    if not s:
        return "none"
    out: list[str] = []
    start = prev = s[0]
    for c in s[1:] + [None]:  # type: ignore[list-item]
        if c is not None and c == prev + 1:
            prev = c
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(out)


def _cmdline_cpulist(cmdline: str, key: str) -> set[int]:
    """The CPUs of ``key=`` on the kernel command line; isolcpus may carry flags first
    (``isolcpus=domain,managed_irq,2-7``)."""
    for tok in cmdline.split():
        if tok.startswith(key + "="):
            parts = [p for p in tok.split("=", 1)[1].split(",") if p and p[0].isdigit()]
            try:
                return parse_cpulist(",".join(parts))
            except ValueError:
                return set()
    return set()


@dataclass(frozen=True)
class Permissions:
    """What this user may change about scheduling: SCHED_FIFO and a lower nice value need
    CAP_SYS_NICE or a non-zero RLIMIT_RTPRIO / RLIMIT_NICE; raising nice is always allowed."""

    euid: int
    cap_sys_nice: bool
    rtprio_limit: int  # soft RLIMIT_RTPRIO
    nice_rlimit: int  # soft RLIMIT_NICE: the lowest nice allowed is 20 - this
    rt_runtime_us: int = 950_000  # /proc/sys/kernel/sched_rt_runtime_us (-1 = no throttling)
    rt_period_us: int = 1_000_000

    @property
    def fifo_allowed(self) -> bool:
        return self.cap_sys_nice or self.rtprio_limit > 0

    @property
    def fifo_max_priority(self) -> int:
        return 99 if self.cap_sys_nice else max(0, min(99, self.rtprio_limit))

    @property
    def min_nice(self) -> int:
        """The lowest (most favoured) nice value this user may set."""
        if self.cap_sys_nice:
            return -20
        return max(-20, min(0, 20 - self.nice_rlimit)) if self.nice_rlimit > 0 else 0

    def describe(self) -> str:
        fifo = (f"SCHED_FIFO permitted (priority up to {self.fifo_max_priority})" if self.fifo_allowed
                else "SCHED_FIFO not permitted (needs CAP_SYS_NICE or RLIMIT_RTPRIO > 0)")
        nice = f"nice down to {self.min_nice}" if self.min_nice < 0 else "nice may only be raised"
        throttle = ("RT throttling off (sched_rt_runtime_us=-1)" if self.rt_runtime_us < 0 else
                    f"RT throttling: real-time tasks get {self.rt_runtime_us} us per {self.rt_period_us} us per CPU")
        return (f"euid {self.euid}, CAP_SYS_NICE {'yes' if self.cap_sys_nice else 'no'}, "
                f"RLIMIT_RTPRIO {self.rtprio_limit}, RLIMIT_NICE {self.nice_rlimit}: {fifo}; {nice}; {throttle}")


def read_permissions(proc_root: Path = Path("/proc")) -> Permissions:
    """This process's scheduling permissions (capabilities from ``<proc>/self/status``)."""
    cap = False
    try:
        for line in (proc_root / "self" / "status").read_text().splitlines():
            if line.startswith("CapEff:"):
                cap = bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    except (OSError, ValueError):
        pass
    rt = _read_int(proc_root / "sys" / "kernel" / "sched_rt_runtime_us", 950_000)
    period = _read_int(proc_root / "sys" / "kernel" / "sched_rt_period_us", 1_000_000)
    return Permissions(euid=os.geteuid(), cap_sys_nice=cap,
                       rtprio_limit=_soft_limit(resource.RLIMIT_RTPRIO),
                       nice_rlimit=_soft_limit(resource.RLIMIT_NICE),
                       rt_runtime_us=rt, rt_period_us=period)


def _soft_limit(which: int) -> int:
    soft, _hard = resource.getrlimit(which)
    return 1 << 30 if soft == resource.RLIM_INFINITY else int(soft)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path, default: int) -> int:
    text = _read(path)
    try:
        return int(text.strip()) if text else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Topology:
    """One host's CPUs as the kernel describes them.

    ``cores`` lists each physical core as the sorted tuple of its logical CPUs (its SMT
    siblings); ``usable`` is what a process of ours may be pinned to (online, inside our
    cpuset when one is readable; isolated CPUs count even when the inherited mask lacks them,
    because isolcpus only keeps the scheduler away, not sched_setaffinity).
    """

    cpus: tuple[int, ...]
    cores: tuple[tuple[int, ...], ...]
    package: dict[int, int]  # cpu -> physical package (socket)
    nodes: dict[int, tuple[int, ...]]  # NUMA node -> cpus
    isolated: frozenset[int] = frozenset()
    nohz_full: frozenset[int] = frozenset()
    affinity: frozenset[int] = frozenset()  # this process's current mask
    cpuset: frozenset[int] | None = None  # cgroup cpuset, when readable
    irqs: dict[int, int] = field(default_factory=dict)  # cpu -> interrupts since boot
    nic_nodes: frozenset[int] = frozenset()  # NUMA nodes of physical network devices
    psutil_counts: tuple[int, int] | None = None  # (logical, physical) as psutil sees them

    @property
    def usable(self) -> frozenset[int]:
        allowed = set(self.cpus)
        if self.cpuset is not None:
            allowed &= self.cpuset
        elif self.affinity:
            allowed &= set(self.affinity) | set(self.isolated)
        return frozenset(allowed)

    @property
    def smt(self) -> bool:
        return any(len(c) > 1 for c in self.cores)

    def core_of(self, cpu: int) -> tuple[int, ...]:
        for c in self.cores:
            if cpu in c:
                return c
        return (cpu,)

    def node_of(self, cpu: int) -> int:
        for n, cs in self.nodes.items():
            if cpu in cs:
                return n
        return 0

    def busiest_irq_cpu(self) -> int | None:
        """The CPU that has taken the most interrupts, when interrupt counts are known."""
        if not self.irqs or not any(self.irqs.values()):
            return None
        return max(sorted(self.irqs), key=lambda c: self.irqs[c])

    def describe(self) -> list[str]:
        nodes = ", ".join(f"node{n}: {format_cpulist(c)}" for n, c in sorted(self.nodes.items()))
        smt = (f"SMT with {max(len(c) for c in self.cores)} threads per core" if self.smt else "no SMT")
        lines = [
            f"{len(self.cpus)} logical CPUs, {len(self.cores)} physical cores ({smt}), "
            f"{len(set(self.package.values()) or {0})} socket(s), {len(self.nodes)} NUMA node(s) ({nodes})",
            f"isolated (isolcpus): {format_cpulist(self.isolated)}; nohz_full: {format_cpulist(self.nohz_full)}",
            f"this process's affinity: {format_cpulist(self.affinity)}"
            + (f"; cgroup cpuset: {format_cpulist(self.cpuset)}" if self.cpuset is not None else ""),
        ]
        if self.smt:
            sib = [format_cpulist(c) for c in self.cores if len(c) > 1]
            lines.append("SMT siblings: " + " ".join(f"[{s}]" for s in sib[:16]) + (" ..." if len(sib) > 16 else ""))
        busy = self.busiest_irq_cpu()
        if busy is not None:
            total = sum(self.irqs.values())
            lines.append(f"interrupts: CPU {busy} has taken {self.irqs[busy] * 100 // max(1, total)}% of "
                         f"{total} since boot")
        if self.nic_nodes:
            lines.append(f"network devices on NUMA node(s): {format_cpulist(self.nic_nodes)}")
        if self.psutil_counts and self.psutil_counts != (len(self.cpus), len(self.cores)):
            lines.append(f"note: psutil counts {self.psutil_counts[0]} logical / {self.psutil_counts[1]} "
                         f"physical, /sys says {len(self.cpus)} / {len(self.cores)}")
        return lines

    def to_dict(self) -> dict:
        return {
            "cpus": list(self.cpus),
            "cores": [list(c) for c in self.cores],
            "smt": self.smt,
            "sockets": sorted(set(self.package.values())),
            "nodes": {str(n): list(c) for n, c in sorted(self.nodes.items())},
            "isolated": sorted(self.isolated),
            "nohz_full": sorted(self.nohz_full),
            "affinity": sorted(self.affinity),
            "cpuset": sorted(self.cpuset) if self.cpuset is not None else None,
            "usable": sorted(self.usable),
            "irqs": {str(c): n for c, n in sorted(self.irqs.items())},
            "busiest_irq_cpu": self.busiest_irq_cpu(),
            "nic_nodes": sorted(self.nic_nodes),
            "psutil": list(self.psutil_counts) if self.psutil_counts else None,
        }


def read_irqs(text: str) -> dict[int, int]:
    """Per-CPU interrupt totals from the text of /proc/interrupts."""
    lines = text.splitlines()
    if not lines:
        return {}
    cols = [int(h[3:]) for h in lines[0].split() if h.startswith("CPU") and h[3:].isdigit()]
    totals = dict.fromkeys(cols, 0)
    for line in lines[1:]:
        fields = line.split()[1:1 + len(cols)]
        for cpu, f in zip(cols, fields, strict=False):
            if not f.isdigit():
                break
            totals[cpu] += int(f)
    return totals


def _cgroup_cpuset(sys_root: Path, proc_root: Path) -> frozenset[int] | None:
    text = _read(proc_root / "self" / "cgroup")
    if not text:
        return None
    for line in text.splitlines():
        hid, ctrls, path = (line.split(":", 2) + ["", ""])[:3]
        rel = path.lstrip("/")
        if hid == "0" and ctrls == "":
            cand = sys_root / "fs" / "cgroup" / rel / "cpuset.cpus.effective"
        elif "cpuset" in ctrls.split(","):
            cand = sys_root / "fs" / "cgroup" / "cpuset" / rel / "cpuset.effective_cpus"
        else:
            continue
        got = _read(cand)
        if got and got.strip():
            try:
                return frozenset(parse_cpulist(got))
            except ValueError:
                return None
    return None


def read_topology(sys_root: Path | str = "/sys", proc_root: Path | str = "/proc",
                  affinity: set[int] | None = None) -> Topology:
    """The topology under ``sys_root``/``proc_root`` (this host by default).

    ``affinity`` is the mask to report as this process's; by default ``os.sched_getaffinity``
    when reading the real host, else every online CPU of the fake tree.
    """
    sys_root, proc_root = Path(sys_root), Path(proc_root)
    real = sys_root == Path("/sys")
    cpu_dir = sys_root / "devices" / "system" / "cpu"
    online_text = _read(cpu_dir / "online")
    if online_text and online_text.strip():
        cpus = sorted(parse_cpulist(online_text))
    else:
        cpus = sorted(int(p.name[3:]) for p in cpu_dir.glob("cpu[0-9]*") if p.name[3:].isdigit())
    if not cpus:
        cpus = sorted(os.sched_getaffinity(0)) if real else [0]

    cores: dict[tuple[int, ...], None] = {}
    package: dict[int, int] = {}
    for c in cpus:
        topo = cpu_dir / f"cpu{c}" / "topology"
        sib_text = _read(topo / "core_cpus_list") or _read(topo / "thread_siblings_list")
        sib = parse_cpulist(sib_text) & set(cpus) if sib_text else {c}
        cores[tuple(sorted(sib | {c}))] = None
        package[c] = _read_int(topo / "physical_package_id", 0)

    nodes: dict[int, tuple[int, ...]] = {}
    for nd in sorted((sys_root / "devices" / "system" / "node").glob("node[0-9]*")):
        text = _read(nd / "cpulist")
        if text is not None:
            cs = tuple(sorted(parse_cpulist(text) & set(cpus)))
            if cs:
                nodes[int(nd.name[4:])] = cs
    if not nodes:
        nodes = {0: tuple(cpus)}

    cmdline = _read(proc_root / "cmdline") or ""
    iso_text = _read(cpu_dir / "isolated")
    isolated = parse_cpulist(iso_text) if iso_text and iso_text.strip() else _cmdline_cpulist(cmdline, "isolcpus")
    nohz_text = _read(cpu_dir / "nohz_full")
    nohz = parse_cpulist(nohz_text) if nohz_text and nohz_text.strip() and "null" not in nohz_text \
        else _cmdline_cpulist(cmdline, "nohz_full")

    if affinity is None:
        affinity = set(os.sched_getaffinity(0)) if real else set(cpus)
    nic_nodes: set[int] = set()
    for dev in (sys_root / "class" / "net").glob("*/device/numa_node"):
        n = _read_int(dev, -1)
        if n >= 0:
            nic_nodes.add(n)
    psutil_counts = None
    if real:
        import psutil

        psutil_counts = (psutil.cpu_count(logical=True) or 0, psutil.cpu_count(logical=False) or 0)
    return Topology(
        cpus=tuple(cpus),
        cores=tuple(sorted(cores, key=lambda t: t[0])),
        package=package,
        nodes=nodes,
        isolated=frozenset(isolated & set(cpus)),
        nohz_full=frozenset(nohz & set(cpus)),
        affinity=frozenset(affinity),
        cpuset=_cgroup_cpuset(sys_root, proc_root),
        irqs=read_irqs(_read(proc_root / "interrupts") or ""),
        nic_nodes=frozenset(nic_nodes),
        psutil_counts=psutil_counts,
    )
