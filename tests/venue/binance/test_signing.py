"""The one signer: HMAC-SHA256 equal to the stdlib's for any secret, the exchange's documented
vector, the REST query and WS API params as the simulator checks them."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from procs.venue.binance.signing import Signer, rest_query, sign, ws_sign


def test_sign_when_doc_vector_then_matches() -> None:
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    msg = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
           "&timestamp=1591702613943")
    assert sign(secret, msg) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


@pytest.mark.parametrize("secret", ["", "b25-test-secret", "x" * 64, "y" * 65, "ünïcode-secret" * 9])
def test_sign_when_any_secret_length_then_equals_hmac_sha256(secret: str) -> None:
    c = Signer("k", secret)
    for payload in ("", "symbol=BTCUSDT&timestamp=1700000000000", "a=b" * 200):
        assert c.sign(payload) == hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_rest_query_when_built_then_signature_last_over_everything_before() -> None:
    q = rest_query(Signer("k", "s"), {"symbol": "BTCUSDT"}, 5000, now_ms=1700000000000)
    head, sig = q.rsplit("&signature=", 1)
    assert head == "symbol=BTCUSDT&timestamp=1700000000000&recvWindow=5000" and sig == sign("s", head)


def test_signing_when_ws_params_then_matches_the_simulators_check() -> None:
    from procs.exchange_sim.trading.signing import rest_signature_ok, ws_signature_ok

    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "timestamp": "1"}
    ws_sign(Signer("k", "s"), params)
    assert params["apiKey"] == "k" and ws_signature_ok("s", params, params["signature"])
    q = rest_query(Signer("k", "s"), {"symbol": "BTCUSDT"}, 5000)
    head, sig = q.rsplit("&signature=", 1)
    assert rest_signature_ok("s", q, "", sig) and not rest_signature_ok("other", q, "", sig)


def test_signer_when_printed_then_secret_hidden() -> None:
    assert "topsecret" not in repr(Signer("abcdef", "topsecret"))
