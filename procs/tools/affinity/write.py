"""The affinity settings the processes read at start, as a TOML fragment for b25.toml.

Each process gets a ``[<section>.runtime]`` table (``procs.core.agent.Runtime``): ``cpu`` (the
CPU it pins itself to, -1 = not pinned), ``idle`` (its idle strategy alias) and ``sched``
("fifo:N" / "nice:N": the policy it puts itself under, so a restarted process gets it back without
``--apply``). A field the process does not read (``idle`` of an asyncio process) is written as a
comment instead, because the runtime table refuses it and the process would not start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from procs.core.services import section_types

from .layout import Proposal
from .topology import format_cpulist

SECTION_TYPES = section_types()  # section -> "module:Class", from the service table


def section_fields(section: str) -> set[str] | None:
    """The runtime fields the process behind ``[section]`` reads (cpu, sched and its agent's);
    None when its config type cannot be imported."""
    path = SECTION_TYPES.get(section)
    if path is None:
        return None
    module, _, cls = path.partition(":")
    try:
        import msgspec

        typ = getattr(importlib.import_module(module), cls)
        runtime = next((f for f in msgspec.structs.fields(typ) if f.name == "runtime"), None)
    except Exception:  # broken: emit every field and let the reader decide
        return None
    if runtime is None:
        return set()
    return {"cpu", "sched", *runtime.type.agent_fields}


def note_unread_fields(proposal: Proposal, fields_of: Callable[[str], set[str] | None] = section_fields) -> None:
    """Add a reason to each placement whose section cannot take its ``cpu`` or ``idle`` yet."""
    for p in proposal.placements:
        known = fields_of(p.section) if p.section else None
        if known is None:
            continue
        if "cpu" not in known:
            p.why.append(f"[{p.section}.runtime] has no cpu field: the process does not pin itself; only --apply "
                         "places it")
        if (p.policy == "fifo" or p.nice) and "sched" not in known:
            p.why.append(f"[{p.section}.runtime] has no sched field: only --apply sets its scheduling, and a "
                         "restart loses it")
        if p.idle and "idle" not in known:
            p.why.append(f"[{p.section}.runtime] has no idle field: the process keeps its built-in idle behaviour")


def to_toml(proposal: Proposal, fields_of: Callable[[str], set[str] | None] = section_fields,
            header: str = "") -> str:
    """The TOML fragment: one ``[<section>.runtime]`` table per process with ``cpu``, ``idle`` and
    ``sched`` (the policy the process applies to itself at start; ``""`` = the normal scheduler)."""
    lines = ["# CPU layout from scripts/tune_affinity.py" + (f" ({header})" if header else ""),
             f"# mode: {proposal.mode}; hot path CPUs {format_cpulist(proposal.hot_cpus)}; housekeeping CPUs "
             f"{format_cpulist(proposal.housekeeping)}",
             "# Merge these keys into the matching sections of b25.toml (a TOML file may not repeat a table).",
             "# cpu = -1: the process does not pin itself; it keeps the mask supervisord gives it.", ""]
    for p in proposal.placements:
        if not p.section:
            continue
        known = fields_of(p.section)
        lines.append(f"[{p.section}.runtime]  # {p.name}: {p.role}, {p.sched_text()}")
        # sched = "" is written too: merged into b25.toml it must replace the hot path's "fifo:10"
        # (a spin placement left under SCHED_FIFO would starve its neighbours; the configs refuse it)
        sched = (f'"fifo:{p.priority}"' if p.policy == "fifo" else f'"nice:{p.nice}"' if p.nice else '""')
        for key, value in (("cpu", str(p.cpu)), ("idle", f'"{p.idle}"' if p.idle else ""), ("sched", sched)):
            if not value or (value == '""' and known is not None and key not in known):
                continue
            if known is None or key in known:
                lines.append(f"{key} = {value}")
            else:
                lines.append(f"# {key} = {value}  (not read by {p.name}: [{p.section}.runtime] has no {key} field)")
        lines.append("")
    return "\n".join(lines)
