"""Fake /sys and /proc trees describing a machine, for topology and layout tests."""

from __future__ import annotations

from pathlib import Path


def cpu_number(thread: int, socket: int, core: int, sockets: int, cores_per_socket: int) -> int:
    """Linux's usual x86 numbering: every core's first thread first, socket by socket."""
    return thread * sockets * cores_per_socket + socket * cores_per_socket + core


def make_tree(root: Path, *, sockets: int = 1, cores_per_socket: int = 2, threads: int = 1,
              isolated: str | None = "", nohz_full: str | None = None, cmdline: str = "",
              irqs: dict[int, int] | None = None, core_cpus_list: bool = True,
              numa: bool = True, nic_node: int | None = None) -> tuple[Path, Path]:
    """Write ``root/sys`` and ``root/proc``; returns (sys_root, proc_root).

    ``isolated=None`` leaves /sys/devices/system/cpu/isolated out (older kernels);
    ``nohz_full=None`` leaves that file out; ``core_cpus_list=False`` writes only the older
    thread_siblings_list.
    """
    sys_root, proc_root = root / "sys", root / "proc"
    cpu_dir = sys_root / "devices" / "system" / "cpu"
    n = sockets * cores_per_socket * threads
    cpu_dir.mkdir(parents=True)
    (cpu_dir / "online").write_text(f"0-{n - 1}\n" if n > 1 else "0\n")
    per_socket: dict[int, list[int]] = {s: [] for s in range(sockets)}
    for s in range(sockets):
        for c in range(cores_per_socket):
            sib = [cpu_number(t, s, c, sockets, cores_per_socket) for t in range(threads)]
            for cpu in sib:
                per_socket[s].append(cpu)
                topo = cpu_dir / f"cpu{cpu}" / "topology"
                topo.mkdir(parents=True)
                text = ",".join(str(x) for x in sib) + "\n"
                (topo / "thread_siblings_list").write_text(text)
                if core_cpus_list:
                    (topo / "core_cpus_list").write_text(text)
                (topo / "core_id").write_text(f"{c}\n")
                (topo / "physical_package_id").write_text(f"{s}\n")
    if isolated is not None:
        (cpu_dir / "isolated").write_text(isolated + "\n")
    if nohz_full is not None:
        (cpu_dir / "nohz_full").write_text(nohz_full + "\n")
    if numa:
        for s, cpus in per_socket.items():
            nd = sys_root / "devices" / "system" / "node" / f"node{s}"
            nd.mkdir(parents=True)
            (nd / "cpulist").write_text(",".join(str(c) for c in sorted(cpus)) + "\n")
    if nic_node is not None:
        dev = sys_root / "class" / "net" / "eth0" / "device"
        dev.mkdir(parents=True)
        (dev / "numa_node").write_text(f"{nic_node}\n")
    proc_root.mkdir(parents=True)
    (proc_root / "cmdline").write_text(cmdline + "\n")
    irqs = irqs if irqs is not None else {0: 1000}
    head = "".join(f"       CPU{c}" for c in range(n))
    row = "".join(f" {irqs.get(c, 0):>10}" for c in range(n))
    (proc_root / "interrupts").write_text(f"{head}\n 24:{row}   IO-APIC   5-edge      eth0\n"
                                          f"NMI:{''.join(' 0' for _ in range(n))}   Non-maskable interrupts\n")
    return sys_root, proc_root
