"""Execution's API key and secret: ``procs.core.credentials`` with the ``[execution]`` sources."""

from __future__ import annotations

from procs.core.credentials import SIM_TEST_KEY
from procs.core.credentials import load_credentials as _load

from .config import ExecutionConfig
from .transport import Credentials

__all__ = ["SIM_TEST_KEY", "load_credentials"]


def load_credentials(cfg: ExecutionConfig) -> Credentials:
    """Environment, then a 0600 secrets file, then config, then (loopback only) the simulator's
    test account; raises ValueError naming the source (never the secret) otherwise."""
    key, secret = _load(section="execution", rest_url=cfg.rest_url, api_key=cfg.api_key,
                        api_secret=cfg.api_secret, secrets_file=cfg.secrets_file,
                        key_env=cfg.api_key_env, secret_env=cfg.api_secret_env)
    return Credentials(key, secret)
