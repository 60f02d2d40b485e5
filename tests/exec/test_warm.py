"""WsApiTransport.warm: the request path runs (built, signed, encoded) and nothing is sent or
left pending."""

from __future__ import annotations

import msgspec

from procs.exec.transport import Credentials, WsApiTransport, ws_sign


def test_warm_when_called_then_signed_request_built_and_nothing_pending() -> None:
    creds = Credentials("k", "s")
    t = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", creds)
    n = t.warm("BTCUSDT")
    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "newClientOrderId": "b25-warm-0",
              "type": "LIMIT", "price": "1.0", "timeInForce": "GTC", "timestamp": "1700000000000"}
    ws_sign(creds, params)
    # same shape as a real request: only the timestamp's digits (same length) and the signature differ
    assert n == len(msgspec.json.encode({"id": 1, "method": "order.place", "params": params}))
    assert t.pending == {} and t._next_id == 0
