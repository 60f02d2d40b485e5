"""The WS API's requests from templates (``place``/``place_frame``, ``by_cid``/``by_cid_frame``)
are the same bytes as the generic ``send``; ``warm`` builds them and nothing is sent or left
pending."""

from __future__ import annotations

import msgspec
import pytest

from procs.venue.binance.rest import classify
from procs.venue.binance.signing import Signer
from procs.venue.binance.wsapi import WsApiTransport, plain
from procs.venue.messages import REPLY_FAILED, REPLY_OK, REPLY_RATE_LIMITED, REPLY_REJECTED, REPLY_UNKNOWN


class Socket:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, _kind: object, data: bytes) -> None:
        self.frames.append(data)


def test_warm_when_called_then_signed_request_built_and_nothing_pending() -> None:
    creds = Signer("k", "s")
    t = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", creds)
    n = t.warm("BTCUSDT")
    ts = "1700000000000"
    # same shape as a real request: only the timestamp's digits (same length) and the signature differ
    assert n == len(t.place_frame(1, "BTCUSDT", "BUY", "0.001", "b25-warm-0", "1.0", "GTC", False, ts))
    assert t.pending == {} and t._next_id == 0


@pytest.mark.parametrize("limit", [True, False])
@pytest.mark.parametrize("reduce_only", [False, True])
def test_place_when_template_then_same_bytes_as_generic_send(limit: bool, reduce_only: bool) -> None:
    creds = Signer('key"with\\quote', "secret")
    t = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", creds)
    sock = Socket()
    t.transport = sock  # type: ignore[assignment]
    params = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.013", "newClientOrderId": "b25-7-42"}
    if limit:
        params.update({"type": "LIMIT", "price": "63943.9", "timeInForce": "GTX"})
    else:
        params["type"] = "MARKET"
    if reduce_only:
        params["reduceOnly"] = "true"
    assert t.send("order.place", params, lambda r: None) > 0
    generic = sock.frames[-1]
    ts = msgspec.json.decode(generic)["params"]["timestamp"]
    assert t.place("BTCUSDT", "SELL", "0.013", "b25-7-42", "63943.9" if limit else None, "GTX" if limit else "",
                   reduce_only, lambda r: None) > 0
    assert sorted(t.pending) == [1, 2] and msgspec.json.decode(sock.frames[-1])["id"] == 2
    assert t.place_frame(1, "BTCUSDT", "SELL", "0.013", "b25-7-42", "63943.9" if limit else None,
                         "GTX" if limit else "", reduce_only, ts) == generic


def test_plain_when_text_needs_escaping_then_false() -> None:
    assert plain("BTCUSDT") and plain("b25-12-3456") and plain("1000PEPEUSDT")
    assert not plain("") and not plain('a"b') and not plain("a&b") and not plain("a=b") and not plain("é")


@pytest.mark.parametrize("method", ["order.cancel", "order.status"])
def test_by_cid_when_template_then_same_bytes_as_generic_send(method: str) -> None:
    t = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", Signer('key"with\\quote', "secret"))
    sock = Socket()
    t.transport = sock  # type: ignore[assignment]
    assert t.send(method, {"symbol": "ETHUSDT", "origClientOrderId": "b25-3-17"}, lambda r: None) > 0
    generic = sock.frames[-1]
    ts = msgspec.json.decode(generic)["params"]["timestamp"]
    assert t.by_cid(method, "ETHUSDT", "b25-3-17", lambda r: None) > 0
    assert sorted(t.pending) == [1, 2] and msgspec.json.decode(sock.frames[-1])["id"] == 2
    assert t.by_cid_frame(1, method, "ETHUSDT", "b25-3-17", ts) == generic


@pytest.mark.parametrize(("http", "body", "outcome"), [
    (200, {}, REPLY_OK), (400, {"code": -4164, "msg": "x"}, REPLY_REJECTED), (429, {"code": -1003}, REPLY_RATE_LIMITED),
    (503, {"code": -1001, "msg": "Service Unavailable."}, REPLY_FAILED),
    (503, {"code": -1000, "msg": "Unknown error, please check your request or try again later."}, REPLY_UNKNOWN),
    (408, {"code": -1007}, REPLY_UNKNOWN),
])
def test_classify_when_answer_then_outcome(http: int, body: dict, outcome: int) -> None:
    assert classify(http, body)[0] == outcome
