"""Stack: an isolated instance of the real b25 processes, for tests, benchmarks and replays.

One ``Stack`` owns one shm instance name, its own free ports on 127.0.0.1 and one run
directory under ``work_dir`` (the generated ``b25.toml``, the execution journal, the
strategy's state file, one log file per process)::

    with Stack(tmp_path, overrides={"risk": {"max_orders_per_s": 0}},
               strategies=[{"id": "echo", "class": "strategies.echo:Echo", "symbols": ["BTCUSDT"]}]) as s:
        s.wait_for(lambda: s.order_log(), "an order on the simulator")
        print(s.risk_state()["position"][0], s.position_risk("BTCUSDT"))

The config starts from the repo's ``b25.toml``; ``overrides`` is ``{section: {field: value}}``
merged into it (dicts merge, everything else replaces: ``{"strategy": {"strategies": []}}``
drops the repo's strategies), then ``strategies`` are appended to ``[[strategy.strategies]]``.
URLs, ports and paths are set by the Stack after the merge so every instance is isolated.

Processes start in priority order (exchange_sim, market_data, risk, execution, strategy, then
bridge and monitor if asked; one its config switches off, such as the bridge without ``[bridge]
enabled``, is left out); ``start()`` returns when every status block says RUNNING, or raises naming
the process that did not come up with the tail of its log. ``supervised=True`` runs them under
a real supervisord with a generated config instead (autorestart, as in production).
``stop()`` SIGTERMs in reverse order, waits, kills stragglers, collects exit codes and removes
the instance's segments, wake semaphores and control queues; it runs on exceptions, Ctrl-C and
SIGTERM of the owner too, and the children get SIGTERM if the owner dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procs.core import services
from procs.core.services import NAMES
from procs.tools.services import program

if TYPE_CHECKING:
    from procs.venue.messages import OrderReport
    from procs.venue.protocols import AccountSource, Venue

ROOT = Path(__file__).resolve().parents[2]
ORDER = NAMES  # start order, from the service table
PIPELINE = services.PIPELINE  # the default set: everything but the monitor


class StackError(RuntimeError):
    """A process of the stack did not come up (the message names it and shows its log's tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` merged in: nested dicts merge, any other value replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# -- a small TOML writer (the stdlib reads TOML but does not write it) ---------------------------
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write to TOML: {type(v).__name__}")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps_toml(doc: dict, prefix: str = "") -> str:
    """TOML text of ``doc``: scalars first, then sub-tables and arrays of tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not _is_table_array(v)]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in doc.items():
        path = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            out += f"\n[{path}]\n" + dumps_toml(v, path)
        elif _is_table_array(v):
            for entry in v:  # entries' own dicts (strategy params) are written inline
                out += f"\n[[{path}]]\n" + "".join(f"{_key(a)} = {_value(b)}\n" for a, b in entry.items())
    return out


def _read_status(instance: str, proc: str) -> dict | None:
    """read_status, but a block still being created (no magic yet) reads as not there."""
    from procs.core.status import read_status
    from shm.segment import LayoutError

    try:
        return read_status(instance, proc)
    except (LayoutError, ValueError):
        return None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started us dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Stack:
    """One isolated b25 deployment of real processes (see the module docstring)."""

    def __init__(self, work_dir: str | Path, *, procs: Iterable[str] = PIPELINE,
                 overrides: dict[str, dict] | None = None, strategies: Iterable[dict] = (),
                 instance: str | None = None, base_config: str | Path | None = ROOT / "b25.toml",
                 pythonpath: Iterable[str | Path] = (), env: dict[str, str] | None = None,
                 supervised: bool = False, start_timeout: float = 60.0) -> None:
        self.procs = tuple(p for p in ORDER if p in set(procs))
        unknown = set(procs) - set(ORDER)
        if unknown:
            raise ValueError(f"unknown processes: {sorted(unknown)}")
        self.instance = instance or f"s{os.getpid()}x{uuid.uuid4().hex[:6]}"
        self.run_dir = Path(work_dir).resolve() / f"stack-{self.instance}"
        self.log_dir = self.run_dir / "log"
        self.config_path = self.run_dir / "b25.toml"
        self.journal_path = self.run_dir / "journal" / "execution.journal"
        self.state_path = self.run_dir / "strategy.state.json"
        self.supervised = supervised
        self.start_timeout = start_timeout
        self.rest_port = self.ws_port = self.monitor_port = self.web_port = 0
        self.token = secrets.token_urlsafe(16)
        self.popen: dict[str, subprocess.Popen] = {}
        self.exit_codes: dict[str, int | None] = {}
        self._base = base_config
        self._overrides = overrides or {}
        self._strategies = [dict(s) for s in strategies]
        self._env = dict(os.environ)
        self._env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in pythonpath), str(ROOT)])
        self._env["PYTHONUNBUFFERED"] = "1"
        self._env.update(env or {})
        self._supervisord: subprocess.Popen | None = None
        self._sv_dir: Path | None = None
        self._old_handlers: dict[int, Any] = {}
        self._stopped = False
        self.config: dict = {}

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Stack:
        """Write the config, start every process in priority order, wait until all are RUNNING."""
        self._install_signals()
        atexit.register(self.stop)  # an owner that forgets stop() still cleans up on its way out
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.run_dir, 0o700)
            self._write_config()
            # what the deployment switches off ([bridge] enabled, [deploy] sim, ...) is not started
            self.procs = tuple(p for p in self.procs if services.enabled(p, self.config))
            if self.supervised:
                self._start_supervisord()
            else:
                for proc in self.procs:
                    if proc == "exchange_sim":
                        self._start_sim()
                    else:
                        self.start_proc(proc)
            self.wait_running()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_sim(self, attempts: int = 3) -> None:
        """The simulator first; a port taken between free_port() and its bind gets new ports."""
        for attempt in range(attempts):
            p = self.start_proc("exchange_sim")
            try:
                self._wait_listening()
                return
            except StackError:
                if attempt + 1 == attempts or p.poll() is None or "start_failed" not in self.log_tail("exchange_sim"):
                    raise
            self._write_config()  # new ports for every process

    def start_proc(self, proc: str) -> subprocess.Popen:
        """Start (or start again) one process of the stack, unsupervised."""
        log = open(self.log_dir / f"{proc}.log", "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            p = subprocess.Popen(self.command(proc), cwd=self.run_dir, env=self._env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.popen[proc] = p
        return p

    def command(self, proc: str) -> list[str]:
        return [sys.executable, "-m", f"procs.{proc}", "--config", str(self.config_path), "--instance", self.instance]

    def wait_running(self, procs: Iterable[str] | None = None, timeout: float | None = None) -> None:
        """Until every status block (of ``procs``) says RUNNING with a live pid; StackError names a laggard."""
        todo = [p for p in (procs or self.procs) if not services.BY_NAME[p].external]  # no status block
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while todo:
            for proc in list(todo):
                st = _read_status(self.instance, proc)
                if st and st["state"] == "RUNNING" and st["alive"]:
                    todo.remove(proc)
                    continue
                p = self.popen.get(proc)
                if p is not None and p.poll() is not None:
                    raise StackError(self._failure(proc, f"exited rc={p.returncode}"))
            if todo and time.monotonic() > deadline:
                states = {p: (_read_status(self.instance, p) or {}).get("state") for p in todo}
                raise StackError(self._failure(todo[0], f"not RUNNING in time: {states}"))
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> dict[str, int | None]:
        """SIGTERM in reverse order, wait, kill stragglers, remove the instance's shm; exit codes by process."""
        if self._stopped:
            return self.exit_codes
        self._stopped = True
        atexit.unregister(self.stop)
        # a second Ctrl-C must not interrupt the clean-up half way
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            if self._supervisord is not None:
                self._stop_supervisord(timeout)
            killed = []
            for proc in reversed(ORDER):
                p = self.popen.get(proc)
                if p is None:
                    continue
                if p.poll() is None:
                    p.terminate()
                try:
                    self.exit_codes[proc] = p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    killed.append(p)
                    self.exit_codes[proc] = None  # None = had to be killed
            # a SIGKILLed process dies when it next runs: one starved by a spinning process at its
            # real-time priority dies only once the rest are stopped, so the rest go first
            for p in killed:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout)
            self._kill_leftovers()
            self.cleanup_shm()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            self._restore_signals()
        return self.exit_codes

    def cleanup_shm(self) -> list[str]:
        """Remove every segment, wake semaphore and control queue of this instance."""
        from procs.core.control import unlink_queues
        from shm.inspect import clean

        removed, _ = clean(self.instance, force=True)
        return removed + unlink_queues(self.instance, (*NAMES, "tui"))

    def _kill_leftovers(self) -> None:
        """Processes that wrote a status block but are not our children (supervised restarts)."""
        for proc in self.procs:
            st = _read_status(self.instance, proc)
            if st and st["alive"] and st["pid"] != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(st["pid"], signal.SIGKILL)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")  # unwinds through __exit__ / start()'s clean-up

        with contextlib.suppress(ValueError):
            self._old_handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)

    def _restore_signals(self) -> None:
        for sig, h in self._old_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, h)
        self._old_handlers.clear()

    # -- config ---------------------------------------------------------------------------------
    def _write_config(self) -> None:
        from procs.venue.adapters import venue_at

        base: dict = {}
        if self._base:
            with open(self._base, "rb") as f:
                base = tomllib.load(f)
        self.rest_port, self.ws_port = free_port(), free_port()
        self.monitor_port = free_port() if "monitor" in self.procs else 0
        self.web_port = free_port() if "web" in self.procs else 0
        cfg = merge(base, self._overrides)
        strat = cfg.setdefault("strategy", {})
        strat["strategies"] = list(strat.get("strategies", [])) + self._strategies
        rest, ws = self.rest_url, f"ws://127.0.0.1:{self.ws_port}"
        fixed = {
            "sim": {"host": "127.0.0.1", "rest_port": self.rest_port, "ws_port": self.ws_port},
            "deploy": {"versions_dir": str(self.run_dir / "config")},
            "venue": venue_at(rest, ws, cfg.get("venue")),  # the simulator, the venue's other settings kept
            "risk": {"holds_file": str(self.run_dir / "risk.holds.json"),
                     "history": {"dir": str(self.run_dir / "history")}},
            "execution": {"journal": str(self.journal_path)},
            "strategy": {"state_file": str(self.state_path)},
            "monitor": {"host": "127.0.0.1", "port": self.monitor_port, "token_file": str(self.run_dir / "monitor.token")},
            "alerts": {"delivery_log": str(self.run_dir / "deliveries.jsonl")},
            "web": {"host": "127.0.0.1", "port": self.web_port},
            # the instance's own file (the base config's is relative to the checkout), unless given
            "sim_trading": {"order_log": self._overrides.get("sim_trading", {}).get("order_log")
                            or str(self.run_dir / "venue.orders.jsonl")},
        }
        cfg = merge(cfg, fixed)
        recorder = cfg["market_data"].get("recorder")
        if isinstance(recorder, dict) and recorder.get("enabled"):
            recorder.setdefault("dir", str(self.run_dir / "record"))
        fd = os.open(self.run_dir / "monitor.token", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        self.config = cfg
        self.config_path.write_text("# generated by procs.tools.stack for instance " + self.instance + "\n"
                                    + dumps_toml(cfg))

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def symbols(self) -> list[str]:
        return list(self.config.get("deploy", {}).get("symbols", []))

    # -- supervised mode ------------------------------------------------------------------------
    def _start_supervisord(self) -> None:
        # the control socket lives in a short /tmp dir: AF_UNIX paths are limited to ~107 bytes
        self._sv_dir = Path(tempfile.mkdtemp(prefix="b25sv"))
        os.chmod(self._sv_dir, 0o700)
        conf = self.run_dir / "supervisord.conf"
        conf.write_text(self.supervisord_config())
        sv = Path(sys.executable).with_name("supervisord")
        out = open(self.log_dir / "supervisord.out", "ab")  # noqa: SIM115
        try:
            self._supervisord = subprocess.Popen([str(sv), "-n", "-c", str(conf)], cwd=self.run_dir, env=self._env,
                                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                                 start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            out.close()
        self._wait_listening()

    def supervisord_config(self) -> str:
        """A supervisord config for this instance: the repo's program settings, this stack's commands."""
        assert self._sv_dir is not None
        env = ",".join(f'{k}="{v}"' for k, v in (("PYTHONPATH", self._env["PYTHONPATH"]), ("PYTHONUNBUFFERED", "1")))
        text = (f"[unix_http_server]\nfile={self._sv_dir}/sv.sock\nchmod=0700\n\n"
                f"[supervisord]\nlogfile={self.log_dir}/supervisord.log\npidfile={self._sv_dir}/sv.pid\n"
                f"childlogdir={self.log_dir}\ndirectory={self.run_dir}\numask=077\nenvironment={env}\n\n"
                "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
                f"[supervisorctl]\nserverurl=unix://{self._sv_dir}/sv.sock\n")
        for proc in self.procs:
            text += "\n" + program(services.service(proc), " ".join(self.command(proc)), str(self.run_dir),
                                    f"{self.log_dir}/{proc}.log", "true", restart_tries=10, log_rotation=False)
        return text

    def supervisor(self) -> Any:
        """The supervisord XML-RPC proxy (supervised mode)."""
        import xmlrpc.client

        from supervisor.xmlrpc import SupervisorTransport

        assert self._sv_dir is not None, "not supervised"
        return xmlrpc.client.ServerProxy("http://127.0.0.1",
                                         transport=SupervisorTransport(None, None, f"unix://{self._sv_dir}/sv.sock"))

    def _stop_supervisord(self, timeout: float) -> None:
        p = self._supervisord
        assert p is not None
        if p.poll() is None:
            p.terminate()  # supervisord stops its programs in reverse priority order, then exits
        try:
            self.exit_codes["supervisord"] = p.wait(timeout + 15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            self.exit_codes["supervisord"] = None
        if self._sv_dir is not None:
            shutil.rmtree(self._sv_dir, ignore_errors=True)

    # -- waiting --------------------------------------------------------------------------------
    def _wait_listening(self) -> None:
        """Until the simulator answers on its REST port (it has no status block)."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.rest_url}/sim/stats", timeout=1) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            p = self.popen.get("exchange_sim") or self._supervisord
            if p is not None and p.poll() is not None:
                raise StackError(self._failure("exchange_sim", f"exited rc={p.returncode}"))
            if time.monotonic() > deadline:
                raise StackError(self._failure("exchange_sim", f"not listening on {self.rest_url}"))
            time.sleep(0.05)

    @staticmethod
    def wait_for(cond: Callable[[], Any], what: str, timeout: float = 20.0, every: float = 0.05) -> Any:
        """Poll ``cond`` until it returns something truthy (and return it); AssertionError names ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(every)

    def _failure(self, proc: str, why: str) -> str:
        return f"{proc} did not come up ({why}); instance={self.instance}; last log lines:\n{self.log_tail(proc)}"

    def log_path(self, proc: str) -> Path:
        return self.log_dir / f"{proc}.log"

    def log_tail(self, proc: str, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path(proc).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def log_events(self, proc: str, event: str | None = None) -> list[dict]:
        """The JSON log lines of ``proc`` (those with ``event`` if given)."""
        out = []
        try:
            text = self.log_path(proc).read_text(errors="replace")
        except OSError:
            return out
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and (event is None or rec.get("event") == event):
                out.append(rec)
        return out

    # -- reading state --------------------------------------------------------------------------
    def status(self, proc: str) -> dict | None:
        """The process's status block as a dict (procs.core.status.read_status), None if not there yet."""
        return _read_status(self.instance, proc)

    def pid(self, proc: str) -> int:
        """The process's current pid: its status block's, else supervisord's or our child's (0 = none)."""
        st = self.status(proc)
        if st:
            return st["pid"]
        if self._supervisord is not None:
            return int(self.supervisor().supervisor.getProcessInfo(proc)["pid"])
        return self.popen[proc].pid if proc in self.popen else 0

    def book(self, symbol: str) -> Any:
        """The latest ``book.<symbol>`` record (a numpy void copy)."""
        from procs.core import deploy
        from procs.core.registry import book_state_name

        reg = deploy.registry(str(self.config_path))
        r = reg.reader(self.instance, book_state_name(symbol), timeout=5)
        try:
            return r.read()[0][0].copy()
        finally:
            r.close()

    def risk_state(self) -> Any:
        """The latest ``risk.state`` record (positions in lots per symbol_id, trading_state, limits)."""
        from procs.core.registry import RISK_STATE, build_registry

        r = build_registry().reader(self.instance, RISK_STATE, timeout=5)
        try:
            return r.read()[0][0].copy()
        finally:
            r.close()

    def counters(self, proc: str) -> tuple[dict[str, int], dict[str, Any]]:
        """(counters, histogram bucket counts) of ``proc`` from its shm counters segment."""
        from shm.counters import read_counters
        from shm.segment import Segment

        seg = Segment.attach(self.instance, f"counters.{proc}", None, None, timeout=5)
        try:
            return read_counters(seg)
        finally:
            seg.close()

    def latency(self, proc: str) -> dict[str, dict[str, float]]:
        """p50/p99/p99.9 (us) of every histogram of ``proc``."""
        from shm.counters import summary_us

        return {k: summary_us(v) for k, v in self.counters(proc)[1].items()}

    def strategy_state(self) -> dict:
        """The strategy's saved positions snapshot ({} until it wrote one)."""
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def send(self, proc: str, cmd: Any) -> None:
        """Send a control command (procs.core.control) to one process."""
        from procs.core.control import send_command

        send_command(self.instance, proc, cmd)

    def send_signal(self, proc: str, sig: int) -> int:
        """Send ``sig`` to the process's current pid (from its status block); returns the pid."""
        pid = self.pid(proc)
        os.kill(pid, sig)
        return pid

    def kill(self, proc: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` (default SIGKILL) to the process and, if it is our child, reap it; returns the pid."""
        pid = self.send_signal(proc, sig)
        p = self.popen.get(proc)
        if p is not None and p.pid == pid:
            p.wait(15)
        return pid

    def health(self) -> tuple[int, dict]:
        """The monitor's GET /health: (HTTP status, JSON body)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/health", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    # -- the simulator ---------------------------------------------------------------------------
    def sim_get(self, path: str, params: dict | None = None) -> Any:
        q = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.rest_url}{path}{q}", timeout=5) as r:
            return json.loads(r.read())

    def order_log(self, start: int = 0) -> list[dict]:
        """The simulator's order log from entry ``start`` (GET /sim/order_log?from=N)."""
        return self.sim_get("/sim/order_log", {"from": start})

    def venue(self) -> Venue:
        """The venue adapter of this stack's config (the simulator, through b25's own adapter)."""
        from procs.venue.adapters import open_venue, venue_config

        return open_venue(venue_config(self.config_path))

    def account(self) -> AccountSource:
        """The simulator's account as the venue adapter reads it (the config's credentials)."""
        v = self.venue()
        return v.account_source(v.signer(), 5.0)

    def position_risk(self, symbol: str) -> float:
        """The simulator's net position of ``symbol`` (base asset)."""
        return float(self.account().snapshot().positions.get(symbol, "0"))

    def open_orders(self, symbol: str = "") -> list[OrderReport]:
        """The simulator's open orders on the account (of ``symbol``, or all)."""
        return self.account().open_orders(symbol)


__all__ = ["Stack", "StackError", "dumps_toml", "free_port", "merge", "ORDER", "PIPELINE"]
