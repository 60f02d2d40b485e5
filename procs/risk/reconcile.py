"""Reconciliation with the exchange: signed ``GET /fapi/v3/account`` and ``/fapi/v3/positionRisk``.

Runs in its own thread with plain ``urllib``: two small requests every few seconds need no
event loop, the agent's loop is a polling loop rather than asyncio, the stdlib client adds no
dependency, and blocking socket I/O releases the GIL, so the hot loop only ever pays for a
``deque.popleft`` of a finished result. Each request has a timeout, so a hung exchange delays
reconciliation and never the agent. The thread hands results over through a deque and calls
``wake`` (the agent's Waiter semaphore) so a parked agent sees them at once.

Signing (protocol doc B1): ``signature`` = hex HMAC-SHA256(secret, query) over the query string
exactly as sent, appended last; ``X-MBX-APIKEY`` header. The secret is never logged.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from decimal import Decimal

import msgspec

from .engine import ReconcileResult


class PositionRow(msgspec.Struct):
    symbol: str
    positionAmt: str = "0"  # noqa: N815 (the exchange's field names)
    entryPrice: str = "0"  # noqa: N815
    positionSide: str = "BOTH"  # noqa: N815


class AccountBody(msgspec.Struct):
    totalWalletBalance: str = ""  # noqa: N815
    totalUnrealizedProfit: str = ""  # noqa: N815


_positions = msgspec.json.Decoder(list[PositionRow])
_account = msgspec.json.Decoder(AccountBody)


def sign(secret: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` keyed by ``secret``."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_query(secret: str, params: dict[str, str | int], now_ms: int, recv_window_ms: int) -> str:
    """``k=v&...&recvWindow=..&timestamp=..&signature=..`` with the signature over all before it."""
    q = urllib.parse.urlencode({**params, "recvWindow": recv_window_ms, "timestamp": now_ms})
    return f"{q}&signature={sign(secret, q)}"


def net_positions(rows: list[PositionRow]) -> dict[str, str]:
    """Signed net position per symbol (hedge-mode LONG/SHORT rows summed; SHORT is negative)."""
    out: dict[str, Decimal] = {}
    for r in rows:
        out[r.symbol] = out.get(r.symbol, Decimal(0)) + Decimal(r.positionAmt or "0")
    return {s: format(v.normalize(), "f") if v else "0" for s, v in out.items()}


class Reconciler:
    """Queries the exchange every ``interval_s`` in a daemon thread; results in ``results``."""

    def __init__(self, rest_url: str, api_key: str, api_secret: str, interval_s: float, timeout_s: float,
                 recv_window_ms: int = 5000, wake: Callable[[], None] | None = None) -> None:
        self.base = rest_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.recv_window_ms = recv_window_ms
        self.wake = wake
        self.results: collections.deque[ReconcileResult] = collections.deque(maxlen=64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="risk-reconcile", daemon=True)

    def _get(self, path: str) -> bytes:
        q = signed_query(self._secret, {}, int(time.time() * 1000), self.recv_window_ms)
        req = urllib.request.Request(f"{self.base}{path}?{q}", headers={"X-MBX-APIKEY": self._key})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
            return r.read()

    def check_once(self) -> ReconcileResult:
        """One account + positionRisk query (blocking); never raises."""
        t0 = time.monotonic_ns()
        try:
            acct = _account.decode(self._get("/fapi/v3/account"))
            rows = _positions.decode(self._get("/fapi/v3/positionRisk"))
            entries = {r.symbol: r.entryPrice for r in rows if Decimal(r.positionAmt or "0")}
            return ReconcileResult(ok=True, positions=net_positions(rows), entries=entries,
                                   wallet_balance=acct.totalWalletBalance,
                                   unrealized=acct.totalUnrealizedProfit, duration_ns=time.monotonic_ns() - t0)
        except urllib.error.HTTPError as exc:
            body = exc.read()[:200].decode(errors="replace")
            return ReconcileResult(ok=False, error=f"HTTP {exc.code} {body}", duration_ns=time.monotonic_ns() - t0)
        except (OSError, ValueError, msgspec.DecodeError) as exc:  # URLError, timeouts, bad JSON
            return ReconcileResult(ok=False, error=repr(exc)[:200], duration_ns=time.monotonic_ns() - t0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.results.append(self.check_once())
            if self.wake is not None:
                self.wake()
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout_s * 2 + 1)
