"""exchangeInfo parsed once: instruments with exact scales, request limits in b25's words, the
simulator's session; files in JSON or the cryptofeed recording format; one fetch, retried."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO
from procs.venue.binance import exchange_info as X
from procs.venue.messages import RateLimit


def test_parse_when_simulator_default_then_instruments_limits_and_no_session() -> None:
    body = json.loads(Path(DEFAULT_EXCHANGE_INFO).read_text())
    info = X.parse(body)
    btc = info.instruments["BTCUSDT"]
    assert btc.tick_size == "0.01" and btc.price_scale == 2 and btc.step_size == "0.001" and btc.qty_scale == 3
    assert btc.price_to_ticks("63943.9") == 6394390
    assert RateLimit("orders", 10_000, 300) in info.rate_limits and info.session == ""
    assert all(r.kind in ("weight", "orders") for r in info.rate_limits)
    body[X.SIM_SESSION_FIELD] = "sim-1"
    assert X.parse(body).session == "sim-1"


def test_read_when_cryptofeed_recording_then_first_line_body(real_data: Path) -> None:
    info = X.read(real_data / "cryptofeed-binance" / "BINANCE_FUTURES.0")
    assert "BTCUSDT" in info.instruments and info.rate_limits


def test_wait_for_when_nothing_listens_then_retried_until_stopped_or_attempts_spent() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    looks = []
    assert X.wait_for(url, lambda: looks.append(1) or len(looks) > 3, retry_min_s=0.01) is None
    with pytest.raises(OSError):
        X.wait_for(url, attempts=2, retry_min_s=0.01)


@pytest.mark.parametrize("tick", ["NaN", "-Infinity", "Infinity", "sNaN"])
def test_parse_when_a_tick_size_is_not_a_finite_decimal_then_value_error_naming_the_entry(tick: str) -> None:
    """b25 fuzz found it: tickSize "NaN" failed an assertion inside scale_of, which parse did not
    turn into its error naming the entry; a start would have died on a traceback."""
    body = json.loads(Path(DEFAULT_EXCHANGE_INFO).read_text())
    entry = body["symbols"][0]
    for f in entry["filters"]:
        if f["filterType"] == "PRICE_FILTER":
            f["tickSize"] = tick
    with pytest.raises(ValueError, match=rf"symbols\[0\] \({entry['symbol']}\) not understood.*not a finite decimal"):
        X.parse(body)
