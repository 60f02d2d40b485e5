"""Deployment facts every process shares, read from the one TOML file.

The symbol list and book depth come from ``[market_data]``: ``symbol_id`` in every ring record
is the index into that list, and the ring dtypes depend on the depth, so all processes must
read them from the same place.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from .config import load_section
from .instruments import Instrument, load_exchange_info

DEFAULT_EXCHANGE_INFO = Path(__file__).resolve().parents[1] / "exchange_sim" / "exchange_info_default.json"


def symbols(config: str | Path | None) -> list[str]:
    from procs.market_data.config import MarketDataConfig

    return list(load_section(config, "market_data", MarketDataConfig).symbols)


def depth(config: str | Path | None) -> int:
    from procs.market_data.config import MarketDataConfig

    return load_section(config, "market_data", MarketDataConfig).depth


def instruments(config: str | Path | None) -> dict[str, Instrument]:
    """exchangeInfo from [market_data] exchange_info, else the venue's REST, else the simulator's default."""
    from procs.market_data.config import MarketDataConfig

    md = load_section(config, "market_data", MarketDataConfig)
    if md.exchange_info:
        return load_exchange_info(md.exchange_info)
    try:
        with urllib.request.urlopen(md.rest_url.rstrip("/") + "/fapi/v1/exchangeInfo", timeout=2) as r:
            return load_exchange_info(json.loads(r.read()))
    except (OSError, ValueError):
        return load_exchange_info(DEFAULT_EXCHANGE_INFO)
