"""Starting the risk process: its settings from the config file, the instruments from the venue
(a file or asked), then the ``RiskAgent`` (``procs.core.agent.run_process`` runs it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from procs.core import deploy
from procs.core.agent import StartFailed, Startup
from procs.core.config import ConfigError, load_section
from procs.core.instruments import Instrument
from procs.core.registry import RingCapacities
from procs.core.reload import Hangup
from procs.venue.adapters import open_venue, venue_config
from procs.venue.protocols import AccountSource, Venue

from .agent import PROC, RiskAgent
from .config import RiskConfig


@dataclass(frozen=True)
class RiskSettings:
    """What the risk process reads from the config file (and the environment), checked before it starts."""

    config_path: str | None
    risk: RiskConfig
    symbols: list[str]
    depth: int
    rings: RingCapacities
    venue: Venue
    account: AccountSource | None = None  # where reconciliation asks (None: reconcile = false)

    @classmethod
    def load(cls, config_path: str | None, rest_url: str | None = None) -> RiskSettings:
        """Raises ConfigError naming the file, section, field and reason; ``rest_url`` overrides
        ``[venue] rest_url``. With ``reconcile = true`` the credentials must be there."""
        cfg = load_section(config_path, PROC, RiskConfig)
        vcfg = venue_config(config_path)
        if rest_url:
            vcfg = msgspec.structs.replace(vcfg, rest_url=rest_url)
        venue = open_venue(vcfg)
        account = None
        if cfg.reconcile:
            try:
                account = venue.account_source(venue.signer(), cfg.reconcile_timeout_s)
            except ValueError as exc:
                raise ConfigError(f"reconcile = true needs credentials: {exc}") from None
        d = deploy.load(config_path)
        return cls(config_path, cfg, list(d.symbols), d.depth, d.rings, venue, account)


def load_instruments(venue: Venue, symbols: list[str], should_stop: Callable[[], bool]) -> list[Instrument] | None:
    """Instruments for ``symbols`` (in symbol_id order) from the venue; None if stopped first."""
    info = venue.info(should_stop)
    if info is None:
        return None
    missing = [s for s in symbols if s not in info.instruments]
    if missing:
        raise ConfigError(f"symbols not listed by the venue: symbols={','.join(missing)}")
    return [info.instruments[s] for s in symbols]


def start(settings: RiskSettings, instance: str, startup: Startup) -> RiskAgent | None:
    """Build the agent once the instruments are in; None when a stop came first. A file that
    cannot be read, a symbol the exchange does not list, or limits the instruments cannot
    represent: ``StartFailed`` (the runner exits 2)."""
    hangup = Hangup()  # SIGHUP reloads [risk] from here on (its default action would end the process)
    try:
        instruments = load_instruments(settings.venue, settings.symbols, lambda: startup.stopping)
    except OSError as exc:
        raise StartFailed(str(exc)) from exc
    if instruments is None:
        return None
    agent = RiskAgent(settings.risk, instance, instruments, settings.depth, settings.config_path, settings.account,
                      rings=settings.rings)
    agent.hangup, agent.status = hangup, startup.status
    return agent
