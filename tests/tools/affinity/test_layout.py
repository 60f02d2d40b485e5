"""Layout proposals: hot path placement, SMT siblings, NUMA, idle strategy and scheduling rules."""

from __future__ import annotations

import itertools

import pytest

from procs.tools.affinity.layout import HOT_PATH, PROCESSES, propose, validate
from procs.tools.affinity.topology import Permissions, read_topology
from tests.support.fake_sysfs import make_tree

ROOT_PERMS = Permissions(euid=0, cap_sys_nice=True, rtprio_limit=0, nice_rlimit=0)
NICE_ONLY = Permissions(euid=1000, cap_sys_nice=False, rtprio_limit=0, nice_rlimit=30)
NOTHING = Permissions(euid=1000, cap_sys_nice=False, rtprio_limit=0, nice_rlimit=0)


def topo(tmp_path, name="t", **kw):
    d = tmp_path / name
    d.mkdir()
    return read_topology(*make_tree(d, **kw))


def hot(p):
    return [p.get(n) for n in HOT_PATH]


def test_propose_when_two_cores_without_smt_then_everything_shares_and_nothing_spins(tmp_path):
    t = topo(tmp_path, cores_per_socket=2, irqs={0: 100, 1: 900})
    p = propose(t, ROOT_PERMS)
    assert p.mode == "shared"
    assert {pl.name for pl in p.placements} == set(PROCESSES) | {"supervisord", "tui"}
    for pl in p.placements:
        assert pl.cpus == (0, 1) and pl.cpu == -1
        # the hot path backs off; what is off it blocks (no spin after each event)
        assert pl.idle == ("backoff" if pl.role == "hot" else "block" if pl.section else "")
        assert pl.why
    assert all(h.policy == "fifo" and h.priority == 10 for h in hot(p))
    assert any("CPU 1 takes most interrupts" in n for n in p.notes)
    assert validate(p, t) == []


def test_propose_when_shared_and_fifo_not_permitted_then_nice_or_default_with_reason(tmp_path):
    t = topo(tmp_path, cores_per_socket=2)
    nice = propose(t, NICE_ONLY)
    assert all(h.policy == "other" and h.nice == -10 for h in hot(nice))
    assert "SCHED_FIFO is not permitted" in " ".join(hot(nice)[0].why)
    plain = propose(t, NOTHING)
    assert all(h.policy == "other" and h.nice == 0 for h in hot(plain))
    assert "neither SCHED_FIFO nor a lower nice" in " ".join(hot(plain)[0].why)


def test_propose_when_eight_cpus_with_smt_then_hot_path_on_three_cores_with_siblings_idle(tmp_path):
    t = topo(tmp_path, cores_per_socket=4, threads=2, irqs={0: 5000, 1: 10, 2: 10, 3: 10})
    p = propose(t, ROOT_PERMS)
    assert p.mode == "dedicated"
    cpus = [h.cpus for h in hot(p)]
    assert all(len(c) == 1 for c in cpus)
    cores = {t.core_of(c[0]) for c in cpus}
    assert len(cores) == 3, "one physical core per hot process"
    assert (0, 4) not in cores, "the interrupt-heavy core stays housekeeping"
    assert all(h.idle == "spin" and h.policy == "other" for h in hot(p))
    assert set(p.housekeeping) == {0, 4}, "hot cores' siblings are left idle"
    for name in ("exchange_sim", "risk", "monitor"):
        pl = p.get(name)
        assert len(pl.cpus) == 1 and pl.cpus[0] in (0, 4) and pl.idle == "block"
    assert p.get("supervisord").cpus == (0, 4)
    assert validate(p, t) == []


def test_propose_when_64_cpus_two_sockets_isolcpus_then_hot_path_on_isolated_cores_of_one_node(tmp_path):
    t = topo(tmp_path, sockets=2, cores_per_socket=16, threads=2, isolated="8-15,40-47",
             nohz_full="9-15,41-47")
    p = propose(t, ROOT_PERMS)
    assert p.mode == "isolated" and p.hot_node == 0
    hcpus = [h.cpus[0] for h in hot(p)]
    assert all(c in t.isolated for c in hcpus)
    assert all(c in t.nohz_full for c in hcpus), "nohz_full cores are taken first"
    assert len({t.core_of(c) for c in hcpus}) == 3
    assert {t.node_of(c) for c in hcpus} == {0}
    assert all(h.idle == "spin" and h.policy == "other" for h in hot(p))
    assert not set(p.housekeeping) & t.isolated
    # isolated cores are protected by the kernel: housekeeping need not pin to single CPUs
    assert p.get("risk").cpus == p.housekeeping and p.get("risk").cpu == -1
    assert validate(p, t) == []


def test_propose_when_isolated_cores_only_on_second_socket_then_hot_path_there(tmp_path):
    t = topo(tmp_path, sockets=2, cores_per_socket=16, threads=2, isolated="24-31,56-63", nic_node=0)
    p = propose(t, ROOT_PERMS)
    assert p.hot_node == 1
    assert {t.node_of(h.cpus[0]) for h in hot(p)} == {1}


def test_propose_when_two_socket_without_isolation_then_nic_node_preferred(tmp_path):
    t = topo(tmp_path, sockets=2, cores_per_socket=8, nic_node=1)
    p = propose(t, ROOT_PERMS)
    assert p.mode == "dedicated" and p.hot_node == 1
    assert {t.node_of(h.cpus[0]) for h in hot(p)} == {1}


def test_propose_when_two_isolated_cores_and_spare_cores_then_third_hot_process_gets_a_dedicated_one(tmp_path):
    t = topo(tmp_path, cores_per_socket=8, isolated="6-7")
    p = propose(t, ROOT_PERMS)
    md, st, ex = hot(p)
    assert p.mode == "isolated"
    assert {md.cpus[0], st.cpus[0]} == {6, 7} and md.core_kind == st.core_kind == "isolated"
    assert ex.core_kind == "dedicated" and ex.cpus[0] not in (0, 6, 7)
    assert all(h.idle == "spin" for h in (md, st, ex))
    assert ex.cpus[0] not in p.housekeeping


def test_propose_when_two_isolated_cores_and_no_spare_then_market_data_spins_and_the_rest_share(tmp_path):
    t = topo(tmp_path, cores_per_socket=3, isolated="1-2")
    p = propose(t, ROOT_PERMS)
    md, st, ex = hot(p)
    assert md.cpus[0] in (1, 2) and md.idle == "spin" and md.policy == "other"
    assert st.cpus == ex.cpus and st.cpus[0] in (1, 2) and st.cpus != md.cpus
    assert st.idle == ex.idle == "backoff"
    assert st.policy == "fifo", "a blocking consumer on a shared core may use SCHED_FIFO"
    assert p.housekeeping == (0,)
    assert validate(p, t) == []


def test_propose_when_four_cores_without_smt_then_three_dedicated_and_one_housekeeping(tmp_path):
    t = topo(tmp_path, cores_per_socket=4)
    p = propose(t, ROOT_PERMS)
    assert p.mode == "dedicated"
    assert sorted(h.cpus[0] for h in hot(p)) == [1, 2, 3]
    assert p.housekeeping == (0,)


def test_propose_when_three_cores_then_market_data_alone_and_strategy_shares_with_execution(tmp_path):
    t = topo(tmp_path, cores_per_socket=3)
    p = propose(t, NOTHING)
    md, st, ex = hot(p)
    assert md.idle == "spin" and st.cpus == ex.cpus != md.cpus
    assert st.idle == ex.idle == "backoff" and st.policy == ex.policy == "other"


SHAPES = [
    dict(cores_per_socket=1), dict(cores_per_socket=2), dict(cores_per_socket=2, threads=2),
    dict(cores_per_socket=3), dict(cores_per_socket=4, threads=2), dict(cores_per_socket=6, isolated="5"),
    dict(cores_per_socket=4, threads=2, isolated="3,7"), dict(sockets=2, cores_per_socket=2, threads=2),
    dict(sockets=2, cores_per_socket=16, threads=2, isolated="8-15,40-47"),
    dict(sockets=2, cores_per_socket=16, threads=2, isolated="8,40,24-25,56-57"),
    dict(sockets=4, cores_per_socket=8, isolated="1-2,9-10"),
]


@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_propose_when_any_topology_and_permissions_then_every_rule_holds(tmp_path, shape):
    t = topo(tmp_path, **SHAPES[shape])
    for perms, procs in itertools.product((ROOT_PERMS, NICE_ONLY, NOTHING),
                                          (PROCESSES, ("market_data", "strategy", "risk"))):
        p = propose(t, perms, procs)
        assert validate(p, t) == [], (SHAPES[shape], perms, procs)
        by_core: dict = {}
        for pl in p.placements:
            for c in pl.cpus:
                by_core.setdefault(t.core_of(c), set()).add(pl.name)
            assert set(pl.cpus) <= set(t.cpus)
            assert pl.why
        for pl in p.placements:
            if pl.idle == "spin":
                assert pl.policy != "fifo", "never spin under SCHED_FIFO"
                assert by_core[t.core_of(pl.cpus[0])] == {pl.name}, "spin only alone on its core"
            if pl.policy == "fifo":
                assert perms.fifo_allowed
        if p.mode != "isolated":
            assert not any(c in t.isolated for pl in p.placements for c in pl.cpus)
        if p.mode == "isolated":
            assert not set(p.housekeeping) & t.isolated


def test_describe_when_proposal_then_every_process_has_a_reason_and_the_throttling_rule_is_stated(tmp_path):
    t = topo(tmp_path, cores_per_socket=4, threads=2)
    text = "\n".join(propose(t, ROOT_PERMS).describe())
    for name in PROCESSES:
        assert name in text
    assert "~45 ms" in text and "p99 near 10 us" in text
    assert "SMT sibling" in text
