"""Config versions: every config a process starts with or reloads, kept under ``run/config/<instance>/``.

A version is the exact bytes of the deployment file, stored once per content (``NNNNNN.toml``,
0600, never rewritten). ``index.jsonl`` (0600, append-only) holds one line per event: a process
started with or reloaded a version, or an operator rolled back to one; each line has the version's
sequence number and sha256, the time, the source (``file``, ``ops_api``, ``tui``, ``cli``), the
operator, the reason and the process. Processes of one instance append concurrently, under an
``flock``. ``b25 config history|show|diff|rollback`` (``procs.tools.config``) read it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import log

INDEX = "index.jsonl"
SOURCES = ("file", "ops_api", "tui", "cli")


@dataclass(frozen=True)
class Event:
    """One line of the index: what happened to which version, who asked and why."""

    seq: int
    sha256: str
    time: str  # UTC, ISO 8601
    event: str  # "start" | "reload" | "rollback" | "stored"
    source: str  # one of SOURCES
    operator: str = ""
    reason: str = ""
    process: str = ""  # "" = not a process (an operator's rollback, b25 config)
    sections: list[str] = field(default_factory=list)  # what the process applied ([] = all it reads)


@dataclass(frozen=True)
class Version:
    """A stored config: its sequence number, hash, the event that stored it, and who applied it since."""

    seq: int
    sha256: str
    first: Event
    applied: list[Event]

    @property
    def processes(self) -> list[str]:
        return sorted({e.process for e in self.applied if e.process})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class VersionStore:
    """The versions of one instance's config in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    # -- writing ---------------------------------------------------------------------------------
    def record(self, data: bytes, event: str, source: str, operator: str = "", reason: str = "",
               process: str = "", sections: list[str] | None = None) -> Event:
        """Store ``data`` (once per content) and append the event; returns it."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}: source={source!r}")
        digest = sha256(data)
        with self._locked():
            seq = self._seq_of(digest)
            if seq == 0:
                seq = len(self._version_files()) + 1
                self._write_once(self.dir / f"{seq:06d}.toml", data)
            ev = Event(seq, digest, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), event, source,
                       operator, reason, process, list(sections or []))
            fd = os.open(self.dir / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(asdict(ev), separators=(",", ":")) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return ev

    def _write_once(self, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def _version_files(self) -> list[Path]:
        return sorted(self.dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].toml"))

    def _seq_of(self, digest: str) -> int:
        for ev in self.events():
            if ev.sha256 == digest:
                return ev.seq
        return 0

    # -- reading ---------------------------------------------------------------------------------
    def events(self) -> list[Event]:
        """Every index line, oldest first (a torn last line, from a crash mid-write, is skipped)."""
        try:
            lines = (self.dir / INDEX).read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(Event(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out

    def versions(self) -> list[Version]:
        by_seq: dict[int, list[Event]] = {}
        for ev in self.events():
            by_seq.setdefault(ev.seq, []).append(ev)
        return [Version(seq, evs[0].sha256, evs[0], evs) for seq, evs in sorted(by_seq.items())]

    def version(self, seq: int) -> Version:
        for v in self.versions():
            if v.seq == seq:
                return v
        known = [v.seq for v in self.versions()]
        raise KeyError(f"no config version {seq} in {self.dir}: known={known[0] if known else '-'}"
                       f"..{known[-1] if known else '-'}")

    def data(self, seq: int) -> bytes:
        """The exact bytes of version ``seq``; KeyError names the known range."""
        self.version(seq)
        return (self.dir / f"{seq:06d}.toml").read_bytes()

    def by_hash(self, prefix: str) -> Version | None:
        """The version whose sha256 starts with ``prefix`` (a status block's 16-hex config hash)."""
        if not prefix or prefix == "defaults":
            return None
        for v in self.versions():
            if v.sha256.startswith(prefix):
                return v
        return None


DEFAULT_DIR = "run/config"


def store_for(config_path: str | Path | None, instance: str) -> VersionStore:
    """The store of ``instance`` in the deployment's ``[deploy] versions_dir``. Read leniently: a
    file broken elsewhere (the reason to roll back) still names where its versions are."""
    directory = DEFAULT_DIR
    if config_path is not None:
        try:
            doc = tomllib.loads(Path(config_path).read_text())
            given = doc.get("deploy", {}).get("versions_dir", DEFAULT_DIR)
            directory = given if isinstance(given, str) and given else DEFAULT_DIR
        except (OSError, ValueError, AttributeError):
            pass
    return VersionStore(Path(directory) / instance)


def on_start(config_path: str | Path | None, instance: str | None, process: str) -> str:
    """Keep the config ``process`` starts with; returns its hash for the status block (16 hex).

    A store that cannot be written (a read-only disk) is logged and the process starts anyway:
    trading must not depend on the audit trail's disk."""
    if config_path is None:
        return "defaults"
    data = Path(config_path).read_bytes()
    if instance:
        try:
            store_for(config_path, instance).record(data, "start", "file", reason="start", process=process)
        except (OSError, ValueError) as exc:
            log.warn("config_version_not_stored", path=str(config_path), reason=str(exc))
    return sha256(data)[:16]


def on_reload(config_path: str | Path | None, instance: str | None, process: str, data: bytes, source: str,
              operator: str, reason: str, sections: list[str]) -> str:
    """Keep ``data``, the config a reload just applied; returns its hash for the status block."""
    if instance and config_path is not None:
        try:
            store_for(config_path, instance).record(data, "reload", source if source in SOURCES else "file",
                                                    operator, reason, process, sections)
        except (OSError, ValueError) as exc:
            log.warn("config_version_not_stored", path=str(config_path), reason=str(exc))
    return sha256(data)[:16]
