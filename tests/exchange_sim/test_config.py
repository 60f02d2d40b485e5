"""The [sim] config section: defaults, faults, bad fields, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs.core.config import ConfigError
from procs.exchange_sim.config import SimConfig, load_sim_config


def test_load_when_no_file_then_defaults() -> None:
    cfg = load_sim_config(None)
    assert cfg == SimConfig()
    assert (cfg.rest_port, cfg.ws_port, cfg.symbols, cfg.source) == (9731, 9732, ["BTCUSDT", "ETHUSDT"], "generator")


def test_load_when_faults_and_generator_then_decoded(tmp_path: Path) -> None:
    (tmp_path / "rec.gz").write_bytes(b"")
    f = tmp_path / "b25.toml"
    f.write_text('[sim]\nsource = "replay"\nreplay = ["rec.gz"]\nspeed = 0\n[sim.generator]\nseed = 3\n'
                 '[[sim.faults]]\nfault = "stall"\nseconds = 2\nevery_s = 5\n')
    cfg = load_sim_config(f)
    assert cfg.replay == [str(tmp_path / "rec.gz")] and cfg.speed == 0 and cfg.generator.seed == 3
    assert cfg.faults[0].fault == "stall" and cfg.faults[0].every_s == 5


@pytest.mark.parametrize("text,field", [
    ("[sim]\nport = 1\n", "port"),
    ('[sim]\nsource = "file"\n', "source"),
    ('[[sim.faults]]\nfault = "explode"\n', "fault"),
])
def test_load_when_field_unknown_or_invalid_then_config_error_names_it(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_sim_config(f)
