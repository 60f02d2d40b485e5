"""The ``[venue]`` section's base: which exchange, where it is, whose account.

``kind`` picks the adapter (``procs.venue.adapters``); each adapter's config subclasses
``VenueConfig`` with its own defaults and fields (msgspec tagged union on ``kind``), so a field
another venue does not have is an unknown field, named at start like every config error.
"""

from __future__ import annotations

import msgspec

from procs.core.config import Section


class VenueConfig(Section, tag_field="kind"):
    """Where the venue is and where the API key comes from; every process that talks to the
    exchange reads this one section."""

    rest_url: str = ""
    ws_stream_url: str = ""  # WebSocket market streams (and the user-data stream where it is served there)
    ws_api_url: str = ""  # WebSocket order API; "" = the venue has none (REST only)
    # credentials: the environment first, then the secrets file (TOML with api_key / api_secret,
    # mode 0600), then these fields; with none and a loopback rest_url, the simulator's test account
    api_key_env: str = "B25_API_KEY"
    api_secret_env: str = "B25_API_SECRET"
    secrets_file: str = ""
    api_key: str = ""
    api_secret: str = ""
    exchange_info: str = ""  # the instrument list from this file; "" = fetched from the venue at start

    @property
    def kind(self) -> str:
        """The adapter's name (``[venue] kind``)."""
        return str(self.__struct_config__.tag)

    def __repr__(self) -> str:
        # the secret must never reach a log line, whoever prints the config
        fields = ", ".join(f"{k}={'***' if k == 'api_secret' and v else v!r}"
                           for k, v in msgspec.structs.asdict(self).items())
        return f"{type(self).__name__}(kind={self.kind!r}, {fields})"
