"""What a running process can take on reload, and what needs a restart.

Each section's Struct says which of its fields need a restart (``restart_only``, a ClassVar): every
other field is read where it is used, so a reload that swaps the section object applies it. A
section without ``restart_only`` is not reloadable: every change to it needs a restart. Nested
tables count as their top-level field (``[risk.default] max_position`` is ``default``).

``changes`` compares two decoded files field by field; ``plan`` says, per service, what it can
reload and what needs its restart. The processes refuse a reload that changes a restart-only
field (``refusal``), naming it, and ``b25 config rollback`` uses ``plan`` to tell the operator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import services

SHARED = ("deploy", "venue")
ASKED_WITHIN_S = 60  # a SIGHUP takes who and why from an operator's event at most this old  # sections every process reads at start: a change needs restarts


def restart_only(section_type: type) -> frozenset[str] | None:
    """The fields of ``section_type`` that need a restart; None = every field (not reloadable)."""
    return getattr(section_type, "restart_only", None)


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """A TOML document as ``{"risk.default.max_position": "0.5", "strategy.strategies[0].id": ...}``."""
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(doc, list) and any(isinstance(v, dict) for v in doc):
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = doc
    return out


@dataclass(frozen=True)
class Change:
    """One field that differs: its dotted path, the old and new value (None = absent, the default)."""

    path: str
    old: Any
    new: Any

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0].split("[", 1)[0]

    @property
    def top_field(self) -> str:
        """The section's top-level field the change is in (``default`` for ``risk.default.max_position``)."""
        rest = self.path.split(".", 1)[1] if "." in self.path else ""
        return rest.split(".", 1)[0].split("[", 1)[0]


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every field whose value differs between two TOML documents, in path order."""
    a, b = flatten(old), flatten(new)
    return [Change(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


@dataclass
class ServicePlan:
    """What one service must do to run a new config."""

    service: str
    reload: list[Change] = field(default_factory=list)  # fields a reload applies
    restart: list[Change] = field(default_factory=list)  # fields only a restart applies

    @property
    def action(self) -> str:
        return "restart" if self.restart else "reload" if self.reload else "none"


def _readers(section: str) -> list[str]:
    """Services that read ``section`` (their own section, or a shared one every process reads)."""
    if section in SHARED:
        return [s.name for s in services.SERVICES if not s.external]
    return [s.name for s in services.SERVICES if section in s.sections and not s.external]


def plan(old: dict[str, Any], new: dict[str, Any]) -> dict[str, ServicePlan]:
    """Per service that a change concerns: the changes it reloads and the ones that need its restart."""
    out: dict[str, ServicePlan] = {}
    for ch in changes(old, new):
        for name in _readers(ch.section):
            svc = services.service(name)
            p = out.setdefault(name, ServicePlan(name))
            if ch.section in SHARED or ch.section != svc.section:
                p.restart.append(ch)
                continue
            fixed = restart_only(svc.load_config_type())
            (p.restart if fixed is None or ch.top_field in fixed or not ch.top_field else p.reload).append(ch)
    return out


def refusal(section: str, section_type: type, old: dict[str, Any], new: dict[str, Any]) -> str:
    """Why a process refuses to reload ``section`` from ``old`` to ``new`` ("" = it may): the
    restart-only fields that changed, named ``[section] field``."""
    fixed = restart_only(section_type)
    wrapped_old, wrapped_new = {section: old}, {section: new}
    bad = sorted({ch.top_field or ch.path for ch in changes(wrapped_old, wrapped_new)
                  if fixed is None or ch.top_field in fixed or not ch.top_field})
    if not bad:
        return ""
    return (f"reload refused: [{section}] {', '.join(bad)} can only change with a restart "
            f"(restart-only field{'s' if len(bad) > 1 else ''}); nothing was applied")


class Hangup:
    """SIGHUP as a flag, caught from the first moment (the default action would end the process):
    the agent's loop reloads when it sees ``seen`` (``supervisorctl signal HUP <name>``)."""

    def __init__(self) -> None:
        import signal

        self.seen = False
        signal.signal(signal.SIGHUP, self)

    def __call__(self, _signum: int, _frame: object = None) -> None:
        self.seen = True

    def take(self) -> bool:
        """True once per SIGHUP (or burst of them) since the last call."""
        seen, self.seen = self.seen, False
        return seen


@dataclass
class Reloader:
    """One process's side of a reload: re-read its section from the file, refuse a change to a
    restart-only field (naming it), and keep the version it applied (``procs.core.versions``).

    ``decode(doc, where)`` turns the file's TOML into the section's Struct, as start-up does.
    A reload triggered by SIGHUP takes the operator, reason and source of the operator's tool
    (``b25 config``, the ops API, the TUI) from the store's newest event for the same bytes."""

    config_path: str | None
    instance: str | None
    process: str
    section: str
    section_type: type
    current: Any
    decode: Any = None  # Callable[[dict, str], Section]; None = the section's table converted
    check: Any = None  # Callable[[Section], object]: a further start-up check (ValueError = refused)

    def read(self) -> tuple[Any, bytes] | str:
        """(the new section, the file's bytes), or why the reload is refused (a bad file or a
        restart-only field changed); nothing is applied either way."""
        from .config import ConfigError, convert, parse

        if self.config_path is None:
            return "reload refused: the process runs on defaults (no --config)"
        where = str(self.config_path)
        try:
            data = Path(self.config_path).read_bytes()
            doc = parse(data, where)
            table = doc.get(self.section, {})
            new = (self.decode(doc, where) if self.decode is not None
                   else convert(table, self.section_type, f"{where} section [{self.section}]"))
            if self.check is not None:
                self.check(new)
        except (OSError, ConfigError, ValueError) as exc:
            return f"reload refused, nothing applied: {exc}"
        fixed = restart_only(self.section_type)
        changed = [f for f in self.section_type.__struct_fields__ if getattr(new, f) != getattr(self.current, f)]
        bad = changed if fixed is None else [f for f in changed if f in fixed]
        if bad:
            return (f"reload refused: [{self.section}] {', '.join(bad)} can only change with a restart "
                    f"(restart-only field{'s' if len(bad) > 1 else ''}); nothing was applied")
        return new, data

    def take(self, operator: str = "") -> tuple[Any, bytes] | None:
        """``read()``, with a refusal logged (``reload_refused``) and None returned for it."""
        from . import log

        got = self.read()
        if isinstance(got, str):
            log.warn("reload_refused", reason=got, operator=operator)
            return None
        return got

    def applied(self, new: Any, data: bytes, source: str = "", operator: str = "", reason: str = "") -> str:
        """Keep the version now running and return its hash for the status block."""
        from . import log
        from .versions import on_reload, sha256, store_for

        changed = [f for f in self.section_type.__struct_fields__ if getattr(new, f) != getattr(self.current, f)]
        self.current = new
        if not source and self.instance and self.config_path is not None:
            try:  # a SIGHUP: who asked, from the tool that wrote the file just before (this minute)
                mine, since = sha256(data), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ASKED_WITHIN_S))
                asked = [e for e in store_for(self.config_path, self.instance).events()
                         if e.sha256 == mine and not e.process and e.time >= since]
                if asked:
                    source, operator, reason = asked[-1].source, asked[-1].operator, asked[-1].reason
            except (OSError, ValueError):
                pass
        log.info("config_reloaded", section=self.section, changed=changed, source=source or "file",
                 operator=operator, reason=reason or "SIGHUP")
        return on_reload(self.config_path, self.instance, self.process, data, source or "file", operator,
                         reason or "SIGHUP", [self.section])
