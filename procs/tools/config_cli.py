"""``b25 config``: validate a file, list the stored versions, show or diff them, roll back to one.

    b25 config validate FILE                      every section, with the errors start-up would give
    b25 config history [--json]                   the versions: seq, time, sha256, source, operator, reason, applied by
    b25 config show N                             version N, exactly as it was applied
    b25 config diff A B [--json]                  field by field, with what each change needs (reload or restart)
    b25 config rollback N --reason "..." [--restart]
                                                  version N into service: reload where the process can,
                                                  name the process and fields that need a restart (restarted
                                                  through supervisorctl only with --restart)

The versions are those of ``--instance`` under ``[deploy] versions_dir`` of ``--config``
(``procs.core.versions``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from procs.core.config import ConfigError, parse
from procs.core.reload import changes, plan
from procs.core.rollout import apply, validate
from procs.core.versions import VersionStore, store_for
from shm.segment import DEFAULT_INSTANCE

ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=str(ROOT / "b25.toml"), help="the deployment file (default b25.toml)")
    parser.add_argument("--instance", default=DEFAULT_INSTANCE)
    sub = parser.add_subparsers(dest="config_cmd", required=True)
    v = sub.add_parser("validate", help="check every section of FILE as start-up would")
    v.add_argument("file")
    h = sub.add_parser("history", help="the stored versions")
    h.add_argument("--json", action="store_true")
    s = sub.add_parser("show", help="print version N")
    s.add_argument("n", type=int)
    d = sub.add_parser("diff", help="field by field, A to B")
    d.add_argument("a", type=int)
    d.add_argument("b", type=int)
    d.add_argument("--json", action="store_true")
    r = sub.add_parser("rollback", help="put version N into service")
    r.add_argument("n", type=int)
    r.add_argument("--reason", required=True, help="why (kept with the version)")
    r.add_argument("--operator", default="", help="who (default: the login name)")
    r.add_argument("--restart", action="store_true", help="restart the processes a change needs restarted")
    r.add_argument("--supervisor-conf", default=str(ROOT / "supervisord.conf"),
                   help="supervisorctl -c this (with --restart)")
    r.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        if args.config_cmd == "validate":
            return _validate(args.file)
        store = store_for(args.config, args.instance)
        return {"history": _history, "show": _show, "diff": _diff, "rollback": _rollback}[args.config_cmd](args, store)
    except (ConfigError, KeyError, ValueError, OSError) as exc:
        print(f"b25 config: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2


def _validate(file: str) -> int:
    p = Path(file)
    try:
        data = p.read_bytes()
    except OSError as exc:
        print(f"config file not readable: path={p} reason={exc.strerror}", file=sys.stderr)
        return 2
    errors = validate(data, str(p))
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        print(f"{p}: valid")
    return 1 if errors else 0


def _history(args: argparse.Namespace, store: VersionStore) -> int:
    versions = store.versions()
    if args.json:
        print(json.dumps({"dir": str(store.dir), "versions": [version_row(v) for v in versions]}, indent=1))
        return 0
    if not versions:
        print(f"no config versions in {store.dir}")
        return 0
    print(f"{'seq':>4}  {'time':<20}  {'sha256':<12}  {'source':<7}  {'operator':<14}  {'reason':<32}  applied by")
    for v in versions:
        r = version_row(v)
        print(f"{r['seq']:>4}  {r['time']:<20}  {r['sha256'][:12]:<12}  {r['source']:<7}  {r['operator'] or '-':<14}  "
              f"{_cut(r['reason'], 32):<32}  {','.join(r['applied_by']) or '-'}")
    last = store.events()[-1]
    print(f"last: version {last.seq}, {last.event} {last.time} via {last.source}"
          f"{' by ' + last.operator if last.operator else ''}{' (' + last.process + ')' if last.process else ''}"
          f"{': ' + last.reason if last.reason else ''}")
    return 0


def version_row(v: Any) -> dict[str, Any]:
    """One version as the history prints it (and ``GET /api/config/versions`` returns it)."""
    return {"seq": v.seq, "sha256": v.sha256, "time": v.first.time, "event": v.first.event, "source": v.first.source,
            "operator": v.first.operator, "reason": v.first.reason, "applied_by": v.processes,
            "events": [{"time": e.time, "event": e.event, "source": e.source, "operator": e.operator,
                        "reason": e.reason, "process": e.process} for e in v.applied]}


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _show(args: argparse.Namespace, store: VersionStore) -> int:
    sys.stdout.write(store.data(args.n).decode())
    return 0


def diff_rows(store: VersionStore, a: int, b: int) -> list[dict[str, Any]]:
    """Field by field from version ``a`` to ``b``, each with the services that reload or restart for it."""
    old, new = parse(store.data(a), f"version {a}"), parse(store.data(b), f"version {b}")
    by_service = plan(old, new)
    rows = []
    for ch in changes(old, new):
        section, _, rest = ch.path.partition(".")
        rows.append({"section": section, "field": rest, "old": ch.old, "new": ch.new,
                     "reload": sorted(n for n, p in by_service.items() if ch in p.reload),
                     "restart": sorted(n for n, p in by_service.items() if ch in p.restart)})
    return rows


def _diff(args: argparse.Namespace, store: VersionStore) -> int:
    rows = diff_rows(store, args.a, args.b)
    if args.json:
        print(json.dumps({"from": args.a, "to": args.b, "changes": rows}, indent=1))
        return 0
    for n in (args.a, args.b):
        v = store.version(n)
        mark = "---" if n == args.a else "+++"
        print(f"{mark} version {n}  {v.first.time}  {v.sha256[:12]}  {v.first.source}  "
              f"{v.first.operator or '-'}: {v.first.reason or '-'}")
    for r in rows:
        needs = "; ".join(x for x in (f"reload {','.join(r['reload'])}" if r["reload"] else "",
                                      f"restart {','.join(r['restart'])}" if r["restart"] else "") if x)
        print(f"[{r['section']}] {r['field'] or '(table)'}: {_toml(r['old'])} -> {_toml(r['new'])}    ({needs})")
    if not rows:
        print("(no field differs)")
    return 0


def _toml(v: Any) -> str:
    return "(absent)" if v is None else json.dumps(v)


def _rollback(args: argparse.Namespace, store: VersionStore) -> int:
    if not args.reason.strip():
        raise ValueError("a reason is required: --reason ''")
    data = store.data(args.n)
    beside = Path(sys.executable).with_name("supervisorctl")  # the venv's, which PATH may not name
    sv = [str(beside) if beside.exists() else "supervisorctl", "-c", args.supervisor_conf]
    done = apply(args.config, args.instance, data, store, event="rollback", source="cli",
                 operator=args.operator or f"cli:{getpass.getuser()}", reason=f"rollback to {args.n}: {args.reason}",
                 restart=args.restart, supervisorctl=sv)
    if args.json:
        print(json.dumps(done.as_dict(), indent=1))
    else:
        print(f"version {args.n} written to {args.config} (stored as {done.seq}, sha256 {done.sha256[:12]})")
        for o in done.outcomes:
            line = f"  {o.service:<13} {o.action}"
            if o.fields:
                line += ": " + ", ".join(o.fields)
            if o.detail:
                line += f"  ({o.detail})"
            print(line)
    return 0 if done.complete else 1
