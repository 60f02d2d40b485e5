"""What the TUI may change: manual OrderIntents on ``orders.manual`` (shared with the ops API
through ``procs.core.manual_orders.ManualOrders``; execution applies the same pre-trade risk
checks as to a strategy's intents), control commands (cancel-all to execution, kill switch to
risk) and supervisord actions.
"""

from __future__ import annotations

import getpass
import hmac
from pathlib import Path
from typing import Any

import numpy as np
import posix_ipc

from procs.core import control as C
from procs.core import messages as M
from procs.core.audit import AuditTrail
from procs.core.manual_orders import ManualOrders, OrderSpec
from procs.core.registry import RingCapacities

from .supervisor import SupervisorClient


class Commands:
    """Every state-changing action of the TUI; each is written to the audit trail when one is given
    (``procs.core.audit``: the file the ops API writes, ``[monitor] audit_dir``)."""

    def __init__(self, instance: str, depth: int = M.DEFAULT_DEPTH, operator: str = "",
                 supervisor: SupervisorClient | None = None, rings: RingCapacities | None = None,
                 config_path: str | None = None, audit: AuditTrail | None = None) -> None:
        self.instance = instance
        self.config_path = config_path  # the deployment file, for reload_config
        self.depth = depth
        self.rings = rings  # [deploy.rings]: the manual ring is created with the deployment's capacity
        self.operator = operator or f"tui:{getpass.getuser()}"
        self.supervisor = supervisor
        self.manual = ManualOrders(instance, depth, rings)
        self.audit = audit

    def _audited(self, action: str, args: dict[str, Any], outcome: str) -> str:
        if self.audit is not None:
            self.audit.record("tui", self.operator, "", action, args, 0, outcome)
        return outcome

    def submit(self, o: OrderSpec) -> str:
        """Publish one SubmitOrder intent (source SOURCE_MANUAL); returns what happened."""
        intent_id = self.manual.submit(o)
        if not intent_id:
            msg = "orders.manual is full: execution is not reading (is it running?)"
        else:
            msg = f"sent manual order #{intent_id}: {o.describe()}"
        return self._audited("order", {"order": o.describe()}, msg)

    def cancel(self, order: np.void) -> str:
        """Cancel one open order (an OrderEvent of it), the ops API's single-order cancel path."""
        cid = bytes(order["client_order_id"]).rstrip(b"\0").decode(errors="replace")
        if not int(order["client_tag"]):
            msg = f"{cid} has no client tag: it can only be cancelled with cancel all"
        elif not self.manual.cancel(int(order["strategy_id"]), int(order["client_tag"]), int(order["symbol_id"])):
            msg = "orders.manual is full: execution is not reading (is it running?)"
        else:
            msg = f"cancel sent for {cid}"
        return self._audited("cancel_order", {"client_order_id": cid}, msg)

    def send(self, proc: str, cmd: C.Command) -> str:
        try:
            C.send_command(self.instance, proc, cmd, timeout=0.2)
        except FileNotFoundError:
            return f"{proc} is not running (no control queue): {type(cmd).__name__} not sent"
        except posix_ipc.BusyError:
            return f"{proc}'s control queue is full: {type(cmd).__name__} not sent"
        return f"{type(cmd).__name__} sent to {proc}"

    def cancel_all(self, symbol: str = "") -> str:
        msg = self.send("execution", C.CancelAll(symbol=symbol, operator=self.operator))
        return self._audited("cancel_all", {"symbol": symbol}, msg)

    def kill_switch(self, on: bool) -> str:
        return self._audited("kill_switch", {"on": on}, self.send("risk", C.SetKillSwitch(on=on, operator=self.operator)))

    def reload_strategy(self, target: str = "") -> str:
        msg = self.send("strategy", C.Reload(target=target, operator=self.operator))
        return self._audited("strategy_reload", {"target": target}, msg)

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
            return self._audited("config_reload", {}, f"config not reloaded, nothing changed: {exc}"), False
        acted = [f"{o.service} {o.action}" + (f" ({', '.join(o.fields)})" if o.action == "restart needed" else "")
                 for o in done.outcomes if o.action not in ("not running", "unchanged")]
        msg = f"config version {done.seq}: " + ("; ".join(acted) or "no process needed a change")
        return self._audited("config_reload", {"seq": done.seq}, msg), done.complete

    def program(self, action: str, name: str) -> str:
        if self.supervisor is None:
            return "no supervisord (start the system with `make run`)"
        return self._audited(f"program_{action}", {"program": name}, self.supervisor.control(action, name))

    def close(self, unlink: bool = False) -> None:
        """Unmap orders.manual; it stays for execution and the next TUI unless ``unlink``."""
        self.manual.close(unlink=unlink)


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
