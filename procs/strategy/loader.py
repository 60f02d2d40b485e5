"""Loading strategy plugins by ``"module:Class"`` and reloading the ones whose code changed.

A plugin module holds a Config + Strategy pair (STYLE.md example 13). The Config struct is the
class attribute ``config_class`` or, failing that, ``<Class>Config`` in the same module; entry
``params`` are decoded into it with msgspec, so an unknown or mistyped parameter fails naming
the field. Code is reloaded with ``importlib.reload`` only when the module's source hash
changed; helper modules from the same directory that were imported and changed are reloaded
first, so a strategy sees its helpers' new code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec

from procs.core.config import ConfigError

from .api import Strategy


class LoadError(ValueError):
    """A strategy that cannot be imported, found or configured; the message says why."""


@dataclass(frozen=True)
class Plugin:
    """A resolved strategy class with its Config type and the code version it came from."""

    module: str
    cls: type[Strategy]
    config_cls: type
    code_hash: str


def source_hash(mod: ModuleType) -> str:
    f = getattr(mod, "__file__", None)
    if not f:
        return ""
    try:
        return hashlib.sha256(Path(f).read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def _file_hash(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def _drop_bytecode(mod: ModuleType) -> None:
    """A source rewritten within the same second with the same size would pass the .pyc
    mtime+size check and reload the old code: remove the cached bytecode first."""
    f = getattr(mod, "__file__", None)
    if not f:
        return
    try:
        os.unlink(importlib.util.cache_from_source(f))
    except (OSError, ValueError, NotImplementedError):
        pass


def decode_params(config_cls: type, params: dict[str, Any], where: str) -> Any:
    try:
        return msgspec.convert(params, config_cls)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid strategy params {where}: {exc}") from None


class Loader:
    """Imports plugins and remembers each module's source hash to know what changed."""

    def __init__(self) -> None:
        self.hashes: dict[str, str] = {}  # module name -> source hash of the code loaded

    def resolve(self, class_path: str, fresh: bool = False) -> Plugin:
        """The plugin for ``"module:Class"``; with ``fresh``, changed code is reloaded first.

        Raises LoadError naming the path and the reason (syntax error, missing class, ...);
        a failed reload leaves the previously loaded class objects untouched and in use.
        """
        modname, _, clsname = class_path.partition(":")
        try:
            mod = sys.modules.get(modname)
            if mod is None:
                mod = importlib.import_module(modname)
            elif fresh:
                mod = self._reload_changed(mod)
        except Exception as exc:  # a plugin can fail to import in any way; report, never raise past here
            raise LoadError(f"cannot import strategy module: class={class_path} "
                            f"reason={type(exc).__name__}: {exc}") from None
        self.hashes.setdefault(modname, source_hash(mod))
        cls = getattr(mod, clsname, None)
        if not isinstance(cls, type) or not issubclass(cls, Strategy):
            raise LoadError(f"not a Strategy class: class={class_path} found={type(cls).__name__}")
        cfg = getattr(cls, "config_class", None) or getattr(mod, f"{clsname}Config", None)
        if not isinstance(cfg, type) or not issubclass(cfg, msgspec.Struct):
            raise LoadError(f"strategy has no Config struct (config_class or {clsname}Config): class={class_path}")
        return Plugin(modname, cls, cfg, self.hashes[modname])

    def _reload_changed(self, mod: ModuleType) -> ModuleType:
        name = mod.__name__
        f = getattr(mod, "__file__", None)
        if f:
            here = os.path.dirname(os.path.abspath(f))
            for other in list(sys.modules.values()):
                of = getattr(other, "__file__", None)
                if (other is mod or not of or os.path.dirname(os.path.abspath(of)) != here
                        or os.path.basename(of) == "__init__.py"):
                    continue
                h = _file_hash(of)
                known = self.hashes.setdefault(other.__name__, h)
                if h != known:
                    _drop_bytecode(other)
                    importlib.reload(other)
                    self.hashes[other.__name__] = h
        h = source_hash(mod)
        if h == self.hashes.get(name, h) and name in self.hashes:
            return mod
        _drop_bytecode(mod)
        importlib.invalidate_caches()
        mod = importlib.reload(mod)
        self.hashes[name] = h
        return mod
