"""Put a config version into service: validate it, write it, reload what can reload, name the rest.

``validate`` decodes every section with the same types and errors as start-up. ``apply`` (what
``b25 config rollback`` and ``POST /api/config/rollback`` / ``/api/config/reload`` run):

1. validates the new bytes; a bad file changes nothing;
2. writes them over the deployment file (atomically, mode kept) and keeps the version
   (``procs.core.versions``) with the source, operator and reason;
3. per running service, compares the version it runs (its status block's config hash) with the
   new one (``procs.core.reload.plan``): a reloadable change is sent as SIGHUP and confirmed
   when the process's status shows the new hash; a restart-only change is named (process and
   fields) and restarted through supervisorctl only when asked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import services
from .config import KNOWN_SECTIONS, ConfigError, convert, moved_fields, parse
from .reload import ServicePlan, plan
from .status import read_status
from .versions import VersionStore, sha256

# services whose process reloads on SIGHUP (the other services' changes need a restart)
RELOADS = ("risk", "strategy", "notifier", "monitor", "market_data", "execution")
MAX_REASON = 300  # characters of a reason kept in the index (one line each)


def validate(data: bytes, where: str) -> list[str]:
    """Every problem of the file, one line each, as start-up would report it ([] = good)."""
    from .deploy import DeployConfig

    try:
        doc = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [f"config file is not valid TOML: path={where} reason={exc}"]
    errors = [f"unknown section in config: path={where} section=[{s}] known={','.join(sorted(KNOWN_SECTIONS))}"
              for s in sorted(set(doc) - KNOWN_SECTIONS)]
    errors += moved_fields(doc, where)
    types: dict[str, Any] = {"deploy": DeployConfig}
    for s in services.SERVICES:
        types.setdefault(s.section, s.load_config_type())
    types["sim_trading"] = _type("procs.exchange_sim.trading.config:TradingConfig")
    types["tui"] = _type("tui.config:TuiConfig")
    for section, typ in types.items():
        table = doc.get(section, {})
        if not isinstance(table, dict):
            errors.append(f"invalid config {where}: section [{section}] must be a table")
            continue
        try:
            convert(table, typ, f"{where} section [{section}]")
        except ConfigError as exc:
            if not any(str(exc).split(": ", 1)[0] in e for e in errors):
                errors.append(str(exc))
    try:
        from procs.venue.adapters import decode_venue

        decode_venue(doc.get("venue", {}), f"{where} section [venue]")
    except ConfigError as exc:
        errors.append(str(exc))
    return errors + _strategy_params(doc, where)


def _strategy_params(doc: dict[str, Any], where: str) -> list[str]:
    """Each enabled strategy's class and params, as the strategy process loads them at start."""
    from procs.strategy.config import StrategyEngineConfig
    from procs.strategy.loader import Loader, decode_params

    try:
        cfg = convert(doc.get("strategy", {}), StrategyEngineConfig, "")
    except ConfigError:
        return []  # reported with the section
    loader, out = Loader(), []
    for e in cfg.strategies:
        if not e.enabled:
            continue
        try:
            plugin = loader.resolve(e.class_path)
            decode_params(plugin.config_cls, e.params, f"{where} section [strategy] id={e.id} class={e.class_path}")
        except ValueError as exc:  # LoadError, ConfigError
            out.append(str(exc))
    return out


def _type(path: str) -> type:
    import importlib

    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass
class Outcome:
    """What happened to one service."""

    service: str
    action: str  # reloaded | restarted | restart needed | refused | not running | unchanged | no answer
    fields: list[str] = field(default_factory=list)  # the fields concerned, as [section] path
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "action": self.action, "fields": self.fields, "detail": self.detail}


@dataclass
class Applied:
    """The version written and what each service did with it."""

    seq: int
    sha256: str
    outcomes: list[Outcome]

    @property
    def complete(self) -> bool:
        """Every running service runs the new version (nothing waits for a restart)."""
        return all(o.action in ("reloaded", "restarted", "unchanged", "not running") for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "sha256": self.sha256, "complete": self.complete,
                "services": [o.as_dict() for o in self.outcomes]}


def _names(changes: list[Any]) -> list[str]:
    out = []
    for ch in changes:
        section, _, rest = ch.path.partition(".")
        out.append(f"[{section}] {rest}" if rest else f"[{section}]")
    return out


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (same mode; a reader sees the old or the new file, never half)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def running_docs(store: VersionStore, instance: str, fallback: dict[str, Any]) -> dict[str, tuple[dict, str]]:
    """Per running service: (the TOML it runs, its config hash); a version the store does not
    hold counts as ``fallback`` (the file as it was before this apply)."""
    out = {}
    for s in services.SERVICES:
        if s.external:
            continue
        st = read_status(instance, s.name)
        if st is None or not st["alive"] or st["state"] not in ("STARTING", "RUNNING"):
            continue
        v = store.by_hash(st["config_hash"])
        doc = parse(store.data(v.seq), f"version {v.seq}") if v is not None else fallback
        out[s.name] = (doc, st["config_hash"])
    return out


def apply(config_path: str | Path, instance: str, data: bytes, store: VersionStore, *, event: str, source: str,
          operator: str, reason: str, restart: bool = False, supervisorctl: list[str] | None = None,
          timeout_s: float = 5.0) -> Applied:
    """Steps 1-3 of the module docstring; ConfigError (nothing changed) when ``data`` is invalid."""
    path = Path(config_path)
    errors = validate(data, str(path))
    if errors:
        raise ConfigError("\n".join(errors))
    if not reason.strip():
        raise ValueError("a reason is required: reason=''")
    reason = reason[:MAX_REASON]
    new_doc = parse(data, str(path))
    try:  # what runs where the status hash is not in the store; a broken file (why one rolls back) is none
        old_doc = parse(path.read_bytes(), str(path)) if path.exists() else {}
    except ConfigError:
        old_doc = {}
    running = running_docs(store, instance, old_doc)
    write_atomically(path, data)
    ev = store.record(data, event, source, operator, reason)
    new_hash = sha256(data)[:16]
    outcomes = []
    for name in services.NAMES:
        svc = services.service(name)
        if svc.external:
            continue
        if name not in running:
            outcomes.append(Outcome(name, "not running"))
            continue
        doc, current = running[name]
        p = plan(doc, new_doc).get(name, ServicePlan(name))
        outcomes.append(_put(name, p, instance, new_hash, current, source, operator, reason, restart,
                             supervisorctl, timeout_s))
    return Applied(ev.seq, ev.sha256, outcomes)


def _put(name: str, p: ServicePlan, instance: str, new_hash: str, current: str, source: str, operator: str,
         reason: str, restart: bool, supervisorctl: list[str] | None, timeout_s: float) -> Outcome:
    if p.action == "none":
        return Outcome(name, "unchanged")
    if p.action == "restart" or name not in RELOADS:
        fields = _names(p.restart or p.reload)
        if not restart:
            return Outcome(name, "restart needed", fields,
                           f"restart it to apply: supervisorctl restart {name} (or rollback with --restart)")
        return _restart(name, fields, supervisorctl, instance, new_hash, timeout_s)
    # SIGHUP, which every reloading process takes (the notifier and market_data have no control
    # queue); the process reads who asked and why from the event just stored with these bytes
    st = read_status(instance, name)
    try:
        if st is None or not st["alive"]:
            raise ProcessLookupError(f"{name} is not running")
        os.kill(st["pid"], signal.SIGHUP)
    except OSError as exc:
        return Outcome(name, "refused", _names(p.reload), f"could not signal it: {exc}")
    if _wait_hash(instance, name, new_hash, timeout_s):
        return Outcome(name, "reloaded", _names(p.reload))
    return Outcome(name, "no answer", _names(p.reload),
                   f"its status still shows config {current} after {timeout_s:.0f} s: see its log (reload_refused)")


def _wait_hash(instance: str, name: str, new_hash: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = read_status(instance, name)
        if st is not None and st["config_hash"] == new_hash:
            return True
        time.sleep(0.05)
    return False


def _restart(name: str, fields: list[str], supervisorctl: list[str] | None, instance: str, new_hash: str,
             timeout_s: float) -> Outcome:
    cmd = [*(supervisorctl or ["supervisorctl"]), "restart", name]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Outcome(name, "restart needed", fields, f"supervisorctl failed: {exc}")
    if r.returncode != 0:
        return Outcome(name, "restart needed", fields,
                       f"supervisorctl restart {name} exited {r.returncode}: {(r.stdout + r.stderr).strip()}")
    ok = _wait_hash(instance, name, new_hash, max(timeout_s, 30.0))
    return Outcome(name, "restarted" if ok else "no answer", fields,
                   "" if ok else "restarted, but its status does not show the new config yet")
