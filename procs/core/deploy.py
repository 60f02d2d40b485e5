"""The ``[deploy]`` section: deployment facts every process shares, read from the one TOML file.

``symbols`` and ``depth`` live here because every process must agree on them: ``symbol_id`` in
every ring record is the index into the symbol list, and the book rings' record layout depends
on the depth. ``rings`` sizes the rings (``procs.core.registry``); a producer creates its ring
with that capacity and consumers read it from the segment's header, so all of them agree.

```toml
[deploy]
sim = true                       # run the embedded exchange simulator (supervisord's exchange_sim)
symbols = ["BTCUSDT", "ETHUSDT"] # symbol_id = the index in this list
depth = 20                       # book levels per side in every BookUpdate record
versions_dir = "run/config"      # the config versions, per instance (procs/core/versions.py)

[deploy.rings]                   # records per ring, each a power of two (procs/core/registry.py)
md_book = 4096
exec = 8192
```
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from . import messages as M
from .config import Section, load_section
from .instruments import Instrument
from .registry import RingCapacities, build_registry

DEFAULT_EXCHANGE_INFO = Path(__file__).resolve().parents[1] / "exchange_sim" / "exchange_info_default.json"
SECTION = "deploy"
_SYMBOL = re.compile(r"^[A-Z0-9]+$")


class DeployConfig(Section):
    """What every process of one deployment shares."""

    sim: bool = True  # run the embedded simulator; false against a real venue ([venue] says where)
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"])
    depth: int = M.DEFAULT_DEPTH  # levels per side in BookUpdate records
    rings: RingCapacities = msgspec.field(default_factory=RingCapacities)
    # every config a process starts with or reloads is kept in <versions_dir>/<instance>/
    # (procs/core/versions.py; b25 config history|show|diff|rollback)
    versions_dir: str = "run/config"  # procs.core.versions.DEFAULT_DIR

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol: symbols=[]")
        if len(self.symbols) > M.MAX_SYMBOLS:
            raise ValueError(f"at most {M.MAX_SYMBOLS} symbols (the per-symbol arrays of risk.state): "
                             f"symbols={len(self.symbols)} names")
        bad = [s for s in self.symbols if not _SYMBOL.match(s)]
        if bad:
            raise ValueError(f"symbols are upper-case letters and digits, as the venue lists them: symbols={bad}")
        dup = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
        if dup:
            raise ValueError(f"symbols must be unique (symbol_id is the index): symbols={self.symbols}")
        if not 1 <= self.depth <= 1000:
            raise ValueError(f"depth must be 1..1000: depth={self.depth}")

    def shared(self) -> tuple[list[str], int, RingCapacities]:
        """(symbols, depth, rings): what a process's settings take from this section."""
        return list(self.symbols), self.depth, self.rings


def load(config: str | Path | None) -> DeployConfig:
    """``[deploy]`` (defaults when absent); ConfigError names the file, section, field and reason."""
    return load_section(config, SECTION, DeployConfig)


def symbols(config: str | Path | None) -> list[str]:
    return list(load(config).symbols)


def depth(config: str | Path | None) -> int:
    return load(config).depth


def registry(config: str | Path | None):  # -> shm.registry.Registry
    """The ring registry of this deployment: its depth and ring capacities."""
    d = load(config)
    return build_registry(d.depth, d.rings)


def instruments(config: str | Path | None) -> dict[str, Instrument]:
    """The venue's instruments (``[venue] exchange_info``, else asked once), else the simulator's default list."""
    from procs.venue.adapters import open_venue, venue_config

    venue = open_venue(venue_config(config))
    try:
        info = venue.info(attempts=1, timeout_s=2.0)
    except (OSError, ValueError):
        info = venue.read_info(DEFAULT_EXCHANGE_INFO)
    assert info is not None  # attempts=1: an answer or an error
    return info.instruments
