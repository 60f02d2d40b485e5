"""The strategies the deployment runs, from the ``[strategy]`` section of its config file.

Ring records carry a strategy's number (``OrderIntent.strategy_id``: crc32 of its id unless
``num`` is set); the TUI shows the id instead, and the strategy tab lists each entry's class,
symbols and parameters. The file is re-read when it changes (a reload by ``R`` or SIGHUP
follows an edit), and a file that no longer parses keeps the last good roster with the error.
"""

from __future__ import annotations

import os
from pathlib import Path

from procs.core.config import ConfigError, load_section
from procs.strategy.config import StrategyEngineConfig, StrategyEntry


def _param_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


class StrategyRoster:
    def __init__(self, config: str | Path | None) -> None:
        self.path = Path(config) if config else None
        self.entries: list[StrategyEntry] = []
        self.error = ""
        self._mtime = -1.0
        self._names: dict[int, str] = {}
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the roster changed."""
        if self.path is None:
            return False
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror}"
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            cfg = load_section(self.path, "strategy", StrategyEngineConfig)
        except (ConfigError, ValueError) as exc:
            self.error = str(exc)  # keep showing the last good roster
            return False
        self.error = ""
        self.entries = list(cfg.strategies)
        self._names = {e.number: e.id for e in self.entries}
        return True

    def name(self, num: int) -> str:
        """The strategy id for a ring record's ``strategy_id`` (the number itself if unknown)."""
        return self._names.get(num, str(num))

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(id, on/off, class, symbols, params) per configured strategy."""
        return [(e.id, "on" if e.enabled else "off", e.class_path.rpartition(":")[2], ",".join(e.symbols),
                 _param_text(e.params)) for e in self.entries]
