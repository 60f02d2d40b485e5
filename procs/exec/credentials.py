"""API key and secret: environment, then a 0600 secrets file, then config; never logged."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from procs.core import log

from .config import ExecutionConfig
from .transport import Credentials

SIM_TEST_KEY = ("b25-test-key", "b25-test-secret")  # the simulator's documented default account


def load_credentials(cfg: ExecutionConfig) -> Credentials:
    """Raises ValueError naming the source (never the secret) when no usable pair exists."""
    key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
    secret = os.environ.get(cfg.api_secret_env, "") if cfg.api_secret_env else ""
    if key and secret:
        log.info("credentials_loaded", source="environment", key_env=cfg.api_key_env)
        return Credentials(key, secret)
    if cfg.secrets_file:
        p = Path(cfg.secrets_file)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise ValueError(f"secrets file not found: secrets_file={p}") from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ValueError(f"secrets file must not be readable by group/others (chmod 600): secrets_file={p} "
                             f"mode={oct(stat.S_IMODE(st.st_mode))}")
        data = tomllib.loads(p.read_text())
        key, secret = str(data.get("api_key", "")), str(data.get("api_secret", ""))
        if not key or not secret:
            raise ValueError(f"secrets file needs api_key and api_secret: secrets_file={p}")
        log.info("credentials_loaded", source="secrets_file", secrets_file=str(p))
        return Credentials(key, secret)
    if cfg.api_key and cfg.api_secret:
        log.info("credentials_loaded", source="config")
        return Credentials(cfg.api_key, cfg.api_secret)
    host = urlsplit(cfg.rest_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        log.info("credentials_loaded", source="simulator_default", rest_url=cfg.rest_url)
        return Credentials(*SIM_TEST_KEY)
    raise ValueError(f"no API credentials: set {cfg.api_key_env}/{cfg.api_secret_env}, secrets_file or "
                     f"api_key/api_secret in [execution] (rest_url={cfg.rest_url})")
