"""Request parameters and HMAC-SHA256 signatures as Binance USD-M checks them.

REST: parameters come from the query string and/or an ``x-www-form-urlencoded`` body for every
method (DELETE bodies too); a key in both takes the query value. The signature is over the raw
query string concatenated with the raw body exactly as received, minus the ``signature`` param.
WebSocket API: the signature is over ``k=v`` of every param except ``signature``, sorted by name
and joined with ``&``.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl

from procs.venue.binance.signing import sign, ws_payload


class ApiError(Exception):
    """An exchange rejection: Binance error code, message and HTTP status (400 by default)."""

    def __init__(self, code: int, msg: str, http: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http = http

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "msg": self.msg}).encode()


def _looks_like_form(body: str) -> bool:
    b = body.lstrip()
    # Connector clients send "Content-Type: application/json" with an empty body; a JSON body is
    # never the parameter carrier on Binance, so it is ignored rather than parsed as a form.
    return bool(b) and not b.startswith("{") and not b.startswith("[")


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """Decoded params from query and body; the query value wins for a key sent in both."""
    params: dict[str, str] = {}
    if _looks_like_form(raw_body):
        for k, v in parse_qsl(raw_body, keep_blank_values=True):
            params[k] = v
    for k, v in parse_qsl(raw_query, keep_blank_values=True):
        params[k] = v
    return params


def _strip_signature(raw: str) -> str:
    if "signature=" not in raw:
        return raw
    return "&".join(p for p in raw.split("&") if not p.startswith("signature="))


def rest_signature_ok(secret: str, raw_query: str, raw_body: str, signature: str) -> bool:
    """True when signature matches the raw query+body (case-insensitive hex).

    The docs concatenate query and body with nothing between them; a client that joins them
    with '&' is accepted too, because the signed content is the same parameter set.
    """
    q = _strip_signature(raw_query)
    b = _strip_signature(raw_body) if _looks_like_form(raw_body) else ""
    sig = signature.lower()
    candidates = [q + b]
    if q and b:
        candidates.append(q + "&" + b)
    return any(hmac.compare_digest(sign(secret, c), sig) for c in candidates)


def ws_signature_ok(secret: str, params: dict[str, object], signature: str) -> bool:
    return hmac.compare_digest(sign(secret, ws_payload(params)), signature.lower())
