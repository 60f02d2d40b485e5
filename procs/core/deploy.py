"""Deployment facts every process shares, read from the one TOML file.

The symbol list and book depth come from ``[market_data]``: ``symbol_id`` in every ring record
is the index into that list, and the ring dtypes depend on the depth, so all processes must
read them from the same place.
"""

from __future__ import annotations

from pathlib import Path

from .config import load_section
from .instruments import Instrument

DEFAULT_EXCHANGE_INFO = Path(__file__).resolve().parents[1] / "exchange_sim" / "exchange_info_default.json"


def symbols(config: str | Path | None) -> list[str]:
    from procs.market_data.config import MarketDataConfig

    return list(load_section(config, "market_data", MarketDataConfig).symbols)


def depth(config: str | Path | None) -> int:
    from procs.market_data.config import MarketDataConfig

    return load_section(config, "market_data", MarketDataConfig).depth


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
