"""API credentials: environment first, then a 0600 secrets file, then config; never printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from procs.execution.config import ExecutionConfig
from procs.execution.credentials import SIM_TEST_KEY, load_credentials


def test_credentials_when_env_set_then_env_wins(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("B25_API_KEY", "envkey")
    monkeypatch.setenv("B25_API_SECRET", "envsecret-do-not-print")
    c = load_credentials(ExecutionConfig(api_key="cfgkey", api_secret="cfgsecret"))
    assert c.key == "envkey" and "envsecret" not in repr(c)
    assert "envsecret" not in capsys.readouterr().err


def test_credentials_when_secrets_file_is_0600_then_used_else_refused(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B25_API_KEY", raising=False)
    monkeypatch.delenv("B25_API_SECRET", raising=False)
    f = tmp_path / "secrets.toml"
    f.write_text('api_key = "filekey"\napi_secret = "filesecret"\n')
    os.chmod(f, 0o600)
    assert load_credentials(ExecutionConfig(secrets_file=str(f))).key == "filekey"
    os.chmod(f, 0o644)
    with pytest.raises(ValueError, match="chmod 600") as exc:
        load_credentials(ExecutionConfig(secrets_file=str(f)))
    assert "filesecret" not in str(exc.value)


def test_credentials_when_none_then_simulator_key_only_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B25_API_KEY", raising=False)
    monkeypatch.delenv("B25_API_SECRET", raising=False)
    assert load_credentials(ExecutionConfig()).key == SIM_TEST_KEY[0]
    with pytest.raises(ValueError, match="no API credentials"):
        load_credentials(ExecutionConfig(rest_url="https://fapi.binance.com"))


def test_signing_when_ws_params_then_matches_the_simulators_check() -> None:
    from procs.exchange_sim.trading.signing import ws_signature_ok
    from procs.execution.transport import Credentials, ws_sign

    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "timestamp": "1"}
    ws_sign(Credentials("k", "s"), params)
    assert ws_signature_ok("s", params, params["signature"])


def test_config_when_printed_then_secret_hidden() -> None:
    text = repr(ExecutionConfig(api_key="k", api_secret="s3cret-value"))
    assert "s3cret-value" not in text and "api_secret='***'" in text and "api_key='k'" in text


@pytest.mark.parametrize("secret", ["", "b25-test-secret", "x" * 64, "y" * 65, "ünïcode-secret" * 9])
def test_sign_when_any_secret_length_then_equals_hmac_sha256(secret: str) -> None:
    import hashlib
    import hmac

    from procs.execution.transport import Credentials

    c = Credentials("k", secret)
    for payload in ("", "symbol=BTCUSDT&timestamp=1700000000000", "a=b" * 200):
        assert c.sign(payload) == hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
