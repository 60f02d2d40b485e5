"""The simulator verifies HMAC signatures over the query exactly as sent (percent-encoded)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from procs.venue.binance.signing import TEST_ACCOUNT
from tests.support.procutil import start_sim, stop

KEY, SECRET = TEST_ACCOUNT

pytestmark = pytest.mark.proc


def _signed(port: int, method: str, path: str, params: list[tuple[str, str]]) -> tuple[int, dict]:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
    sig = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}?{query}&signature={sig}", method=method,
                                 headers={"X-MBX-APIKEY": KEY})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_signed_order_when_client_id_needs_percent_encoding_then_accepted(procs: list) -> None:
    sim, rest, _ws = start_sim(procs)
    try:
        params = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
                  ("quantity", "0.001"), ("price", "50000"), ("newClientOrderId", "b25:a/b.c-1"),
                  ("timestamp", str(int(time.time() * 1000)))]
        status, body = _signed(rest, "POST", "/fapi/v1/order", params)
        assert status == 200, body
        assert body["clientOrderId"] == "b25:a/b.c-1"
        # the decoded text signed instead of the bytes sent is refused
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
        decoded = "&".join(f"{k}={v}" for k, v in params)
        sig = hmac.new(SECRET.encode(), decoded.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://127.0.0.1:{rest}/fapi/v1/order?{query}&signature={sig}",
                                     method="POST", headers={"X-MBX-APIKEY": KEY})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert json.loads(e.value.read())["code"] == -1022
    finally:
        stop(sim)
