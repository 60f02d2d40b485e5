"""User-data streams: listen keys and the WebSocket sessions that receive account events.

``POST /fapi/v1/listenKey`` creates (or returns and extends) the account's one key, ``PUT``
extends it, ``DELETE`` closes it [D:Start/Keepalive/Close-User-Data-Stream]. Every URL form in
use delivers the account's events (protocol doc, section F):

* ``/ws/<key>``, ``/private/ws/<key>``, ``/ws?listenKey=<key>``,
  ``/private/ws?listenKey=<key>[&events=A/B]`` -- the bare events;
* ``/stream?streams=<key>``, ``/private/stream?streams=<key>`` -- each wrapped as
  ``{"stream": "<key>", "data": {...}}`` (combined-stream form, older clients).

A connection naming a key the venue does not know (or one that expired) is refused at the
upgrade with HTTP 400 and ``{"code": -1125, "msg": "This listenKey does not exist."}``, never
served as a market-data connection. A key not kept alive for ``listen_key_ttl_ms`` (60 min, as
on the exchange) gets ``listenKeyExpired`` on each of its sessions and no more events after it
[D:Event-User-Data-Stream-Expired]. Keys are derived from a counter, so replays see the same keys.
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
UNKNOWN_KEY_BODY = b'{"code":-1125,"msg":"This listenKey does not exist."}'


def listen_key_of(path: str) -> tuple[str, bool] | None:
    """(listen key, combined) for a user-data stream path, None for any other path."""
    parts = urlsplit(path)
    p = parts.path.rstrip("/")
    query = parse_qs(parts.query)
    for prefix in ("/ws/", "/private/ws/"):
        if p.startswith(prefix):
            key = p[len(prefix):]
            return (key, False) if key and "/" not in key and "@" not in key else None
    if p in ("/ws", "/private/ws"):
        keys = query.get("listenKey")
        return (keys[0], False) if keys and keys[0] else None
    if p in ("/stream", "/private/stream"):
        names = query.get("streams", [""])[0].split("/")
        if len(names) == 1 and names[0] and "@" not in names[0]:
            return names[0], True
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
        self.session_combined: dict[int, bool] = {}  # /stream?streams=<key>: wrap each event
        self.sent = 0  # events written to sessions (the lockstep barrier compares execution's count)
        self.refused = 0  # connections refused for an unknown or expired key
        self.trace: Any = None  # the latency trace (procs.exchange_sim.trace), when attached
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
            self._forget(s)
            s.close()
        del self.keys[cur]
        del self.by_account[account]

    def _forget(self, session: WsSession) -> None:
        self.session_key.pop(id(session), None)
        self.session_events.pop(id(session), None)
        self.session_combined.pop(id(session), None)

    def _expire(self, key: str) -> None:
        event = {"e": "listenKeyExpired", "E": self.event_ms(), "listenKey": key}
        for s in self.sessions.pop(key, []):
            self._send(s, key, event)
            self._forget(s)
        account = self.keys.pop(key)[0]
        if self.by_account.get(account) == key:
            del self.by_account[account]

    def sweep(self) -> int:
        """Expire every key past its validity (run on the simulator's timer); returns how many."""
        now = self.now_ms()
        due = [k for k, (_, expires) in self.keys.items() if expires <= now]
        for key in due:
            self._expire(key)
        return len(due)

    # -- sessions --------------------------------------------------------------------------
    def claims(self, path: str) -> bool:
        """Every user-data stream path is ours: a known key is served, an unknown one refused."""
        return listen_key_of(path) is not None

    def refusal(self, path: str) -> bytes | None:
        """The 400 body for a user-data path whose key is unknown or expired, None when it is served."""
        found = listen_key_of(path)
        if found is None:
            return None
        key = found[0]
        entry = self.keys.get(key)
        if entry is not None and entry[1] > self.now_ms():
            return None
        self.refused += 1
        return UNKNOWN_KEY_BODY

    def open(self, session: WsSession, path: str) -> None:
        found = listen_key_of(path)
        if found is None or found[0] not in self.keys:
            session.close()
            return
        key, combined = found
        self.sessions.setdefault(key, []).append(session)
        self.session_key[id(session)] = key
        self.session_combined[id(session)] = combined
        events = parse_qs(urlsplit(path).query).get("events")
        if events:
            self.session_events[id(session)] = set(events[0].split("/"))

    def closed(self, session: WsSession) -> bool:
        key = self.session_key.get(id(session))
        self._forget(session)
        if key is None:
            return False
        lst = self.sessions.get(key, [])
        if session in lst:
            lst.remove(session)
        return True

    def wants(self, account: str) -> bool:
        """True when the account has a listen key (an expired key still gets its expiry event)."""
        return account in self.by_account

    def _send(self, session: WsSession, key: str, event: dict[str, Any]) -> None:
        trace = self.trace
        if trace is not None and trace.enabled and event.get("e") == "ORDER_TRADE_UPDATE":
            o = event.get("o") or {}
            trace.answer("stream", str(o.get("c", "")), str(o.get("x", "")), int(o.get("t", 0) or 0))
        if self.session_combined.get(id(session)):
            session.send_text(_enc.encode({"stream": key, "data": event}).decode())
        else:
            session.send_text(_enc.encode(event).decode())
        self.sent += 1

    def emit(self, account: str, event: dict[str, Any]) -> None:
        key = self.by_account.get(account)
        if key is None:
            return
        if self.keys[key][1] <= self.now_ms():
            self._expire(key)
            return
        sessions = self.sessions.get(key)
        if sessions:
            kind = event.get("e")
            for s in list(sessions):
                wanted = self.session_events.get(id(s))
                if wanted is None or kind in wanted:
                    self._send(s, key, event)
