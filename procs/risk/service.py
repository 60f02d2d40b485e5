"""Starting the risk process: its settings from the config file, the instruments from a file or
the exchange, then the ``RiskAgent`` (``procs.core.agent.run_process`` runs it)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from procs.core import deploy, log
from procs.core.agent import StartFailed, Startup
from procs.core.config import ConfigError, load_section
from procs.core.credentials import load_credentials
from procs.core.instruments import Instrument, load_exchange_info

from .agent import PROC, RiskAgent
from .config import RiskConfig


@dataclass(frozen=True)
class RiskSettings:
    """What the risk process reads from the config file (and the environment), checked before it starts."""

    config_path: str | None
    risk: RiskConfig
    symbols: list[str]
    depth: int
    api_key: str = ""
    api_secret: str = ""

    @classmethod
    def load(cls, config_path: str | None, rest_url: str | None = None) -> RiskSettings:
        """Raises ConfigError naming the file, section, field and reason; ``rest_url`` overrides
        ``[risk] rest_url``. With ``reconcile = true`` the credentials must be there."""
        cfg = load_section(config_path, PROC, RiskConfig)
        if rest_url:
            cfg = msgspec.structs.replace(cfg, rest_url=rest_url)
        key = secret = ""
        if cfg.reconcile:
            try:
                key, secret = load_credentials(section=PROC, rest_url=cfg.rest_url, api_key=cfg.api_key,
                                               api_secret=cfg.api_secret, secrets_file=cfg.secrets_file)
            except ValueError as exc:
                raise ConfigError(f"reconcile = true needs credentials: {exc}") from None
        return cls(config_path, cfg, deploy.symbols(config_path), deploy.depth(config_path), key, secret)


def load_instruments(cfg: RiskConfig, symbols: list[str], should_stop: Callable[[], bool],
                     retry_s: float = 0.5) -> list[Instrument] | None:
    """Instruments for ``symbols`` (in symbol_id order) from a file or the exchange; None if stopped."""
    while True:
        try:
            if cfg.exchange_info:
                info = load_exchange_info(cfg.exchange_info)
            else:
                url = cfg.rest_url.rstrip("/") + "/fapi/v1/exchangeInfo"
                with urllib.request.urlopen(url, timeout=cfg.reconcile_timeout_s) as r:
                    info = load_exchange_info(json.loads(r.read()))
            missing = [s for s in symbols if s not in info]
            if missing:
                raise ConfigError(f"symbols not in exchangeInfo: symbols={','.join(missing)}")
            return [info[s] for s in symbols]
        except (OSError, ValueError) as exc:
            if isinstance(exc, ConfigError) or cfg.exchange_info:
                raise
            log.once("risk_info_err", "warn", "exchange_info_failed", url=cfg.rest_url, reason=repr(exc))
        deadline = time.monotonic() + retry_s
        while time.monotonic() < deadline:
            if should_stop():
                return None
            time.sleep(0.05)


def start(settings: RiskSettings, instance: str, startup: Startup) -> RiskAgent | None:
    """Build the agent once the instruments are in; None when a stop came first. A file that
    cannot be read, a symbol the exchange does not list, or limits the instruments cannot
    represent: ``StartFailed`` (the runner exits 2)."""
    try:
        instruments = load_instruments(settings.risk, settings.symbols, lambda: startup.stopping)
    except OSError as exc:
        raise StartFailed(str(exc)) from exc
    if instruments is None:
        return None
    return RiskAgent(settings.risk, instance, instruments, settings.depth, settings.config_path,
                     settings.api_key, settings.api_secret)
