"""Configuration: one TOML file per deployment decoded into frozen msgspec Structs.

Every section is a ``Section`` subclass (frozen, kw_only, forbid_unknown_fields) with its
defaults in code. A bad file fails at start with ``ConfigError`` naming the field and reason.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from .services import known_sections


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section."""


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, field and reason."""


T = TypeVar("T")

# Every top-level section a deployment file may have; a misspelled one ([riks]) would otherwise
# be ignored silently and its process would run on defaults.
KNOWN_SECTIONS = known_sections()

# Fields a section no longer has, and where they live now: an older file fails naming both
# instead of with a bare "unknown field".
MOVED_FIELDS: dict[str, dict[str, str]] = {
    section: {f: f"[{section}.runtime] {f} (one runtime struct per service)"
              for f in ("cpu", "idle", "sched", "keep_warm_ms")}
    for section in ("sim", "market_data", "strategy", "execution", "risk", "bridge", "monitor", "alerts", "web")
}
for section in ("sim", "execution"):
    MOVED_FIELDS[section]["clock_instance"] = (f"[{section}] sim_clock = true (the replay clock has one name; "
                                               "it is the process's own --instance)")
MOVED_FIELDS["market_data"].update({"symbols": "[deploy] symbols (every process reads them there)",
                                    "depth": "[deploy] depth (every process reads it there)"})


def read_toml(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: path={p}") from None
    return parse(data, str(p))


def parse(data: bytes, where: str) -> dict[str, Any]:
    """The deployment file's bytes as a TOML document; ConfigError names ``where`` and the reason
    (not TOML, an unknown section, a field that moved)."""
    try:
        doc = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file is not valid TOML: path={where} reason={exc}") from None
    unknown = sorted(set(doc) - KNOWN_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section in config: path={where} section=[{unknown[0]}] "
                          f"known={','.join(sorted(KNOWN_SECTIONS))}")
    moved = moved_fields(doc, where)
    if moved:
        raise ConfigError(moved[0])
    return doc


def moved_fields(doc: dict[str, Any], where: str) -> list[str]:
    """One error per field of ``doc`` that moved elsewhere (``MOVED_FIELDS``)."""
    out = []
    for section, fields in MOVED_FIELDS.items():
        table = doc.get(section)
        for field, dest in fields.items():
            if isinstance(table, dict) and field in table:
                out.append(f"invalid config {where} section [{section}] field {field}: moved to {dest}")
    return out


def convert(data: dict[str, Any], typ: type[T], where: str = "") -> T:
    """Decode a dict into a Section type; ConfigError reads ``invalid config <where> field <f>: <reason>``
    (``where`` names the file and section, ``f`` the field's dotted path inside the section)."""
    try:
        return msgspec.convert(data, typ)
    except msgspec.ValidationError as exc:
        field, reason = describe(str(exc))
        raise ConfigError(f"invalid config {where}{f' field {field}' if field else ''}: {reason}") from None


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_NAMED = re.compile(r"(?<![\w.])(?P<name>[a-z_][a-z0-9_]*)=")


def describe(message: str) -> tuple[str, str]:
    """(field, reason) from a msgspec validation message: the ``- at `$.a[0].b``` suffix gives the
    path, an unknown field or the one ``name=value`` a check's message shows gives its last part."""
    m = _AT.match(message)
    assert m is not None  # the pattern matches any text
    reason, path = m["reason"].strip(), (m["path"] or "").lstrip(".")
    unknown = _UNKNOWN.search(reason)
    if unknown:
        return ".".join(p for p in (path, unknown["name"]) if p), reason
    named = {n["name"] for n in _NAMED.finditer(reason)}
    if len(named) == 1 and not path.endswith(next(iter(named))):
        path = ".".join(p for p in (path, next(iter(named))) if p)
    return path, reason


def load_section(path: str | Path | None, name: str, typ: type[T]) -> T:
    """Load one ``[name]`` section of a TOML file into ``typ`` (defaults when absent)."""
    data = read_toml(path)
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"invalid config {path}: section [{name}] must be a table")
    return convert(section, typ, f"{path} section [{name}]")


def config_hash(path: str | Path | None) -> str:
    """sha256 of the file bytes, so an operator can see which version is applied."""
    if path is None:
        return "defaults"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
