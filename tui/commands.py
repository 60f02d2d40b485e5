"""What the TUI may change: manual OrderIntents on ``orders.manual`` (the TUI is that ring's
producer; execution applies the same pre-trade risk checks as to a strategy's intents),
control commands (cancel-all to execution, kill switch to risk) and supervisord actions.
"""

from __future__ import annotations

import getpass
import hmac
import time
from pathlib import Path

import posix_ipc

from procs.core import control as C
from procs.core import messages as M
from procs.core.registry import ORDERS_MANUAL, RingCapacities, build_registry
from shm.ring import Producer

from .orderform import OrderSpec
from .supervisor import SupervisorClient


class Commands:
    def __init__(self, instance: str, depth: int = M.DEFAULT_DEPTH, operator: str = "",
                 supervisor: SupervisorClient | None = None, rings: RingCapacities | None = None,
                 config_path: str | None = None) -> None:
        self.instance = instance
        self.config_path = config_path  # the deployment file, for reload_config
        self.depth = depth
        self.rings = rings  # [deploy.rings]: the manual ring is created with the deployment's capacity
        self.operator = operator or f"tui:{getpass.getuser()}"
        self.supervisor = supervisor
        self._manual: Producer | None = None

    def _producer(self) -> Producer:
        # created on first use and kept: a restarted TUI reopens it and resumes at its cursor,
        # so execution (the named consumer) never loses its place
        if self._manual is None:
            self._manual = build_registry(self.depth, self.rings).producer(self.instance, ORDERS_MANUAL)
        return self._manual

    def submit(self, o: OrderSpec) -> str:
        """Publish one SubmitOrder intent (source SOURCE_MANUAL); returns what happened."""
        p = self._producer()
        intent_id = p.next_sequence + 1
        ok = p.try_publish(intent_id, M.SUBMIT_ORDER, M.SOURCE_MANUAL, 0, o.symbol_id, o.side, o.order_type,
                           o.tif, o.price, o.qty, int(o.reduce_only), intent_id, 0, 0, time.monotonic_ns(), 0,
                           o.trigger_price, 0)
        if not ok:
            return "orders.manual is full: execution is not reading (is it running?)"
        return f"sent manual order #{intent_id}: {o.describe()}"

    def send(self, proc: str, cmd: C.Command) -> str:
        try:
            C.send_command(self.instance, proc, cmd, timeout=0.2)
        except FileNotFoundError:
            return f"{proc} is not running (no control queue): {type(cmd).__name__} not sent"
        except posix_ipc.BusyError:
            return f"{proc}'s control queue is full: {type(cmd).__name__} not sent"
        return f"{type(cmd).__name__} sent to {proc}"

    def cancel_all(self, symbol: str = "") -> str:
        return self.send("execution", C.CancelAll(symbol=symbol, operator=self.operator))

    def kill_switch(self, on: bool) -> str:
        return self.send("risk", C.SetKillSwitch(on=on, operator=self.operator))

    def reload_strategy(self, target: str = "") -> str:
        return self.send("strategy", C.Reload(target=target, operator=self.operator))

    def reload_config(self) -> tuple[str, bool]:
        """The config file as it is now into service (procs.core.rollout): (what happened, complete).
        Blocks up to a few seconds (each process confirms): call it off the UI thread."""
        from procs.core.config import ConfigError
        from procs.core.rollout import apply
        from procs.core.versions import store_for

        if not self.config_path:
            return "no config file (the TUI runs on defaults): nothing to reload", False
        path = Path(self.config_path)
        try:
            done = apply(path, self.instance, path.read_bytes(), store_for(path, self.instance), event="reload",
                         source="tui", operator=self.operator, reason="reload from the TUI")
        except (ConfigError, OSError, ValueError) as exc:
            return f"config not reloaded, nothing changed: {exc}", False
        acted = [f"{o.service} {o.action}" + (f" ({', '.join(o.fields)})" if o.action == "restart needed" else "")
                 for o in done.outcomes if o.action not in ("not running", "unchanged")]
        return f"config version {done.seq}: " + ("; ".join(acted) or "no process needed a change"), done.complete

    def program(self, action: str, name: str) -> str:
        if self.supervisor is None:
            return "no supervisord (start the system with `make run`)"
        return self.supervisor.control(action, name)

    def close(self, unlink: bool = False) -> None:
        """Unmap orders.manual; it stays for execution and the next TUI unless ``unlink``."""
        if self._manual is not None:
            self._manual.close(unlink=unlink)
            self._manual = None


class TokenGate:
    """A web session's check before each state-changing command: the ops token, the monitor's."""

    def __init__(self, token: str, why_none: str = "") -> None:
        self.token = token
        self.why_none = why_none or "no ops token configured ([monitor] token_file or B25_MONITOR_TOKEN)"

    @classmethod
    def from_config(cls, config: str | Path | None) -> TokenGate:
        from procs.core.config import ConfigError
        from procs.monitor.config import load_monitor_config, load_token

        try:
            return cls(load_token(load_monitor_config(config)))
        except (ConfigError, ValueError) as exc:
            return cls("", f"the ops token cannot be read: {exc}")

    def check(self, given: str) -> str:
        """"" when ``given`` is the token, else why the command is refused."""
        if not self.token:
            return f"{self.why_none}: refused"
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return "wrong ops token: not sent"
        return ""
