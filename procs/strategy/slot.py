"""Slot: one running strategy instance with what it was built from (the engine's routes and the
keep-warm scratch path hold these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .api import Strategy, StrategyApi
from .config import StrategyEntry
from .loader import Plugin


@dataclass
class Slot:
    """One running strategy instance with what it was built from."""

    entry: StrategyEntry
    plugin: Plugin
    strategy: Strategy
    api: StrategyApi
    paused: bool = False
    timers: dict[int, list[int]] = field(default_factory=dict)  # token -> [deadline_ns, interval_ns]

    @property
    def id(self) -> str:
        return self.entry.id
