"""What the exchange says it has counted against the account's request limits: the REST usage
headers (``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S`` / ``-1M``) and the WS API's
``rateLimits`` array, as ``RateUsage`` (execution's limiter corrects its buckets with them)."""

from __future__ import annotations

from procs.venue.messages import RateUsage

from .exchange_info import interval_ms

_HEADERS = (("X-MBX-USED-WEIGHT-", "weight"), ("X-MBX-ORDER-COUNT-", "orders"))
_SUFFIX_MS = {"S": 1000, "M": 60_000, "H": 3_600_000, "D": 86_400_000}
_KIND = {"REQUEST_WEIGHT": "weight", "ORDERS": "orders"}


def from_headers(headers: dict[str, str]) -> list[RateUsage]:
    """Usage from REST response headers (any case)."""
    out = []
    for k, v in headers.items():
        ku = k.upper()
        for prefix, kind in _HEADERS:
            if ku.startswith(prefix):
                suffix = ku[len(prefix):]
                try:
                    used = int(v)
                    if used >= 0:
                        out.append(RateUsage(kind, int(suffix[:-1]) * _SUFFIX_MS[suffix[-1]], used))
                except (ValueError, KeyError, IndexError, TypeError):
                    pass
    return out


def from_rate_limits(entries: list[dict]) -> list[RateUsage]:
    """Usage from a WS API answer's ``rateLimits`` array (entries with a ``count``)."""
    out = []
    for rl in entries:
        if not isinstance(rl, dict):
            continue
        kind = _KIND.get(str(rl.get("rateLimitType", "")))
        if kind is not None and "count" in rl:
            try:
                used = int(rl["count"])
                if used >= 0:
                    out.append(RateUsage(kind, interval_ms(rl), used))
            except (TypeError, ValueError, OverflowError):
                pass
    return out
