"""Reading the CPU topology from /sys and /proc (fake trees and this host)."""

from __future__ import annotations

import os
import resource

import psutil
import pytest

from procs.tools.affinity.topology import (
    Permissions,
    format_cpulist,
    parse_cpulist,
    read_irqs,
    read_permissions,
    read_topology,
)
from tests.support.fake_sysfs import make_tree


def test_parse_cpulist_when_ranges_strides_and_blanks_then_expanded():
    assert parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpulist("") == set()
    assert parse_cpulist("0-15:2/4") == {0, 1, 4, 5, 8, 9, 12, 13}


def test_parse_cpulist_when_not_a_cpulist_then_value_error_names_text():
    with pytest.raises(ValueError, match="text='x-1'"):
        parse_cpulist("x-1")


def test_format_cpulist_when_given_cpus_then_shortest_ranges_round_trip():
    assert format_cpulist({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert format_cpulist([]) == "none"
    assert parse_cpulist(format_cpulist({3, 4, 9, 40, 41, 42})) == {3, 4, 9, 40, 41, 42}


def test_read_topology_when_two_cores_without_smt_then_two_cores_one_node(tmp_path):
    sys_root, proc_root = make_tree(tmp_path, cores_per_socket=2, irqs={0: 10, 1: 90})
    t = read_topology(sys_root, proc_root)
    assert t.cpus == (0, 1)
    assert t.cores == ((0,), (1,))
    assert not t.smt
    assert t.nodes == {0: (0, 1)}
    assert t.isolated == frozenset() and t.nohz_full == frozenset()
    assert t.usable == frozenset({0, 1})
    assert t.busiest_irq_cpu() == 1


def test_read_topology_when_eight_cpus_with_smt_then_four_cores_of_sibling_pairs(tmp_path):
    # only the older thread_siblings_list, and no node directory: one node assumed
    sys_root, proc_root = make_tree(tmp_path, cores_per_socket=4, threads=2, core_cpus_list=False, numa=False)
    t = read_topology(sys_root, proc_root)
    assert t.cpus == tuple(range(8))
    assert t.cores == ((0, 4), (1, 5), (2, 6), (3, 7))
    assert t.smt
    assert t.core_of(6) == (2, 6)
    assert t.nodes == {0: tuple(range(8))}


def test_read_topology_when_64_cpus_two_sockets_with_isolcpus_then_nodes_siblings_and_isolated(tmp_path):
    sys_root, proc_root = make_tree(tmp_path, sockets=2, cores_per_socket=16, threads=2,
                                    isolated="8-15,40-47", nohz_full="8-15,40-47", nic_node=0)
    t = read_topology(sys_root, proc_root, affinity=set(range(64)) - set(range(8, 16)) - set(range(40, 48)))
    assert len(t.cpus) == 64 and len(t.cores) == 32
    assert t.nodes[0] == tuple(list(range(0, 16)) + list(range(32, 48)))
    assert t.nodes[1] == tuple(list(range(16, 32)) + list(range(48, 64)))
    assert t.core_of(8) == (8, 40)
    assert t.package[40] == 0 and t.package[48] == 1
    assert t.isolated == frozenset(range(8, 16)) | frozenset(range(40, 48))
    assert t.nohz_full == t.isolated
    assert t.nic_nodes == frozenset({0})
    # isolcpus keeps the scheduler away, not sched_setaffinity: isolated CPUs stay usable
    assert t.usable == frozenset(range(64))


def test_read_topology_when_isolcpus_only_on_cmdline_then_flags_skipped(tmp_path):
    sys_root, proc_root = make_tree(tmp_path, cores_per_socket=8, isolated=None,
                                    cmdline="ro quiet isolcpus=domain,managed_irq,4-7 nohz_full=5-7 rcu_nocbs=4-7")
    t = read_topology(sys_root, proc_root)
    assert t.isolated == frozenset({4, 5, 6, 7})
    assert t.nohz_full == frozenset({5, 6, 7})


def test_read_irqs_when_proc_interrupts_then_per_cpu_totals():
    text = ("           CPU0       CPU1\n"
            "  0:         40          2   IO-APIC   2-edge      timer\n"
            "LOC:       1000       3000   Local timer interrupts\n"
            "ERR:          0\n")
    assert read_irqs(text) == {0: 1040, 1: 3002}


def test_read_topology_when_this_host_then_agrees_with_psutil_and_our_mask():
    t = read_topology()
    assert len(t.cpus) == psutil.cpu_count(logical=True)
    assert t.psutil_counts == (psutil.cpu_count(logical=True), psutil.cpu_count(logical=False))
    assert t.affinity == frozenset(os.sched_getaffinity(0))
    assert sorted(c for core in t.cores for c in core) == list(t.cpus)
    assert t.describe() and t.to_dict()["cpus"] == list(t.cpus)


def test_permissions_when_limits_vary_then_fifo_and_nice_follow():
    none = Permissions(euid=1000, cap_sys_nice=False, rtprio_limit=0, nice_rlimit=0)
    assert not none.fifo_allowed and none.min_nice == 0
    rt = Permissions(euid=1000, cap_sys_nice=False, rtprio_limit=5, nice_rlimit=30)
    assert rt.fifo_allowed and rt.fifo_max_priority == 5 and rt.min_nice == -10
    cap = Permissions(euid=0, cap_sys_nice=True, rtprio_limit=0, nice_rlimit=0)
    assert cap.fifo_allowed and cap.fifo_max_priority == 99 and cap.min_nice == -20
    assert "not permitted" in none.describe() and "permitted" in cap.describe()


def test_read_permissions_when_this_process_then_matches_status_and_rlimits():
    p = read_permissions()
    assert p.euid == os.geteuid()
    assert p.rtprio_limit == resource.getrlimit(resource.RLIMIT_RTPRIO)[0] or p.rtprio_limit == 1 << 30
    cap_line = next(x for x in open("/proc/self/status") if x.startswith("CapEff:"))
    assert p.cap_sys_nice == bool(int(cap_line.split()[1], 16) >> 23 & 1)
