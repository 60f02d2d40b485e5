"""Proposes a CPU layout for b25's processes on a given topology, and says why.

The hot path (market_data -> strategy -> execution) gets isolated cores when the kernel has
them (isolcpus), else dedicated cores when there are enough left for everything else, else it
shares with everything. One thread per physical core: the SMT sibling of a hot core is left
idle because it shares the core's L1/L2 and execution units. The whole hot path stays on one
NUMA node so the rings it passes events through stay in local memory. Everything else (risk,
monitor, exchange_sim, supervisord, the TUI) runs on the housekeeping CPUs.

Idle strategy: ``spin`` only for a process alone on an isolated or dedicated core, ``backoff``
for the rest of the hot path, ``block`` off it (risk, monitor, the simulator). SCHED_FIFO only
for a blocking (``backoff``) consumer that shares a core, never with ``spin``: a spinning
real-time process stalls under the kernel's RT throttling and starves its neighbours
(docs/decisions/002-sched-fifo-hot-path.md, docs/decisions/003-never-spin-under-fifo.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from procs.core import services

from .topology import Permissions, Topology, format_cpulist

HOT_PATH = services.HOT_PATH
PROCESSES = tuple(n for n in services.NAMES if not services.BY_NAME[n].external)  # b25's own processes
EXTRAS = ("supervisord", "tui")  # housekeeping, no config section
SECTIONS = {s.name: s.section for s in services.SERVICES if not s.external}
FIFO_PRIORITY = 10  # low RT priority: above every ordinary task, below the kernel's RT threads
HOT_NICE = -10  # the fallback when SCHED_FIFO is refused
HOUSEKEEPING_NICE = {"monitor": 5, "tui": 5}  # scrapes and redraws can wait

WHY_HOUSEKEEPING = {
    "exchange_sim": "the simulated venue: in production the exchange is across the network, so it "
                    "gets no hot core here",
    "risk": "watches fills and marks and reacts within milliseconds; the microsecond pre-trade check "
            "runs inside execution, so risk is not on the hot path",
    "monitor": "turns shm counters into /metrics and /health; nice +5 because a scrape can wait",
    "bridge": "copies events to NATS as an observer of the rings; a slow bridge loses its own messages, "
              "never delays a producer",
    "supervisord": "a program it restarts inherits its CPU mask, so pinning supervisord keeps respawns "
                   "off the hot cores until they pin themselves from config",
    "tui": "the operator's screen redraws every 100 ms; nice +5 so a redraw never delays the book",
}


def throttle_text(perms: Permissions) -> str:
    """Why spin and SCHED_FIFO never go together, with this host's RT throttling figures."""
    if perms.rt_runtime_us < 0:
        budget = "RT throttling is off here, so a spinning SCHED_FIFO process would starve its core outright"
    else:
        budget = (f"the kernel lets real-time tasks run {perms.rt_runtime_us} us of every "
                  f"{perms.rt_period_us} us per CPU, then stops them")
    return ("never spin under SCHED_FIFO: measured here, a busy-spinning SCHED_FIFO process beside ordinary "
            f"ones stalls ~45 ms at a time under RT throttling ({budget}), while a blocking consumer under "
            "SCHED_FIFO holds p99 near 10 us")


@dataclass
class Placement:
    """Where one process runs and how it is scheduled."""

    name: str
    role: str  # "hot" | "housekeeping"
    section: str  # its b25.toml section, "" when it has none
    cpus: tuple[int, ...]  # the mask --apply sets
    idle: str  # "spin" | "backoff" | "block" | "" (no idle strategy to choose)
    policy: str = "other"  # "fifo" | "other"
    priority: int = 0  # SCHED_FIFO priority when policy is fifo
    nice: int = 0
    core_kind: str = "shared"  # "isolated" | "dedicated" | "shared"
    why: list[str] = field(default_factory=list)

    @property
    def cpu(self) -> int:
        """The ``cpu`` config value: the one CPU, or -1 (not pinned by the process itself)."""
        return self.cpus[0] if len(self.cpus) == 1 else -1

    def sched_text(self) -> str:
        if self.policy == "fifo":
            return f"SCHED_FIFO {self.priority}"
        return f"nice {self.nice:+d}" if self.nice else "default"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpus"] = list(self.cpus)
        d["cpu"] = self.cpu
        return d


@dataclass
class Proposal:
    """A layout for every process plus the reasons that apply to all of them."""

    mode: str  # "isolated" | "dedicated" | "shared"
    hot_node: int | None
    hot_cpus: tuple[int, ...]
    housekeeping: tuple[int, ...]
    placements: list[Placement]
    notes: list[str] = field(default_factory=list)

    def get(self, name: str) -> Placement:
        for p in self.placements:
            if p.name == name:
                return p
        raise KeyError(f"no placement for process: name={name}")

    def to_dict(self) -> dict:
        return {"mode": self.mode, "hot_node": self.hot_node, "hot_cpus": list(self.hot_cpus),
                "housekeeping": list(self.housekeeping), "notes": list(self.notes),
                "placements": [p.to_dict() for p in self.placements]}

    def describe(self) -> list[str]:
        lines = [f"layout: {self.mode}; hot path CPUs {format_cpulist(self.hot_cpus)}"
                 + (f" on NUMA node {self.hot_node}" if self.hot_node is not None else "")
                 + f"; housekeeping CPUs {format_cpulist(self.housekeeping)}"]
        lines += [f"  - {n}" for n in self.notes]
        for p in self.placements:
            idle = f"idle={p.idle}" if p.idle else "idle=-"
            lines.append(f"{p.name:<13} {p.role:<12} cpus={format_cpulist(p.cpus):<10} cpu={p.cpu:<3} "
                         f"{idle:<12} {p.sched_text()}")
            lines += [f"    why: {w}" for w in p.why]
        return lines


def _core_load(topo: Topology, core: tuple[int, ...]) -> int:
    return sum(topo.irqs.get(c, 0) for c in core)


def propose(topo: Topology, perms: Permissions, processes: tuple[str, ...] | list[str] = PROCESSES,
            extras: tuple[str, ...] | list[str] = EXTRAS) -> Proposal:
    """The layout for ``processes`` (+ ``extras``, housekeeping without config) on ``topo``."""
    usable = topo.usable or frozenset(topo.cpus)
    cores = [t for t in (tuple(c for c in core if c in usable) for core in topo.cores) if t]
    iso_cores = [c for c in cores if all(x in topo.isolated for x in c)]
    plain_cores = [c for c in cores if c not in iso_cores]
    hot_names = [h for h in HOT_PATH if h in processes]
    busy = topo.busiest_irq_cpu()
    notes: list[str] = []

    # Housekeeping keeps the core that takes the most interrupts (and CPU 0's kernel work).
    def hk_first(c: tuple[int, ...]) -> tuple:
        return (busy not in c, 0 not in c, -_core_load(topo, c), c[0])

    reserve = 1 if len(plain_cores) <= 8 else 2
    plain_by_hk = sorted(plain_cores, key=hk_first)
    dedicatable = plain_by_hk[reserve:] if len(plain_cores) > reserve else []

    def slots_on(node: int) -> list[tuple[int, ...]]:
        iso = sorted((c for c in iso_cores if topo.node_of(c[0]) == node),
                     key=lambda c: (not all(x in topo.nohz_full for x in c), _core_load(topo, c), c[0]))
        ded = sorted((c for c in dedicatable if topo.node_of(c[0]) == node),
                     key=lambda c: (_core_load(topo, c), c[0]))
        return (iso + ded)[:len(hot_names)]

    def score(node: int) -> tuple:
        n_iso = sum(1 for c in iso_cores if topo.node_of(c[0]) == node)
        return (min(n_iso, len(hot_names)), node in topo.nic_nodes, len(slots_on(node)), n_iso, -node)

    hot_node = max(sorted(topo.nodes), key=score) if topo.nodes and hot_names else None
    slots = slots_on(hot_node) if hot_node is not None else []
    has_iso = any(s in iso_cores for s in slots)
    if not has_iso and len(slots) < 2:
        slots = []
    mode = "isolated" if has_iso else "dedicated" if slots else "shared"

    placements: list[Placement] = []
    reserved: set[int] = set()
    hot_cpus: list[int] = []
    if slots:
        per_slot: dict[int, list[str]] = {}
        for i, name in enumerate(hot_names):
            per_slot.setdefault(min(i, len(slots) - 1), []).append(name)
        for i, names in per_slot.items():
            core = slots[i]
            reserved.update(core)
            cpu = min(core, key=lambda x: (x not in topo.nohz_full, topo.irqs.get(x, 0), x))
            hot_cpus.append(cpu)
            kind = "isolated" if core in iso_cores else "dedicated"
            for name in names:
                placements.append(_hot_on_core(name, cpu, core, kind, names, topo, perms))
    housekeeping = sorted(usable - topo.isolated - reserved) or sorted(usable - reserved) or sorted(usable)
    if not slots:
        shared = tuple(housekeeping)
        hot_cpus = list(shared)
        for name in hot_names:
            placements.append(_hot_shared(name, shared, topo, perms))

    # Hot cores that are not isolated get no protection from the kernel, so housekeeping
    # processes pin themselves to one housekeeping CPU each instead of floating onto them.
    pin_single = any(s not in iso_cores for s in slots) and len(housekeeping) > 1
    order = sorted(housekeeping, key=lambda c: (topo.core_of(c).index(c), c))  # first threads of every core first
    rr = 0
    for name in [p for p in processes if p not in HOT_PATH] + [e for e in extras if e not in processes]:
        section = SECTIONS.get(name, "")
        cpus = tuple(housekeeping)
        why = [WHY_HOUSEKEEPING.get(name, "not on the hot path") + "."]
        if pin_single and section:
            cpus = (order[rr % len(order)],)
            rr += 1
            why.append(f"pinned to CPU {cpus[0]} of the housekeeping CPUs {format_cpulist(housekeeping)} so it "
                       "never lands on a dedicated hot core, which the kernel does not protect")
        elif mode == "shared":
            why.append(f"shares CPUs {format_cpulist(cpus)} with everything; the scheduler balances the load")
        else:
            why.append(f"runs on housekeeping CPUs {format_cpulist(cpus)}, away from the hot cores")
        nice = HOUSEKEEPING_NICE.get(name, 0)  # raising nice is always permitted
        if section:
            why.append("block: off the order path, it needs no spin after each event (backoff's spin cost "
                       "risk half its CPU in e2e, just when the hot path needed the cores)")
        placements.append(Placement(name=name, role="housekeeping", section=section, cpus=cpus,
                                    idle="block" if section else "", nice=nice,
                                    core_kind="shared", why=why))

    notes += _notes(mode, topo, perms, slots, iso_cores, housekeeping, busy, hot_node)
    rank = {n: i for i, n in enumerate(list(processes) + list(extras))}
    placements.sort(key=lambda p: rank.get(p.name, 99))
    proposal = Proposal(mode=mode, hot_node=hot_node if slots else None, hot_cpus=tuple(sorted(hot_cpus)),
                        housekeeping=tuple(housekeeping), placements=placements, notes=notes)
    for v in validate(proposal, topo):
        proposal.notes.append("WARNING: " + v)
    return proposal


def _hot_on_core(name: str, cpu: int, core: tuple[int, ...], kind: str, sharing: list[str],
                 topo: Topology, perms: Permissions) -> Placement:
    why: list[str] = []
    where = ("an isolated core (isolcpus: the scheduler puts nothing else there)" if kind == "isolated"
             else "a dedicated core (every other process is pinned elsewhere)")
    if cpu in topo.nohz_full:
        where += ", with nohz_full so the tick does not interrupt it"
    why.append(f"hot path: CPU {cpu} is {where}, on NUMA node {topo.node_of(cpu)} with the rest of the hot path")
    siblings = [c for c in core if c != cpu]
    if siblings:
        why.append(f"its SMT sibling{'s' if len(siblings) > 1 else ''} {format_cpulist(siblings)} "
                   f"{'stay' if len(siblings) > 1 else 'stays'} idle: a sibling shares the core's caches "
                   "and execution units")
    if len(sharing) == 1:
        why.append("alone on its core, so it may busy-spin: the lowest wake-up latency, one whole core at 100%")
        why.append("spin runs under the normal scheduler, never SCHED_FIFO: alone on the core FIFO gains "
                   "nothing, and a spinning FIFO process is stopped by RT throttling (see the note above)")
        return Placement(name=name, role="hot", section=SECTIONS.get(name, ""), cpus=(cpu,), idle="spin",
                         core_kind=kind, why=why)
    others = ", ".join(s for s in sharing if s != name)
    why.append(f"shares the core with {others} (not enough free cores for one each), so it must not spin: "
               "backoff blocks when idle and hands the core over")
    policy, prio, nice = _shared_sched(perms, why)
    return Placement(name=name, role="hot", section=SECTIONS.get(name, ""), cpus=(cpu,), idle="backoff",
                     policy=policy, priority=prio, nice=nice, core_kind=kind, why=why)


def _hot_shared(name: str, cpus: tuple[int, ...], topo: Topology, perms: Permissions) -> Placement:
    why = [f"hot path, but {len(topo.usable or topo.cpus)} usable CPU(s) and no isolated core are too few to "
           "give it two cores of its own and keep one for everything else, so it is not pinned "
           f"(cpus {format_cpulist(cpus)}): the scheduler runs it on whichever CPU is free",
           "shares its CPUs with every other process, so it must not spin: backoff spins briefly, then "
           "blocks on its semaphore and is woken in microseconds"]
    policy, prio, nice = _shared_sched(perms, why)
    return Placement(name=name, role="hot", section=SECTIONS.get(name, ""), cpus=cpus, idle="backoff",
                     policy=policy, priority=prio, nice=nice, core_kind="shared", why=why)


def _shared_sched(perms: Permissions, why: list[str]) -> tuple[str, int, int]:
    if perms.fifo_allowed:
        prio = min(FIFO_PRIORITY, perms.fifo_max_priority)
        why.append(f"SCHED_FIFO {prio}: it blocks when idle, so it preempts ordinary work the moment an "
                   "event arrives and gives the CPU back; measured here a blocking consumer under "
                   "SCHED_FIFO holds p99 near 10 us")
        return "fifo", prio, 0
    if perms.min_nice < 0:
        nice = max(HOT_NICE, perms.min_nice)
        why.append(f"SCHED_FIFO is not permitted here, so nice {nice} gives it the larger share of a busy CPU")
        return "other", 0, nice
    why.append("neither SCHED_FIFO nor a lower nice is permitted for this user (needs CAP_SYS_NICE, "
               "RLIMIT_RTPRIO or RLIMIT_NICE): default priority")
    return "other", 0, 0


def _notes(mode: str, topo: Topology, perms: Permissions, slots: list[tuple[int, ...]],
           iso_cores: list[tuple[int, ...]], housekeeping: list[int], busy: int | None,
           hot_node: int | None) -> list[str]:
    notes: list[str] = []
    if mode == "shared":
        notes.append(f"{len(topo.cpus)} CPU(s) and no isolated cores: everything shares; nothing is pinned "
                     "to a single CPU and no process spins, because a spinning process on a shared core "
                     "takes the CPU from the very process that would hand it work")
        if busy is not None and len(topo.cpus) > 1:
            notes.append(f"CPU {busy} takes most interrupts; since nothing is pinned, the scheduler moves work "
                         "off it while it services them (no hot process is tied to it)")
    else:
        n_iso = sum(1 for s in slots if s in iso_cores)
        notes.append(f"hot path on {len(slots)} core(s) of NUMA node {hot_node} ({n_iso} isolated, "
                     f"{len(slots) - n_iso} dedicated): one node, so its rings stay in local memory")
        if busy is not None:
            notes.append(f"CPU {busy} takes most interrupts: it is a housekeeping CPU, never a hot one")
        if topo.isolated and not iso_cores:
            notes.append("isolcpus is set but no isolated CPU is usable by this process (cpuset)")
    if mode != "isolated" and len(topo.cpus) >= 4:
        notes.append("for lower jitter boot with isolcpus=<hot cpus> nohz_full=<hot cpus> and rerun this script")
    notes.append(throttle_text(perms))
    return notes


def validate(proposal: Proposal, topo: Topology) -> list[str]:
    """Broken layout rules, as sentences (empty when the layout keeps every rule)."""
    bad: list[str] = []
    by_core: dict[tuple[int, ...], set[str]] = {}
    for p in proposal.placements:
        for c in p.cpus:
            by_core.setdefault(topo.core_of(c), set()).add(p.name)
    for p in proposal.placements:
        if p.idle == "spin" and p.policy == "fifo":
            bad.append(f"{p.name}: spin under SCHED_FIFO")
        if p.idle == "spin":
            if len(p.cpus) != 1 or by_core.get(topo.core_of(p.cpus[0]), set()) != {p.name}:
                bad.append(f"{p.name}: spins on a core it shares")
            elif p.cpus[0] not in topo.isolated and p.core_kind != "dedicated":
                bad.append(f"{p.name}: spins on a core that is neither isolated nor dedicated")
    hot = [p for p in proposal.placements if p.role == "hot" and len(p.cpus) == 1]
    if len({topo.node_of(p.cpus[0]) for p in hot}) > 1:
        bad.append("hot path spans NUMA nodes")
    for i, a in enumerate(hot):
        for b in hot[i + 1:]:
            if a.cpus[0] != b.cpus[0] and topo.core_of(a.cpus[0]) == topo.core_of(b.cpus[0]):
                bad.append(f"{a.name} and {b.name} are on SMT siblings of one core")
    return bad
