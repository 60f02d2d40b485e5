"""The processes panel against a real supervisord (its own config and unix socket in tmp_path)."""

from __future__ import annotations

import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest

from tests.support import spawn
from tests.support.tui import rows, run, until
from tests.support.tui_world import DEPTH, SYMBOLS, instruments
from tui.app import B25App
from tui.commands import Commands
from tui.panels import ProcessesPanel
from tui.source import ShmSource
from tui.supervisor import SupervisorClient

pytestmark = pytest.mark.proc


def _conf(d: Path) -> Path:
    conf = d / "supervisord.conf"
    conf.write_text(f"""
[unix_http_server]
file={d}/s.sock
chmod=0700
[supervisord]
nodaemon=true
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:sleeper]
command={sys.executable} -c "import time; time.sleep(600)"
startsecs=0
stopasgroup=true
killasgroup=true
""")
    return conf


def test_processes_panel_when_supervisord_runs_then_shows_programs_and_stops_and_starts_them(instance, tmp_path, procs):
    sup_proc = spawn("-m", "supervisor.supervisord", "-c", str(_conf(tmp_path)))
    procs.append(sup_proc)
    sup = SupervisorClient(tmp_path / "s.sock")
    deadline = time.monotonic() + 20
    while sup.programs().get("sleeper", {}).get("state") != "RUNNING":
        assert time.monotonic() < deadline, f"supervisord did not start sleeper: {sup.error}"
        time.sleep(0.05)
    src = ShmSource(instance, SYMBOLS, instruments(), DEPTH, supervisor=sup, supervisor_poll_s=0.1)
    cmd = Commands(instance, DEPTH, operator="test", supervisor=sup)
    app = B25App(src, cmd, refresh_s=0.1)

    def state() -> str:
        t = app.query_one(ProcessesPanel)
        return {r[0]: r[1] for r in rows(t)}.get("sleeper", "")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("4")
            table = app.query_one(ProcessesPanel)
            await until(pilot, lambda: state() == "RUNNING")
            r = {x[0]: x for x in rows(table)}["sleeper"]
            assert r[6] != "-" and r[8] != "-"  # pid, and psutil's affinity of that pid
            table.focus()
            table.move_cursor(row=table.names.index("sleeper"))
            await pilot.press("x")
            await until(pilot, lambda: state() == "STOPPED", timeout=15)
            await pilot.press("t")
            await until(pilot, lambda: state() == "RUNNING", timeout=15)

    try:
        run(go())
    finally:
        cmd.close(unlink=True)
        src.close()
        try:
            sup._proxy().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass
        sup_proc.wait(timeout=20)
