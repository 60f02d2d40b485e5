"""The adapters b25 has: ``[venue] kind`` -> its config struct and its adapter.

A new venue adds its config struct to ``VENUE_CONFIGS``; its ``adapter`` module (named by the
struct) exposes ``Adapter(cfg)``, which implements ``procs.venue.protocols.Venue``.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from procs.core.config import ConfigError, convert, read_toml
from procs.venue.binance.config import BinanceUsdmConfig
from procs.venue.config import VenueConfig
from procs.venue.messages import VenueInfo

if TYPE_CHECKING:
    from procs.venue.protocols import Venue

VENUE_CONFIGS = BinanceUsdmConfig  # a Union of every adapter's config once there are several
DEFAULT_KIND = "binance_usdm"


def venue_config(path: str | Path | None) -> VenueConfig:
    """The ``[venue]`` section of a deployment file, decoded by its ``kind`` (defaults when absent)."""
    section = read_toml(path).get("venue", {})
    if not isinstance(section, dict):
        raise ConfigError(f"invalid config {path}: section [venue] must be a table")
    return decode_venue(section, f"{path} section [venue]")


def decode_venue(section: dict, where: str = "section [venue]") -> VenueConfig:
    """A ``[venue]`` table decoded by its ``kind``; ConfigError naming ``where``, the field and why."""
    return convert({"kind": DEFAULT_KIND, **section}, VENUE_CONFIGS, where)  # type: ignore[arg-type]


def venue_at(rest_url: str, ws_url: str, section: dict | None = None) -> dict:
    """A ``[venue]`` table for a venue served at ``rest_url`` / ``ws_url`` (a simulator on free
    ports): ``section`` with its endpoints moved there, each keeping its kind's path."""
    section = dict(section or {})
    api = decode_venue(section).ws_api_url
    section.update(rest_url=rest_url, ws_stream_url=ws_url,
                   ws_api_url=ws_url.rstrip("/") + urlsplit(api).path if api else "")
    return section


def open_venue(cfg: VenueConfig) -> Venue:
    """The adapter for ``cfg``'s kind (imported only when asked for)."""
    return importlib.import_module(type(cfg).adapter).Adapter(cfg)  # type: ignore[attr-defined]


async def info_in_thread(venue: Venue, should_stop: Callable[[], bool]) -> VenueInfo | None:
    """``venue.info(should_stop)`` from an asyncio process: the fetch runs in a daemon thread (a
    stop while it waits cancels the await; the thread ends at its next look at ``should_stop``)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[VenueInfo | None] = loop.create_future()

    def fetch() -> None:
        try:
            info = venue.info(should_stop)
        except Exception as exc:  # handed to the awaiting task as it is
            loop.call_soon_threadsafe(lambda e=exc: done.done() or done.set_exception(e))
            return
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(info))

    threading.Thread(target=fetch, name="venue-info", daemon=True).start()
    return await done
