"""User-data streams: listen keys and the WebSocket sessions that receive account events.

``POST /fapi/v1/listenKey`` creates (or returns and extends) the account's one key, ``PUT``
extends it, ``DELETE`` closes it. A client connects to ``/ws/<key>``, ``/private/ws/<key>`` or
``/private/ws?listenKey=<key>``; every ORDER_TRADE_UPDATE / ACCOUNT_UPDATE of the account is
sent to each of its sessions. Keys are derived from a counter, so replays see the same keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from procs.exchange_sim.api import WsSession
from procs.exchange_sim.trading.signing import ApiError

_enc = msgspec.json.Encoder()


def listen_key_of(path: str) -> str | None:
    """The listen key in a user-data stream path, None for any other path."""
    parts = urlsplit(path)
    p = parts.path.rstrip("/")
    for prefix in ("/ws/", "/private/ws/"):
        if p.startswith(prefix):
            key = p[len(prefix):]
            return key if key and "/" not in key and "@" not in key else None
    if p == "/private/ws":
        keys = parse_qs(parts.query).get("listenKey")
        return keys[0] if keys else None
    return None


class UserStreams:
    """Listen keys per account and the sessions subscribed to them."""

    def __init__(self, now_ms: Callable[[], int], ttl_ms: int, expiry_ms: Callable[[], int] | None = None
                 ) -> None:
        self.event_ms = now_ms  # event times (E) follow the market clock
        self.now_ms = expiry_ms or now_ms  # key validity follows the expiry clock
        self.ttl_ms = ttl_ms
        self.keys: dict[str, list[Any]] = {}  # key -> [account, expires_ms]
        self.by_account: dict[str, str] = {}
        self.sessions: dict[str, list[WsSession]] = {}  # key -> sessions
        self.session_key: dict[int, str] = {}
        self.session_events: dict[int, set[str]] = {}  # ?events=A/B filter per session
        self.sent = 0  # events written to sessions (the lockstep barrier compares execution's count)
        self._n = 0

    def create(self, account: str) -> str:
        now = self.now_ms()
        key = self.by_account.get(account)
        if key is not None and self.keys[key][1] > now:
            self.keys[key][1] = now + self.ttl_ms
            return key
        if key is not None:
            self._expire(key)
        self._n += 1
        key = hashlib.sha256(f"b25-sim-listen-key:{account}:{self._n}".encode()).hexdigest()
        self.keys[key] = [account, now + self.ttl_ms]
        self.by_account[account] = key
        return key

    def _active(self, account: str, key: str | None) -> str:
        cur = self.by_account.get(account)
        if cur is None or (key and key != cur) or self.keys[cur][1] <= self.now_ms():
            raise ApiError(-1125, "This listenKey does not exist.")
        return cur

    def keepalive(self, account: str, key: str | None) -> str:
        cur = self._active(account, key)
        self.keys[cur][1] = self.now_ms() + self.ttl_ms
        return cur

    def delete(self, account: str, key: str | None) -> None:
        cur = self._active(account, key)
        for s in self.sessions.pop(cur, []):
            self.session_key.pop(id(s), None)
            s.close()
        del self.keys[cur]
        del self.by_account[account]

    def _expire(self, key: str) -> None:
        msg = _enc.encode({"e": "listenKeyExpired", "E": self.event_ms(), "listenKey": key}).decode()
        for s in self.sessions.pop(key, []):
            self.session_key.pop(id(s), None)
            s.send_text(msg)
            self.sent += 1
        account = self.keys.pop(key)[0]
        if self.by_account.get(account) == key:
            del self.by_account[account]

    # -- sessions --------------------------------------------------------------------------
    def claims(self, path: str) -> bool:
        key = listen_key_of(path)
        return key is not None and key in self.keys

    def open(self, session: WsSession, path: str) -> None:
        key = listen_key_of(path)
        if key is None or key not in self.keys:
            session.close()
            return
        self.sessions.setdefault(key, []).append(session)
        self.session_key[id(session)] = key
        events = parse_qs(urlsplit(path).query).get("events")
        if events:
            self.session_events[id(session)] = set(events[0].split("/"))

    def closed(self, session: WsSession) -> bool:
        key = self.session_key.pop(id(session), None)
        self.session_events.pop(id(session), None)
        if key is None:
            return False
        lst = self.sessions.get(key, [])
        if session in lst:
            lst.remove(session)
        return True

    def wants(self, account: str) -> bool:
        """True when the account has a listen key (an expired key still gets its expiry event)."""
        return account in self.by_account

    def emit(self, account: str, event: dict[str, Any]) -> None:
        key = self.by_account.get(account)
        if key is None:
            return
        if self.keys[key][1] <= self.now_ms():
            self._expire(key)
            return
        sessions = self.sessions.get(key)
        if sessions:
            text = _enc.encode(event).decode()
            kind = event.get("e")
            for s in list(sessions):
                wanted = self.session_events.get(id(s))
                if wanted is None or kind in wanted:
                    s.send_text(text)
                    self.sent += 1
