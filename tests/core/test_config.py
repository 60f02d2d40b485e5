"""The deployment file: every shipped config decodes; mistakes fail naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from procs.core.config import ConfigError, load_section
from procs.core.deploy import DeployConfig
from procs.exchange_sim.config import SimConfig
from procs.execution.config import ExecutionConfig
from procs.market_data.config import MarketDataConfig
from procs.monitor.config import MonitorConfig
from procs.risk.config import RiskConfig
from procs.strategy.config import StrategyEngineConfig
from procs.venue.adapters import venue_config
from tests.support import ROOT

SECTIONS = {"deploy": DeployConfig, "sim": SimConfig, "market_data": MarketDataConfig, "strategy": StrategyEngineConfig,
            "execution": ExecutionConfig, "risk": RiskConfig, "monitor": MonitorConfig}


@pytest.mark.parametrize("name", ["b25.toml", "b25.testnet.toml"])
def test_shipped_config_when_loaded_then_every_section_decodes(name: str) -> None:
    path = ROOT / name
    for section, typ in SECTIONS.items():
        load_section(path, section, typ)
    assert venue_config(path).kind == "binance_usdm"


# every error reads "invalid config <file> section [<section>] field <field>: <reason>"
@pytest.mark.parametrize("body,section,typ,field,reason", [
    ('[market_data]\nstale_after_z = 1.0', "market_data", MarketDataConfig, "stale_after_z", "unknown field"),
    ('[market_data]\nstale_after_s = "soon"', "market_data", MarketDataConfig, "stale_after_s", "Expected `float`, got `str`"),
    ('[deploy]\ndepth = 0', "deploy", DeployConfig, "depth", "depth must be 1..1000"),
    ('[deploy]\nsymbols = ["BTCUSDT", "BTCUSDT"]', "deploy", DeployConfig, "symbols", "must be unique"),
    ('[deploy.rings]\nexec = 1000', "deploy", DeployConfig, "rings.exec", "must be a power of two"),
    ('[deploy.rings]\nmd_book = 8', "deploy", DeployConfig, "rings.md_book", "from 16 to 1048576"),
    ('[deploy.rings]\nmd_books = 8', "deploy", DeployConfig, "rings.md_books", "unknown field"),
    ('[risk.default]\nmax_order_qty = "lots"', "risk", RiskConfig, "default.max_order_qty", "not a decimal"),
    ('[execution]\nlimiter_safety = 1.5', "execution", ExecutionConfig, "limiter_safety", "must be in (0, 1]"),
    ('[market_data]\nsymbols = ["BTCUSDT"]', "market_data", MarketDataConfig, "symbols", "moved to [deploy] symbols"),
    ('[market_data]\ndepth = 10', "market_data", MarketDataConfig, "depth", "moved to [deploy] depth"),
])
def test_load_section_when_a_value_is_bad_then_error_names_file_section_field_and_reason(
        tmp_path: Path, body: str, section: str, typ: type, field: str, reason: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text(body + "\n")
    with pytest.raises(ConfigError) as e:
        load_section(p, section, typ)
    head, _, why = str(e.value).partition(": ")
    assert head == f"invalid config {p} section [{section}] field {field}"
    assert reason in why


def test_read_when_section_misspelled_then_error_names_section(tmp_path: Path) -> None:
    p = tmp_path / "b.toml"
    p.write_text('[riks]\nmax_drawdown = "1"\n')
    with pytest.raises(ConfigError, match=r"section=\[riks\]"):
        load_section(p, "risk", RiskConfig)


UVLOOP = [("market_data", MarketDataConfig), ("execution", ExecutionConfig)]
AGENTS = [("strategy", StrategyEngineConfig), ("execution", ExecutionConfig)]


def _load(tmp_path: Path, section: str, typ: type, body: str) -> object:
    p = tmp_path / "b.toml"
    p.write_text(f"[{section}]\n{body}\n")
    return load_section(p, section, typ)


def _load_runtime(tmp_path: Path, section: str, typ: type, body: str) -> Any:
    """``[<section>.runtime]`` holding ``body``, decoded through the section: its Runtime."""
    p = tmp_path / "b.toml"
    p.write_text(f"[{section}.runtime]\n{body}\n")
    return load_section(p, section, typ).runtime  # type: ignore[attr-defined]


@pytest.mark.parametrize("section,typ", UVLOOP)
@pytest.mark.parametrize("ms", ["0.25", "0.5", "0.9", "-1.0", "nan"])
def test_keep_warm_ms_when_under_one_ms_on_a_uvloop_process_then_rejected(tmp_path: Path, section: str,
                                                                        typ: type, ms: str) -> None:
    # uvloop rounds a 0.25-0.5 ms timer to 0: the re-armed keep-warm tick would spin at SCHED_FIFO
    with pytest.raises(ConfigError, match=r"keep_warm_ms must be 0 \(off\) or at least 1 ms"):
        _load_runtime(tmp_path, section, typ, f"keep_warm_ms = {ms}")


@pytest.mark.parametrize("section,typ", UVLOOP)
@pytest.mark.parametrize("ms", [0.0, 1.0, 2.5])
def test_keep_warm_ms_when_off_or_whole_ms_then_accepted(tmp_path: Path, section: str, typ: type, ms: float) -> None:
    assert _load_runtime(tmp_path, section, typ, f"keep_warm_ms = {ms}").keep_warm_ms == ms


@pytest.mark.parametrize("section,typ", AGENTS)
@pytest.mark.parametrize("idle,sched", [("spin", "fifo:10"), ("yield", "rr:5")])
def test_idle_when_it_never_parks_under_a_real_time_sched_then_rejected(tmp_path: Path, section: str, typ: type,
                                                                        idle: str, sched: str) -> None:
    with pytest.raises(ConfigError, match=rf"idle='{idle}' never parks, and under sched='{sched}'"):
        _load_runtime(tmp_path, section, typ, f'idle = "{idle}"\nsched = "{sched}"')


@pytest.mark.parametrize("section,typ", AGENTS)
@pytest.mark.parametrize("idle,sched", [("spin", ""), ("spin", "nice:-5"), ("backoff", "fifo:10"), ("block", "rr:3")])
def test_idle_when_spin_is_left_to_the_normal_scheduler_or_parks_then_accepted(tmp_path: Path, section: str,
                                                                              typ: type, idle: str, sched: str) -> None:
    cfg = _load_runtime(tmp_path, section, typ, f'idle = "{idle}"\nsched = "{sched}"')
    assert (cfg.idle, cfg.sched) == (idle, sched)


def test_strategy_idle_when_unknown_alias_then_rejected_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"idle must be one of spin, yield, sleep, block, backoff: idle='spinn'"):
        _load_runtime(tmp_path, "strategy", StrategyEngineConfig, 'idle = "spinn"')


@pytest.mark.parametrize("table,body,field", [
    ("strategy.runtime", "keep_warm_ms = 0.01", "keep_warm_ms"), ("strategy.runtime", "keep_warm_ms = -1.0", "keep_warm_ms"),
    ("strategy", "timer_resolution_ms = 0.001", "timer_resolution_ms"),
    ("strategy", "timer_resolution_ms = 0.0", "timer_resolution_ms")])
def test_strategy_park_bounds_when_shorter_than_a_tenth_ms_then_rejected(tmp_path: Path, table: str, body: str,
                                                                         field: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text(f"[{table}]\n{body}\n")
    with pytest.raises(ConfigError, match=rf"{field} must be .*(at least 0.1 ms|or more).*: {field}="):
        load_section(p, "strategy", StrategyEngineConfig)


def test_strategy_park_bounds_when_off_or_a_tenth_ms_then_accepted(tmp_path: Path) -> None:
    p = tmp_path / "b.toml"
    p.write_text("[strategy]\ntimer_resolution_ms = 0.1\n[strategy.runtime]\nkeep_warm_ms = 0.0\n")
    cfg = load_section(p, "strategy", StrategyEngineConfig)
    assert (cfg.runtime.keep_warm_ms, cfg.timer_resolution_ms) == (0.0, 0.1)


@pytest.mark.parametrize("section,typ,field", [("monitor", MonitorConfig, "idle"), ("market_data", MarketDataConfig, "idle"),
                                               ("risk", RiskConfig, "keep_warm_ms")])
def test_runtime_when_a_field_the_process_does_not_read_is_set_then_rejected_naming_it(
        tmp_path: Path, section: str, typ: type, field: str) -> None:
    value = '"spin"' if field == "idle" else "2.0"
    with pytest.raises(ConfigError, match=rf"section \[{section}\] field runtime.{field}: {field} does not apply"):
        _load_runtime(tmp_path, section, typ, f"{field} = {value}")


@pytest.mark.parametrize("section,field", [("strategy", "idle"), ("execution", "sched"), ("risk", "cpu"),
                                           ("market_data", "keep_warm_ms")])
def test_runtime_field_when_left_in_the_section_then_error_says_where_it_moved(tmp_path: Path, section: str,
                                                                              field: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text(f"[{section}]\n{field} = 1\n")
    with pytest.raises(ConfigError, match=rf"section \[{section}\] field {field}: moved to \[{section}.runtime\] {field}"):
        load_section(p, section, SECTIONS[section])


def test_runtime_when_absent_then_each_service_keeps_its_defaults() -> None:
    assert RiskConfig().runtime.idle == "block" and StrategyEngineConfig().runtime.keep_warm_ms == 1.0
    assert MarketDataConfig().runtime.keep_warm_ms == 1.0 and MonitorConfig().runtime.sched == ""


@pytest.mark.parametrize("section", ["sim", "strategy", "execution", "risk"])
def test_replay_clock_when_set_then_every_section_names_it_sim_clock(tmp_path: Path, section: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text(f"[{section}]\nsim_clock = true\n")
    assert load_section(p, section, SECTIONS[section]).sim_clock is True


@pytest.mark.parametrize("section", ["sim", "execution"])
def test_replay_clock_when_the_old_clock_instance_is_given_then_error_says_sim_clock(tmp_path: Path,
                                                                                    section: str) -> None:
    p = tmp_path / "b.toml"
    p.write_text(f'[{section}]\nclock_instance = "replay1"\n')
    with pytest.raises(ConfigError, match=rf"section \[{section}\] field clock_instance: moved to \[{section}\] sim_clock"):
        load_section(p, section, SECTIONS[section])


def test_sim_lockstep_when_sim_clock_is_off_then_rejected_naming_it(tmp_path: Path) -> None:
    p = tmp_path / "b.toml"
    p.write_text("[sim]\nlockstep = true\n")
    with pytest.raises(ConfigError, match=r"lockstep needs sim_clock = true"):
        load_section(p, "sim", SimConfig)
