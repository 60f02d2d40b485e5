"""API credentials from [venue]: environment first, then a 0600 secrets file, then config, then
(loopback only) the simulator's test account; never printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from procs.venue.adapters import decode_venue, open_venue
from procs.venue.binance.signing import TEST_ACCOUNT


def signer(**venue: str):
    return open_venue(decode_venue(venue)).signer()


def test_credentials_when_env_set_then_env_wins(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("B25_API_KEY", "envkey")
    monkeypatch.setenv("B25_API_SECRET", "envsecret-do-not-print")
    c = signer(api_key="cfgkey", api_secret="cfgsecret")
    assert c.key == "envkey" and "envsecret" not in repr(c)
    assert "envsecret" not in capsys.readouterr().err


def test_credentials_when_secrets_file_is_0600_then_used_else_refused(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B25_API_KEY", raising=False)
    monkeypatch.delenv("B25_API_SECRET", raising=False)
    f = tmp_path / "secrets.toml"
    f.write_text('api_key = "filekey"\napi_secret = "filesecret"\n')
    os.chmod(f, 0o600)
    assert signer(secrets_file=str(f)).key == "filekey"
    os.chmod(f, 0o644)
    with pytest.raises(ValueError, match="chmod 600") as exc:
        signer(secrets_file=str(f))
    assert "filesecret" not in str(exc.value) and "section=[venue]" in str(exc.value)


def test_credentials_when_none_then_simulator_key_only_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B25_API_KEY", raising=False)
    monkeypatch.delenv("B25_API_SECRET", raising=False)
    assert signer().key == TEST_ACCOUNT[0]
    with pytest.raises(ValueError, match="no API credentials"):
        signer(rest_url="https://fapi.binance.com")


def test_config_when_printed_then_secret_hidden() -> None:
    text = repr(decode_venue({"api_key": "k", "api_secret": "s3cret-value"}))
    assert "s3cret-value" not in text and "api_secret='***'" in text and "api_key='k'" in text
