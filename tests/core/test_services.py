"""The service table is the one list of processes: supervisord.conf, the registry's consumers,
config sections, affinity, the Stack and the monitor's required list agree with it."""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import io
import json
from pathlib import Path

import msgspec
import pytest

from procs.cli import main as b25
from procs.core import services
from procs.core.config import ConfigError, read_toml
from procs.core.registry import build_registry
from procs.monitor.config import load_monitor_config
from procs.tools import stack
from procs.tools.affinity import layout, write
from procs.tools.services import repository_config
from tests.support import ROOT


def _b25(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert b25(list(argv)) == 0
    return out.getvalue()


def test_supervisord_conf_when_rendered_from_the_table_then_equal_to_the_committed_file() -> None:
    committed = (ROOT / "supervisord.conf").read_text()
    assert committed == repository_config(), "supervisord.conf is stale: run `b25 services --supervisord > supervisord.conf`"


def test_services_json_when_printed_then_agrees_with_supervisord_conf() -> None:
    rows = json.loads(_b25("services", "--json"))["services"]
    assert [set(r) for r in rows] == [{"name", "section", "priority", "hot_path", "produces", "consumes", "required",
                                       "enabled_by"}] * len(rows)
    conf = configparser.RawConfigParser()
    conf.read_string((ROOT / "supervisord.conf").read_text())
    programs = {s.split(":", 1)[1]: conf[s] for s in conf.sections() if s.startswith("program:")}
    assert [r["name"] for r in rows] == sorted(programs, key=lambda n: int(programs[n]["priority"]))
    for r in rows:
        prog = programs[r["name"]]
        assert int(prog["priority"]) == r["priority"]
        assert f"-m procs.{r['name']} " in prog["command"]
        expected = f"%(ENV_B25_ENABLE_{r['name'].upper()})s" if r["enabled_by"] else "true"
        assert prog["autostart"] == expected


def test_every_service_when_looked_up_then_has_a_main_and_a_config_type_of_its_section() -> None:
    for s in services.SERVICES:
        assert importlib.util.find_spec(f"{s.module}.__main__") is not None, s.name
        typ = s.load_config_type()
        assert issubclass(typ, msgspec.Struct), s.name
        assert s.section in services.known_sections()


def test_registry_when_built_then_each_ring_has_the_consumers_the_table_names() -> None:
    reg = build_registry()
    rings = {spec.name: spec for spec in reg.rings.values()}
    for name, spec in rings.items():
        assert tuple(spec.consumers) == services.consumers_of(name), name
    for s in services.SERVICES:
        for ring in s.consumes:
            assert ring in rings or ring in {st.name for st in reg.states.values()}, f"{s.name} consumes unknown {ring}"
    producers: dict[str, list[str]] = {}
    for s in services.SERVICES:
        for name in s.produces:
            producers.setdefault(name, []).append(s.name)
    assert all(len(v) == 1 for v in producers.values()), producers
    # every ring has one producing service, but orders.manual (written by the TUI and tools)
    assert set(rings) - set(producers) == {"orders.manual"}


def test_hot_path_when_derived_then_in_tick_to_order_order() -> None:
    assert services.HOT_PATH == ("market_data", "strategy", "execution")
    assert services.ON_RINGS == ("market_data", "strategy", "execution", "risk")
    assert services.consumers_of("md.book") == ("strategy", "risk")


def test_tools_when_listing_processes_then_take_them_from_the_table() -> None:
    assert stack.ORDER == services.NAMES
    assert "monitor" not in stack.PIPELINE and set(stack.PIPELINE) < set(services.NAMES)
    # affinity places b25's own processes: an external program (the embedded nats-server) reads no cpu/sched
    own = tuple(n for n in services.NAMES if not services.BY_NAME[n].external)
    assert "nats_server" in services.NAMES and "nats_server" not in own
    assert layout.PROCESSES == own and layout.HOT_PATH == services.HOT_PATH
    assert layout.SECTIONS == {s.name: s.section for s in services.SERVICES if not s.external}
    assert write.SECTION_TYPES == services.section_types()


def test_config_when_an_unknown_section_then_refused_naming_the_known_ones(tmp_path: Path) -> None:
    p = tmp_path / "b25.toml"
    p.write_text("[riks]\nmax_open_orders = 3\n")
    with pytest.raises(ConfigError, match=r"section=\[riks\] known=.*risk"):
        read_toml(p)


def test_monitor_required_when_left_out_then_the_tables_with_the_simulator_only_when_it_runs(tmp_path: Path) -> None:
    sim = tmp_path / "sim.toml"
    sim.write_text("[deploy]\nsim = true\n")
    venue = tmp_path / "venue.toml"
    venue.write_text("[deploy]\nsim = false\n")
    assert load_monitor_config(sim).required == ["exchange_sim", "market_data", "risk", "execution", "strategy"]
    assert load_monitor_config(venue).required == ["market_data", "risk", "execution", "strategy"]
    assert load_monitor_config(ROOT / "b25.testnet.toml").required == ["market_data", "risk", "execution", "strategy"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[monitor]\nrequired = ["market_data", "riks"]\n')
    with pytest.raises(ConfigError, match="required=riks"):
        load_monitor_config(bad)


def test_run_script_when_the_simulator_is_off_then_its_program_is_not_started(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("b25_run_script", ROOT / "scripts" / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    env = run._environment("x", ROOT / "b25.testnet.toml")
    assert env["B25_ENABLE_EXCHANGE_SIM"] == "false"
    assert run._environment("x", ROOT / "b25.toml")["B25_ENABLE_EXCHANGE_SIM"] == "true"
