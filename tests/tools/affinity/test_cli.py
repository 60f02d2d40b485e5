"""scripts/tune_affinity.py as a subprocess on this machine: proposal, --json, --write, --apply
(by --pids and through a real supervisord), --measure with stand-in bench commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import tomllib
import xmlrpc.client
from pathlib import Path

import pytest

from tests.support import ROOT, spawn
from tests.support.fake_sysfs import make_tree

pytestmark = pytest.mark.proc
SCRIPT = ROOT / "scripts" / "tune_affinity.py"
NAMES = ("exchange_sim", "market_data", "strategy", "execution", "risk", "monitor")


def tune(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd="/", capture_output=True, text=True,
                          timeout=timeout)


def sleeper(procs) -> subprocess.Popen:
    p = spawn("-c", "import time; print('ready', flush=True); time.sleep(60)", stdout=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_cli_when_run_on_this_machine_then_prints_topology_and_a_reasoned_proposal():
    r = tune()
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"{os.cpu_count()} logical CPUs" in out
    assert "layout:" in out and "why:" in out
    for name in NAMES:
        assert f"\n{name} " in out
    assert "Traceback" not in r.stderr


def test_cli_when_json_then_topology_and_proposal_decode():
    r = tune("--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["topology"]["cpus"]) == os.cpu_count()
    assert doc["topology"]["affinity"] == sorted(os.sched_getaffinity(0))
    names = [p["name"] for p in doc["proposal"]["placements"]]
    assert set(NAMES) <= set(names)
    assert all(p["why"] for p in doc["proposal"]["placements"])
    assert all(not (p["idle"] == "spin" and p["policy"] == "fifo") for p in doc["proposal"]["placements"])


def test_cli_when_write_file_then_toml_with_cpu_and_idle_per_section(tmp_path):
    out = tmp_path / "affinity.toml"
    r = tune("--write", str(out))
    assert r.returncode == 0, r.stderr
    doc = tomllib.loads(out.read_text())
    assert isinstance(doc["market_data"]["runtime"]["cpu"], int)
    for section in ("strategy", "execution"):  # the hot path
        assert doc[section]["runtime"]["idle"] in ("spin", "backoff")
    assert doc["risk"]["runtime"]["idle"] == "block"  # off the order path: no spin after each event


def test_cli_when_fake_64_cpu_tree_then_isolated_layout_on_one_node(tmp_path):
    sys_root, proc_root = make_tree(tmp_path, sockets=2, cores_per_socket=16, threads=2,
                                    isolated="8-15,40-47", nohz_full="8-15,40-47")
    r = tune("--json", "--write", "-", "--sys-root", str(sys_root), "--proc-root", str(proc_root))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["proposal"]["mode"] == "isolated" and doc["proposal"]["hot_node"] == 0
    hot = [p for p in doc["proposal"]["placements"] if p["role"] == "hot"]
    assert all(p["cpus"][0] in range(8, 16) or p["cpus"][0] in range(40, 48) for p in hot)
    assert tomllib.loads(doc["toml"])["market_data"]["runtime"]["cpu"] in range(8, 16)


def test_cli_when_apply_with_pids_then_process_pinned_and_steps_reported(procs):
    child = sleeper(procs)
    r = tune("--apply", "--pids", f"risk={child.pid}", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    risk = next(p for p in doc["proposal"]["placements"] if p["name"] == "risk")
    assert os.sched_getaffinity(child.pid) == set(risk["cpus"])
    mine = [o for o in doc["applied"] if o["pid"] == child.pid]
    assert mine and all(o["ok"] for o in mine)
    assert any(o["action"] == "find" and not o["ok"] for o in doc["applied"]), "missing programs are named"


def test_cli_when_apply_and_supervisord_unreachable_then_says_so_and_exits_2(tmp_path):
    r = tune("--apply", "--socket", str(tmp_path / "none.sock"))
    assert r.returncode == 2
    assert "supervisord not reachable" in r.stdout and "--pids" in r.stdout
    assert "Traceback" not in r.stderr


def test_cli_when_apply_through_a_real_supervisord_then_its_programs_are_pinned(tmp_path, procs):
    sock = tmp_path / "s.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(textwrap.dedent(f"""
        [unix_http_server]
        file={sock}
        chmod=0700
        [supervisord]
        nodaemon=true
        logfile={tmp_path}/supervisord.log
        pidfile={tmp_path}/supervisord.pid
        childlogdir={tmp_path}
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [program:market_data]
        command={sys.executable} -c "import time; time.sleep(60)"
        startsecs=0
        [program:monitor]
        command={sys.executable} -c "import time; time.sleep(60)"
        startsecs=0
        """))
    sup = subprocess.Popen([str(Path(sys.executable).parent / "supervisord"), "-c", str(conf)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(sup)
    from supervisor.xmlrpc import SupervisorTransport

    def rpc():  # a fresh transport per call: a failed request leaves the old one unusable
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{sock}"))

    try:
        infos: list = []
        for _ in range(200):  # supervisord takes about a second to start its programs
            try:
                infos = rpc().supervisor.getAllProcessInfo()
                if infos and all(i["statename"] == "RUNNING" for i in infos):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert infos and all(i["statename"] == "RUNNING" for i in infos), infos
        pids = {i["name"]: i["pid"] for i in infos}
        r = tune("--apply", "--socket", str(sock), "--conf", str(conf), "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        placed = {p["name"]: p for p in doc["proposal"]["placements"]}
        applied = {(o["name"], o["action"]) for o in doc["applied"] if o["ok"]}
        assert ("supervisord", "affinity") in applied and ("market_data", "affinity") in applied
        assert os.sched_getaffinity(pids["market_data"]) == set(placed["market_data"]["cpus"])
        assert os.sched_getaffinity(sup.pid) == set(placed["supervisord"]["cpus"])
        assert os.getpriority(os.PRIO_PROCESS, pids["monitor"]) == placed["monitor"]["nice"]
    finally:
        try:
            rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass
        sup.wait(timeout=30)


FAKE_B25 = """
import json, sys
from pathlib import Path
args = sys.argv[1:]
if args[:2] != ["bench", "e2e"]:
    sys.exit(2)
if "--help" in args:
    print("usage: b25 bench e2e")
    sys.exit(0)
n = Path(sys.argv[0]).with_suffix(".n")
k = int(n.read_text()) if n.exists() else 0
n.write_text(str(k + 1))
print(json.dumps({"e2e": {"p50_us": 20 - 5 * k, "p99_us": 80 - 40 * k, "label": "x"}, "messages": 1000}))
"""

MISSING_B25 = """
import sys
print("b25 bench: error: argument name: invalid choice: 'e2e' (choose from 'book', 'ipc')", file=sys.stderr)
sys.exit(2)
"""


def test_cli_when_measure_and_bench_e2e_missing_then_says_so_and_exits_2(tmp_path):
    fake = tmp_path / "b25.py"
    fake.write_text(MISSING_B25)
    r = tune("--measure", "--b25", f"{sys.executable} {fake}")
    assert r.returncode == 2
    assert "b25 bench e2e" in r.stderr and "not available yet" in r.stderr and "invalid choice" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_when_measure_then_bench_runs_before_and_after_apply_and_difference_printed(tmp_path, procs):
    fake = tmp_path / "b25.py"
    fake.write_text(FAKE_B25)
    child = sleeper(procs)
    r = tune("--measure", "--pids", f"monitor={child.pid}", "--b25", f"{sys.executable} {fake}")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.index("measuring before") < out.index("applied:") < out.index("measuring after")
    assert "e2e.p99_us" in out and "-50.0%" in out and "e2e.p50_us" in out and "-25.0%" in out
    assert (tmp_path / "b25.n").read_text() == "2"


def test_cli_when_pids_malformed_then_names_the_item_and_exits_2():
    r = tune("--apply", "--pids", "market_data=12,risk")
    assert r.returncode == 2
    assert "item='risk'" in r.stderr and "Traceback" not in r.stderr


def test_script_when_imported_then_main_runs_in_process(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tune_affinity", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["proposal"]["placements"]
