"""API credentials for the venue: environment, then a 0600 secrets file, then the config, then
(only against a simulator on loopback) the adapter's test account. Never logged.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from . import log


def load_credentials(*, section: str, rest_url: str, api_key: str = "", api_secret: str = "",
                     secrets_file: str = "", key_env: str = "B25_API_KEY", secret_env: str = "B25_API_SECRET",
                     loopback_default: tuple[str, str] | None = None) -> tuple[str, str]:
    """(key, secret); raises ValueError naming the source that failed (never the secret).
    ``loopback_default`` (the simulator's test account) is used only when nothing else is set
    and ``rest_url`` is on loopback."""
    key = os.environ.get(key_env, "") if key_env else ""
    secret = os.environ.get(secret_env, "") if secret_env else ""
    if key and secret:
        log.info("credentials_loaded", section=section, source="environment", key_env=key_env)
        return key, secret
    if secrets_file:
        p = Path(secrets_file)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise ValueError(f"secrets file not found: section=[{section}] secrets_file={p}") from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ValueError(f"secrets file must not be readable by group/others (chmod 600): section=[{section}] "
                             f"secrets_file={p} mode={oct(stat.S_IMODE(st.st_mode))}")
        data = tomllib.loads(p.read_text())
        key, secret = str(data.get("api_key", "")), str(data.get("api_secret", ""))
        if not key or not secret:
            raise ValueError(f"secrets file needs api_key and api_secret: section=[{section}] secrets_file={p}")
        log.info("credentials_loaded", section=section, source="secrets_file", secrets_file=str(p))
        return key, secret
    if api_key and api_secret:
        log.info("credentials_loaded", section=section, source="config")
        return api_key, api_secret
    if loopback_default is not None and (urlsplit(rest_url).hostname or "") in ("127.0.0.1", "localhost", "::1"):
        log.info("credentials_loaded", section=section, source="simulator_default", rest_url=rest_url)
        return loopback_default
    raise ValueError(f"no API credentials: section=[{section}] set {key_env}/{secret_env}, secrets_file or "
                     f"api_key/api_secret (rest_url={rest_url})")
