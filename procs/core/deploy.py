"""Deployment facts every process shares, read from the one TOML file.

The symbol list and book depth come from ``[market_data]``: ``symbol_id`` in every ring record
is the index into that list, and the ring dtypes depend on the depth, so all processes must
read them from the same place.
"""

from __future__ import annotations

from pathlib import Path

from .config import load_section


def symbols(config: str | Path | None) -> list[str]:
    from procs.market_data.config import MarketDataConfig

    return list(load_section(config, "market_data", MarketDataConfig).symbols)


def depth(config: str | Path | None) -> int:
    from procs.market_data.config import MarketDataConfig

    return load_section(config, "market_data", MarketDataConfig).depth
