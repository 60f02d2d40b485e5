"""A blocking REST client (stdlib ``urllib``) for the few calls made off any event loop: risk's
account reads from its reconciliation thread, and the test harness's look at the account.

Each call has a timeout; blocking socket I/O releases the GIL. Failures raise ``VenueError``
with what the exchange said (never the secret).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import msgspec

from procs.core import log
from procs.venue.messages import VenueError

from .signing import API_KEY_HEADER, CLOCK_REJECTED, TIME_PATH, Signer, clock_offset, rest_query


class ClockRejected(VenueError):
    """The venue refused the request's timestamp (its clock or ours stepped)."""


class SyncRest:
    """Signed and unsigned REST calls, one at a time."""

    def __init__(self, base_url: str, signer: Signer, recv_window_ms: int = 5000, timeout_s: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s

    def raw(self, method: str, path: str, params: dict[str, str] | None = None, signed: bool = True) -> bytes:
        """The answer's body; VenueError for an HTTP error (status and body) or no answer. A
        signed request refused for its timestamp (-1021: a clock stepped; nothing was done) is
        sent once more after the venue's clock is measured again."""
        try:
            return self._raw(method, path, params, signed)
        except ClockRejected:
            self.sync_clock()
            try:
                return self._raw(method, path, params, signed)
            except ClockRejected as exc:
                raise VenueError(str(exc)) from None

    def sync_clock(self) -> None:
        """Measure the venue's clock (``GET /fapi/v1/time``) into the signer's offset."""
        sent = time.time()
        answer = self.call("GET", TIME_PATH, signed=False)
        received = time.time()
        server = answer.get("serverTime") if isinstance(answer, dict) else None
        if not isinstance(server, int):
            raise VenueError(f"GET {TIME_PATH} -> no serverTime: {str(answer)[:100]}")
        was, self.signer.offset_ms = self.signer.offset_ms, clock_offset(server, sent, received)
        log.warn("venue_clock_synced", offset_ms=self.signer.offset_ms, was_ms=was,
                 round_trip_ms=round((received - sent) * 1000, 1))

    def _raw(self, method: str, path: str, params: dict[str, str] | None, signed: bool) -> bytes:
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
            if signed and f'"code":{CLOCK_REJECTED},' in body.replace(" ", ""):
                raise ClockRejected(f"{method} {path} -> HTTP {exc.code} {body}") from None
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
