"""A blocking REST client (stdlib ``urllib``) for the few calls made off any event loop: risk's
account reads from its reconciliation thread, and the test harness's look at the account.

Each call has a timeout; blocking socket I/O releases the GIL. Failures raise ``VenueError``
with what the exchange said (never the secret).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import msgspec

from procs.venue.messages import VenueError

from .signing import API_KEY_HEADER, Signer, rest_query


class SyncRest:
    """Signed and unsigned REST calls, one at a time."""

    def __init__(self, base_url: str, signer: Signer, recv_window_ms: int = 5000, timeout_s: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s

    def raw(self, method: str, path: str, params: dict[str, str] | None = None, signed: bool = True) -> bytes:
        """The answer's body; VenueError for an HTTP error (status and body) or no answer."""
        p = {k: str(v) for k, v in (params or {}).items()}
        q = rest_query(self.signer, p, self.recv_window_ms) if signed else urlencode(p)
        url, data = f"{self.base}{path}", None
        if method in ("GET", "DELETE"):
            url += f"?{q}" if q else ""
        else:
            data = q.encode()
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={API_KEY_HEADER: self.signer.key,
                                              "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return r.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()[:200].decode(errors="replace")
            raise VenueError(f"{method} {path} -> HTTP {exc.code} {body}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused
            raise VenueError(f"{method} {path} -> {exc!r}"[:200]) from None

    def call(self, method: str, path: str, params: dict[str, str] | None = None, signed: bool = True) -> Any:
        """The answer's JSON body."""
        body = self.raw(method, path, params, signed)
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise VenueError(f"{method} {path} -> not JSON: {body[:100]!r}") from None
