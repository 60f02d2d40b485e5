"""Signing: the one HMAC-SHA256 signer of Binance requests, and the simulator's test account.

What is signed (and what the simulator checks, as Binance does):
  * REST: every param in the query string (``timestamp`` and ``recvWindow`` appended),
    ``signature`` = hex HMAC-SHA256(secret, that query string), appended last; the API key
    travels in the ``X-MBX-APIKEY`` header.
  * WS API: ``signature`` = hex HMAC-SHA256(secret, ``k=v`` of every other param incl.
    ``apiKey`` and ``timestamp``, sorted by name, joined with ``&``).
"""

from __future__ import annotations

import functools
import hashlib
import time
from urllib.parse import urlencode

# exchange_sim's default account (README "The simulator"): its order API accepts it, and the
# credential loader falls back to it only when the venue is on loopback
TEST_ACCOUNT = ("b25-test-key", "b25-test-secret")
API_KEY_HEADER = "X-MBX-APIKEY"
CLOCK_REJECTED = -1021  # "Timestamp for this request is outside of the recvWindow" (or 1 s ahead)
TIME_PATH = "/fapi/v1/time"  # unsigned: {"serverTime": epoch ms}
_BLOCK = 64  # sha256's block size (HMAC key padding)


class Signer:
    """An account's API key and its secret's HMAC-SHA256; ``repr`` never shows the secret.

    The HMAC (RFC 2104) is kept as two keyed sha256 states, copied per request: all C calls,
    half the time of copying an ``hmac.HMAC`` (whose copy/update/hexdigest are Python frames).

    ``now_ms`` is the timestamp every signed request carries: the host's wall clock plus
    ``offset_ms``, the venue's clock as last measured (``clock_offset``). The venue refuses a
    timestamp outside its window (-1021, ``CLOCK_REJECTED``) when its clock or ours stepped; the
    transports then measure the offset again and send the request once more.
    """

    __slots__ = ("key", "offset_ms", "_inner", "_outer")

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.offset_ms = 0
        k = secret.encode()
        if len(k) > _BLOCK:
            k = hashlib.sha256(k).digest()
        k = k.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))

    def now_ms(self) -> int:
        """The venue's wall time as far as we know it (epoch ms): a signed request's ``timestamp``."""
        return time.time_ns() // 1_000_000 + self.offset_ms

    def sign(self, payload: str) -> str:
        """hex HMAC-SHA256(secret, payload), as ``hmac.new(secret, payload, sha256).hexdigest()``."""
        i = self._inner.copy()
        i.update(payload.encode())
        o = self._outer.copy()
        o.update(i.digest())
        return o.hexdigest()

    def __repr__(self) -> str:
        return f"Signer(key={self.key[:4]}***)"


def clock_offset(server_ms: int, sent_s: float, received_s: float) -> int:
    """The venue's clock minus ours (ms), from ``serverTime`` taken as the middle of the round
    trip that fetched it (sent and received in ``time.time()`` seconds)."""
    return int(server_ms - (sent_s + received_s) * 500)


@functools.lru_cache(maxsize=64)
def _signer_of(secret: str) -> Signer:
    return Signer("", secret)


def sign(secret: str, payload: str) -> str:
    """hex HMAC-SHA256(secret, payload): one signature with a secret at hand (the simulator's check,
    once per request: the keyed states are built once per secret, not per request)."""
    return _signer_of(secret).sign(payload)


def ws_param_text(value: object) -> str:
    """A WebSocket API param value as it appears in the signature payload."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_payload(params: dict[str, object]) -> str:
    """The WebSocket API signature payload: every param but ``signature``, sorted by name."""
    return "&".join(f"{k}={ws_param_text(params[k])}" for k in sorted(params) if k != "signature")


def ws_sign(signer: Signer, params: dict[str, str]) -> None:
    """Add ``apiKey`` and ``signature`` to WS API params (which already hold ``timestamp``)."""
    params["apiKey"] = signer.key
    params["signature"] = signer.sign(ws_payload(params))


def rest_query(signer: Signer, params: dict[str, str], recv_window_ms: int, now_ms: int | None = None) -> str:
    """The signed REST query string: ``params``, then ``timestamp`` and ``recvWindow``, then
    ``signature`` over everything before it."""
    q = urlencode(params)
    ts = signer.now_ms() if now_ms is None else now_ms
    extra = f"timestamp={ts}&recvWindow={recv_window_ms}"
    q = f"{q}&{extra}" if q else extra
    return f"{q}&signature={signer.sign(q)}"
