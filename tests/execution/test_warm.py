"""WsApiTransport's order.place: the template (``place``/``place_frame``) writes the same bytes
as the generic ``send``; ``warm`` runs that code and nothing is sent or left pending."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from procs.execution.journal import REC_EPOCH, read_journal
from procs.execution.transport import Credentials, WsApiTransport, plain


class Socket:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, _kind: object, data: bytes) -> None:
        self.frames.append(data)


def test_warm_when_called_then_signed_request_built_and_nothing_pending() -> None:
    creds = Credentials("k", "s")
    t = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", creds)
    n = t.warm("BTCUSDT")
    ts = "1700000000000"
    # same shape as a real request: only the timestamp's digits (same length) and the signature differ
    assert n == len(t.place_frame(1, "BTCUSDT", "BUY", "0.001", "b25-warm-0", "1.0", "GTC", False, ts))
    assert t.pending == {} and t._next_id == 0


@pytest.mark.parametrize("limit", [True, False])
@pytest.mark.parametrize("reduce_only", [False, True])
def test_place_when_template_then_same_bytes_as_generic_send(limit: bool, reduce_only: bool) -> None:
    creds = Credentials('key"with\\quote', "secret")
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


def test_engine_warm_when_called_then_nothing_sent_journaled_published_or_stored(tmp_path: Path) -> None:
    from tests.support.execution_engine import make

    eng, prod, wire, c = make(tmp_path)
    size = (tmp_path / "j").stat().st_size
    tokens = [b.tokens for b in eng.limiter.buckets]
    assert eng.warm() == 0  # no WS transport: all but the request
    eng.ws = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", Credentials("k", "s"))
    assert eng.warm() > 0
    assert (tmp_path / "j").stat().st_size == size and eng.journal.records == 1  # the epoch record only
    assert prod.out == [] and wire.sent == [] and eng.ws.pending == {} and eng.ws._next_id == 0
    assert eng.store.by_cid == {} and eng.store.counts.total == 0 and not eng.rate and eng.n == 0
    assert [b.tokens for b in eng.limiter.buckets] == pytest.approx(tokens)
    assert c["keep_warm"] == 2
    j = eng.journal
    # the scratch frame went past the last frame with its length word left 0: no reader sees it
    assert j._mm[j.end:j.end + 4] == b"\0\0\0\0" and any(j._mm[j.end + 4:j.end + 64])
    assert [r.kind for r in read_journal(tmp_path / "j")[0]] == [REC_EPOCH]
    j.close()
    assert (tmp_path / "j").stat().st_size == j.end  # the zero tail and the scratch bytes are gone
    eng.warm()  # a last tick after close: nothing is written
    assert (tmp_path / "j").stat().st_size == j.end


@pytest.mark.parametrize("method", ["order.cancel", "order.status"])
def test_by_cid_when_template_then_same_bytes_as_generic_send(method: str) -> None:
    t = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", Credentials('key"with\\quote', "secret"))
    sock = Socket()
    t.transport = sock  # type: ignore[assignment]
    assert t.send(method, {"symbol": "ETHUSDT", "origClientOrderId": "b25-3-17"}, lambda r: None) > 0
    generic = sock.frames[-1]
    ts = msgspec.json.decode(generic)["params"]["timestamp"]
    assert t.by_cid(method, "ETHUSDT", "b25-3-17", lambda r: None) > 0
    assert sorted(t.pending) == [1, 2] and msgspec.json.decode(sock.frames[-1])["id"] == 2
    assert t.by_cid_frame(1, method, "ETHUSDT", "b25-3-17", ts) == generic
