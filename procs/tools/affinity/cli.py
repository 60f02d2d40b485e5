"""Command line of ``scripts/tune_affinity.py``: topology, proposal, --apply, --write, --measure.

Exit status: 0 done; 1 some CPU mask was refused; 2 something needed is unavailable
(supervisord not reachable, ``b25 bench e2e`` missing).
"""

from __future__ import annotations

import argparse
import configparser
import json
import shlex
import socket
import sys
from pathlib import Path

from .apply import apply_layout, find_tui, parse_pids, supervisor_pids
from .layout import PROCESSES, propose
from .measure import bench_available, diff, format_diff, run_bench
from .topology import read_permissions, read_topology
from .write import note_unread_fields, to_toml

ROOT = Path(__file__).resolve().parents[3]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print topology, proposal and results as one JSON document")
    p.add_argument("--apply", action="store_true",
                   help="pin the running supervisord programs by pid and set nice / SCHED_FIFO where permitted")
    p.add_argument("--pids", default="", help="name=pid,... instead of asking supervisord")
    p.add_argument("--socket", default=str(ROOT / "run" / "supervisor.sock"), help="supervisord's unix socket")
    p.add_argument("--write", metavar="FILE", help="write the cpu/idle TOML fragment to FILE ('-' = stdout)")
    p.add_argument("--measure", action="store_true",
                   help="run `b25 bench e2e --json` before and after applying and print the difference")
    p.add_argument("--b25", default=f"{shlex.quote(sys.executable)} -m procs.cli",
                   help="the b25 command used by --measure")
    p.add_argument("--bench-args", default="", help="extra arguments for `b25 bench e2e` (one shell-quoted string)")
    p.add_argument("--conf", default=str(ROOT / "supervisord.conf"),
                   help="supervisord.conf: its programs join the default process list")
    p.add_argument("--sys-root", default="/sys", help=argparse.SUPPRESS)  # tests: a fake /sys tree
    p.add_argument("--proc-root", default="/proc", help=argparse.SUPPRESS)


def configured_processes(conf: str | Path) -> list[str]:
    """The six b25 processes plus any other program in supervisord.conf."""
    names = list(PROCESSES)
    cp = configparser.RawConfigParser(strict=False)
    try:
        cp.read(conf)
    except configparser.Error:
        return names
    for s in cp.sections():
        if s.startswith("program:") and s[8:] not in names:
            names.append(s[8:])
    return names


def _pids(args: argparse.Namespace, out: list[str]) -> dict[str, int] | None:
    if args.pids:
        return parse_pids(args.pids)
    try:
        pids = supervisor_pids(args.socket)
    except OSError as exc:
        out.append(f"{exc}; start it with `make run`, or pass --pids name=pid,...")
        return None
    tui = find_tui()
    if tui:
        pids["tui"] = tui
    return pids


def run(args: argparse.Namespace) -> int:
    proc_root = Path(args.proc_root)
    topo = read_topology(args.sys_root, proc_root)
    perms = read_permissions(proc_root)
    proposal = propose(topo, perms, configured_processes(args.conf))
    note_unread_fields(proposal)
    doc: dict = {"topology": topo.to_dict(), "permissions": {**perms.__dict__, "fifo_allowed": perms.fifo_allowed,
                                                             "min_nice": perms.min_nice},
                 "proposal": proposal.to_dict()}
    text: list[str] = []
    say = text.append
    bench_cmd = shlex.split(args.b25)
    bench_args = shlex.split(args.bench_args)
    status = 0

    if args.measure:
        ok, reason = bench_available(bench_cmd)
        if not ok:
            msg = f"--measure needs `b25 bench e2e`, which is not available yet ({reason}); nothing was applied"
            if args.json:
                print(json.dumps({**doc, "error": msg}))
            print(msg, file=sys.stderr)
            return 2

    if not args.json:
        say("topology:")
        text.extend("  " + line for line in topo.describe())
        say("scheduling: " + perms.describe())
        text.extend(proposal.describe())

    if args.write:
        toml = to_toml(proposal, header=f"host {socket.gethostname()}")
        if args.write == "-":
            doc["toml"] = toml
            if not args.json:
                say("")
                say(toml)
        else:
            Path(args.write).write_text(toml)
            doc["written"] = args.write
            say(f"wrote the cpu/idle settings to {args.write}")

    if args.apply or args.measure:
        try:
            pids = _pids(args, text)
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        if pids is None:
            doc["error"] = text[-1]
            _emit(args, doc, text)
            return 2
        before = None
        if args.measure:
            say("measuring before: b25 bench e2e --json")
            try:
                before = run_bench(bench_cmd, bench_args)
            except RuntimeError as exc:
                doc["error"] = str(exc)
                say(str(exc))
                _emit(args, doc, text)
                return 2
        outcomes = apply_layout(proposal, pids)
        doc["applied"] = [o.to_dict() for o in outcomes]
        say("applied:")
        text.extend("  " + o.text() for o in outcomes)
        refused = [o for o in outcomes if not o.ok]
        if refused:
            say(f"{len(refused)} step(s) refused; the rest is in place")
        if any(o.action == "affinity" and o.pid and not o.ok for o in outcomes):
            status = 1
        if args.measure and before is not None:
            say("measuring after: b25 bench e2e --json")
            try:
                after = run_bench(bench_cmd, bench_args)
            except RuntimeError as exc:
                doc["error"] = str(exc)
                say(str(exc))
                _emit(args, doc, text)
                return 2
            rows = diff(before, after)
            doc["measure"] = {"before": before, "after": after, "diff": rows}
            text.extend(format_diff(rows))
    _emit(args, doc, text)
    return status


def _emit(args: argparse.Namespace, doc: dict, text: list[str]) -> None:
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tune_affinity.py", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))
