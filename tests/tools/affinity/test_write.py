"""The --write fragment: a [<section>.runtime] table with cpu, idle and sched per process, accepted by the real configs."""

from __future__ import annotations

import tomllib

import msgspec
import pytest

from procs.core.services import SERVICES
from procs.tools.affinity.layout import propose
from procs.tools.affinity.topology import Permissions, read_topology
from procs.tools.affinity.write import SECTION_TYPES, section_fields, to_toml
from tests.support.fake_sysfs import make_tree

PERMS = Permissions(euid=0, cap_sys_nice=True, rtprio_limit=0, nice_rlimit=0)
SECTIONS = tuple(s.section for s in SERVICES)  # every process of the service table
HOT = ("market_data", "strategy", "execution")


def proposal(tmp_path, **kw):
    return propose(read_topology(*make_tree(tmp_path, **kw)), PERMS)


def runtimes(text: str) -> dict:
    """section -> its [<section>.runtime] table, from the fragment."""
    return {section: table["runtime"] for section, table in tomllib.loads(text).items()}


def test_to_toml_when_every_field_is_known_then_each_section_has_cpu_and_idle(tmp_path):
    p = proposal(tmp_path, cores_per_socket=4, threads=2)
    doc = runtimes(to_toml(p, fields_of=lambda _s: None, header="test"))
    assert set(doc) == set(SECTIONS)
    for name, section in (("market_data", "market_data"), ("strategy", "strategy"), ("execution", "execution")):
        assert doc[section]["cpu"] == p.get(name).cpu >= 0
        assert doc[section]["idle"] == "spin"
    for section in set(SECTIONS) - set(HOT):  # the simulator, risk, bridge, monitor, notifier, web
        assert isinstance(doc[section]["cpu"], int) and doc[section]["idle"] == "block"


def test_to_toml_when_a_section_lacks_a_field_then_it_is_a_comment_not_a_key(tmp_path):
    p = proposal(tmp_path, cores_per_socket=2)
    text = to_toml(p, fields_of=lambda s: {"cpu"} if s == "market_data" else set())
    doc = runtimes(text)
    assert doc["market_data"] == {"cpu": -1}
    assert doc["risk"] == {}
    assert '# idle = "backoff"  (not read by market_data: [market_data.runtime] has no idle field)' in text


def test_to_toml_when_shared_layout_then_cpu_is_minus_one_everywhere(tmp_path):
    doc = runtimes(to_toml(proposal(tmp_path, cores_per_socket=2), fields_of=lambda _s: None))
    assert {doc[s]["cpu"] for s in SECTIONS} == {-1}
    assert {s: doc[s]["idle"] for s in SECTIONS} == {
        s: "backoff" if s in ("market_data", "strategy", "execution") else "block" for s in SECTIONS}


@pytest.mark.parametrize("section", sorted(SECTION_TYPES))
def test_to_toml_when_decoded_by_the_real_section_type_then_accepted(tmp_path, section):
    fields = section_fields(section)
    if fields is None:
        pytest.skip(f"config type for [{section}] not importable yet: {SECTION_TYPES[section]}")
    p = proposal(tmp_path, sockets=2, cores_per_socket=16, threads=2, isolated="8-15,40-47")
    doc = tomllib.loads(to_toml(p))
    module, _, cls = SECTION_TYPES[section].partition(":")
    typ = getattr(__import__(module, fromlist=[cls]), cls)
    cfg = msgspec.convert(doc.get(section, {}), typ)  # forbid_unknown_fields: an extra key would raise
    if "cpu" in fields:
        owner = next(pl for pl in p.placements if pl.section == section)
        assert cfg.runtime.cpu == owner.cpu


def test_note_unread_fields_when_section_lacks_cpu_or_idle_then_the_reason_says_so(tmp_path):
    from procs.tools.affinity.write import note_unread_fields

    p = proposal(tmp_path, cores_per_socket=2)
    note_unread_fields(p, fields_of=lambda s: {"cpu"} if s == "market_data" else (set() if s == "sim" else None))
    md = " ".join(p.get("market_data").why)
    assert "[market_data.runtime] has no idle field" in md and "no cpu field" not in md
    sim = " ".join(p.get("exchange_sim").why)
    assert "[sim.runtime] has no cpu field" in sim and "[sim.runtime] has no idle field" in sim
    assert not any("has no" in w for w in p.get("risk").why)


def test_to_toml_when_hot_path_is_fifo_then_sched_key_matches_the_placement(tmp_path):
    p = proposal(tmp_path, cores_per_socket=2)  # shared 2-core layout: hot path SCHED_FIFO, monitor nice
    doc = runtimes(to_toml(p, fields_of=lambda _s: None))
    for name in ("market_data", "strategy", "execution"):
        pl = p.get(name)
        assert pl.policy == "fifo" and doc[name]["sched"] == f"fifo:{pl.priority}"
    assert doc["monitor"]["sched"] == f"nice:{p.get('monitor').nice}" and p.get("monitor").nice > 0
    assert doc["risk"]["sched"] == ""  # the normal scheduler, said explicitly (see the merge test below)


def test_to_toml_when_merged_into_the_shipped_b25_toml_then_no_spin_runs_under_fifo(tmp_path):
    # isolated hot cores: spin under the normal scheduler. Merged key by key into b25.toml (whose hot
    # path runs fifo:10), every section must still decode, so sched = "" has to replace fifo:10
    from tests.support import ROOT

    shipped = tomllib.loads((ROOT / "b25.toml").read_text())
    p = proposal(tmp_path, sockets=2, cores_per_socket=16, threads=2, isolated="8-15,40-47")
    doc = runtimes(to_toml(p))
    assert {doc[s]["idle"] for s in ("strategy", "execution")} == {"spin"}  # market_data has no idle field
    for section, path in SECTION_TYPES.items():
        module, _, cls = path.partition(":")
        typ = getattr(__import__(module, fromlist=[cls]), cls)
        table = shipped.get(section, {})
        merged = {**table, "runtime": {**table.get("runtime", {}), **doc.get(section, {})}}
        cfg = msgspec.convert(merged, typ)
        if cfg.runtime.idle == "spin":
            assert cfg.runtime.sched == "", (section, cfg.runtime.sched)
