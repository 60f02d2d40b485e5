"""[venue]: decoded by its kind into the adapter's struct; a mistake names the file, the section,
the field and the reason; the per-process copies of its fields are gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs.core.config import ConfigError, load_section
from procs.execution.config import ExecutionConfig
from procs.market_data.config import MarketDataConfig
from procs.risk.config import RiskConfig
from procs.strategy.config import StrategyEngineConfig
from procs.venue.adapters import open_venue, venue_at, venue_config
from procs.venue.binance.config import BinanceUsdmConfig


def write(tmp: Path, text: str) -> Path:
    p = tmp / "b25.toml"
    p.write_text(text)
    return p


def test_venue_when_absent_then_the_simulator_on_loopback(tmp_path: Path) -> None:
    cfg = venue_config(write(tmp_path, "[market_data]\n"))
    assert isinstance(cfg, BinanceUsdmConfig) and cfg.kind == "binance_usdm"
    assert cfg.rest_url == "http://127.0.0.1:9731" and cfg.ws_stream_url == "ws://127.0.0.1:9732"
    assert type(open_venue(cfg)).__module__ == "procs.venue.binance.adapter"


@pytest.mark.parametrize(("text", "field", "reason"), [
    ('[venue]\nkind = "nosuchvenue"\n', "kind", "Invalid value 'nosuchvenue'"),
    ('[venue]\nrest_url = 5\n', "rest_url", "Expected `str`, got `int`"),
    ('[venue]\nrecv_window_ms = 0\n', "recv_window_ms", "recv_window_ms must be 1..60000"),
    ('[venue]\nresturl = "http://x"\n', "resturl", "unknown field"),
    ('[venue]\ntrade_stream = "kline_1m"\n', "trade_stream", "trade_stream must be trade, aggTrade or empty"),
])
def test_venue_when_wrong_then_error_names_file_section_field_and_reason(tmp_path: Path, text: str, field: str,
                                                                          reason: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        venue_config(p)
    msg = str(exc.value)
    assert str(p) in msg and "section [venue]" in msg and field in msg and reason in msg


@pytest.mark.parametrize(("section", "typ", "field"), [
    ("market_data", MarketDataConfig, "rest_url"), ("market_data", MarketDataConfig, "ws_url"),
    ("market_data", MarketDataConfig, "exchange_info"), ("execution", ExecutionConfig, "api_key"),
    ("execution", ExecutionConfig, "ws_api_url"), ("execution", ExecutionConfig, "secrets_file"),
    ("risk", RiskConfig, "rest_url"), ("risk", RiskConfig, "api_secret"), ("strategy", StrategyEngineConfig, "exchange_info"),
])
def test_process_section_when_it_names_a_venue_field_then_refused(tmp_path: Path, section: str, typ: type,
                                                                   field: str) -> None:
    p = write(tmp_path, f'[{section}]\n{field} = "x"\n')
    with pytest.raises(ConfigError, match=f"unknown field `{field}`"):
        load_section(p, section, typ)


def test_venue_at_when_simulator_ports_then_endpoints_moved_and_paths_kept() -> None:
    t = venue_at("http://127.0.0.1:1", "ws://127.0.0.1:2", {"recv_window_ms": 100})
    assert t["rest_url"] == "http://127.0.0.1:1" and t["ws_stream_url"] == "ws://127.0.0.1:2"
    assert t["ws_api_url"] == "ws://127.0.0.1:2" + "/ws-fapi/v1" and t["recv_window_ms"] == 100


def test_info_when_file_unreadable_then_error_names_the_field(tmp_path: Path) -> None:
    venue = open_venue(venue_config(write(tmp_path, f'[venue]\nexchange_info = "{tmp_path / "none.json"}"\n')))
    with pytest.raises(ValueError, match=r"section=\[venue\] exchange_info=.*none.json"):
        venue.info()
