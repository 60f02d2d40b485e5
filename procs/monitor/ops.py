"""The monitor's HTTP side (aiohttp): /metrics, /health and the JSON ops API.

Every route is declared once in the route table (``monitor_routes``, the history routes, and
what other modules pass to ``make_app``), which GET /api/openapi.json describes. Read routes:
status (with every latency histogram's p50/p95/p99/p99.9), positions, orders, risk, account
(procs.monitor.account), alerts, strategies, the audit trail, history, the /ws feed, /health, /health/live and /health/ready.
State-changing routes (kill switch, trading state, cancel all, strategy reload, manual order
entry, single-order cancel, config reload and rollback: procs.monitor.config_routes) need ``Authorization: Bearer <token>`` (401 without, 403 when wrong
or when no token is configured) and may carry ``operator`` and ``reason`` (in the body, or as
query parameters for DELETE), which the audit trail (procs.core.audit, GET /api/audit) and the
``ops_call`` log line record with the outcome. A bad body gets 400 naming the field and the
reason; a target process that is not running gets 503.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_type_hints

import msgspec
import posix_ipc
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from procs.core import control as C
from procs.core import log
from procs.core import messages as M
from procs.core.audit import AuditTrail, audit_path
from procs.core.instruments import Instrument
from procs.core.manual_orders import FieldError, ManualOrders, parse_order
from procs.core.registry import ALERT_PRODUCERS, EXEC, RISK_STATE, RingCapacities, alerts_name
from shm.counters import Counters, summary_us

from .account import account_view
from .collector import ShmCollector
from .config import MonitorConfig
from .config_routes import config_routes
from .feed import Feed
from .health import health
from .history import HistorySources, history_routes
from .manual import Answers, cancel_answer, describe_event, submit_answer
from .orders import OrderTracker, event_dict
from .routes import Handler, Param, Route, RouteTable
from .shmview import InstanceView
from .strategies import read_status_file, strategies_view
from .trading_metrics import OrderStats, TradingCollector


class Counter(IntEnum):
    """monitor counters (labels are the lower-case names)."""

    SCRAPES = 0
    HEALTH_REQUESTS = 1
    API_REQUESTS = 2
    COMMANDS_SENT = 3
    AUTH_FAILURES = 4
    BAD_REQUESTS = 5
    COMMAND_FAILURES = 6
    EXEC_EVENTS = 7


class Hist(IntEnum):
    SCRAPE = 0


Operator = Annotated[str, msgspec.Meta(max_length=64, description="who asks (default ops-api@<address>)")]
Reason = Annotated[str, msgspec.Meta(max_length=500, description="why, for the audit trail")]


class CommandBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What every state-changing body may carry besides its own fields: who asks and why."""

    operator: Operator = ""
    reason: Reason = ""


class KillSwitchBody(CommandBody):
    on: bool


class TradingStateBody(CommandBody):
    state: Literal["ACTIVE", "REDUCING", "HALTED"]


class CancelAllBody(CommandBody):
    symbol: str = ""


class ReloadBody(CommandBody):
    target: str = ""


Decimal = Annotated[str, msgspec.Meta(max_length=40, description="a plain decimal, as the venue writes it")]


class OrderBody(CommandBody):
    """A manual order: checked against the instrument's filters here, then by execution's
    pre-trade check (risk limits, trading state, rate) like any strategy's order. A stop or
    take_profit is a reduce-only market order the venue sends when ``price`` (its trigger) trades."""

    symbol: str
    side: Literal["buy", "sell", "BUY", "SELL"]
    qty: Decimal
    type: Literal["limit", "market", "stop", "take_profit", "LIMIT", "MARKET", "STOP", "TAKE_PROFIT"] = "limit"
    price: Decimal = ""  # a limit's price or a stop's trigger; empty for market
    tif: Literal["gtc", "ioc", "fok", "post_only", "GTC", "IOC", "FOK", "POST_ONLY"] = "gtc"
    reduce_only: bool = False


@dataclass(frozen=True)
class Who:
    """The operator and reason of a state-changing call (recorded in the audit trail)."""

    operator: str
    reason: str


_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_FIELD = re.compile(r"field `([^`]*)`")


class BadRequest(Exception):
    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def decode_body(raw: bytes, typ: type) -> Any:
    """A request body decoded into ``typ``; BadRequest names the field and why."""
    if not raw.strip():
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=typ)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _AT.search(text)
        fld = m.group(1) if m else ""
        if not fld:
            m2 = _FIELD.search(text)
            fld = m2.group(1) if m2 else ""
        reason = _AT.sub("", text)
        allowed = get_args(get_type_hints(typ).get(fld)) if text.startswith("Invalid enum value") else ()
        if allowed:
            reason += f"; must be one of: {', '.join(map(str, allowed))}"
        raise BadRequest(reason, fld) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


@dataclass
class Monitor:
    """What the HTTP handlers read: the instance's shm views, config and the order tracker."""

    cfg: MonitorConfig
    view: InstanceView
    symbols: list[str]
    token: str
    counters: Counters | None = None
    instruments: dict[str, Instrument] = field(default_factory=dict)  # prices in the /ws feed; ticks without
    history: HistorySources | None = None  # risk's P&L files and the recorder's, for /api/history/*
    config_path: str | None = None  # the deployment file, for /api/config/* (procs.monitor.config_routes)
    strategy_status: Path | None = None  # the strategy engine's status file, for /api/strategies
    rings: RingCapacities | None = None  # [deploy.rings], for orders.manual
    tracker: OrderTracker = field(init=False)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.tracker = OrderTracker(self.cfg.recent_orders)
        self._exec_attaches = 0
        self.collector = ShmCollector(self.view, self.cfg.stale_after_s, tuple(self.cfg.required))
        self.registry.register(self.collector)
        self.trading = TradingCollector(self.view, self.symbols)
        self.registry.register(self.trading)
        self.exec_view = self.view.ring(EXEC, M.OrderEvent)
        self.audit = AuditTrail(audit_path(self.cfg.audit_dir, self.view.instance))
        self.manual = ManualOrders(self.view.instance, self.view.depth, self.rings)
        self.answers = Answers()
        self.started = time.monotonic()

    def count(self, c: Counter, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.inc(c, n)

    def poll(self) -> int:
        """Catch up with the exec ring (called from the loop every ``poll_s``, and while an order waits)."""
        batch = self.exec_view.poll(limit=8192, history=8191)
        if self.exec_view.att.attaches != self._exec_attaches:  # a recreated exec ring: its history only
            self._exec_attaches = self.exec_view.att.attaches
            self.tracker = OrderTracker(self.cfg.recent_orders)
            self.trading.stats = OrderStats()
        if len(batch):
            self.tracker.apply(batch)
            self.trading.stats.apply(batch)
            self.answers.apply(batch)
            self.count(Counter.EXEC_EVENTS, len(batch))
        return len(batch)

    def symbol_name(self, sid: int) -> str:
        return self.symbols[sid] if 0 <= sid < len(self.symbols) else str(sid)

    # -- read side ---------------------------------------------------------------------------
    def risk(self) -> dict[str, Any] | None:
        got = self.view.state(RISK_STATE, M.RiskState).read()
        if got is None:
            return None
        r = got[0][0]
        ts = int(r["trading_state"])
        per = {}
        for i, s in enumerate(self.symbols[: M.MAX_SYMBOLS]):
            per[s] = {k: int(r[k][i]) for k in ("position", "mark", "max_position", "max_order_qty",
                                                "max_order_notional_e8", "price_band_bps", "sym_max_open_orders",
                                                "max_leverage_e6")}
            per[s]["mark_source"] = M.MARK_SOURCE_NAMES.get(int(r["mark_source"][i]), "unknown")
        return {"trading_state": M.TRADING_STATE_NAMES.get(ts, str(ts)), "kill_switch": ts == M.HALTED,
                "halt_reason": int(r["halt_reason"]), "version": int(r["version"]),
                "updated_age_s": round((time.monotonic_ns() - int(r["updated_ns"])) / 1e9, 3) if r["updated_ns"] else None,
                "equity": int(r["equity_e8"]) / 1e8, "drawdown": int(r["drawdown_e8"]) / 1e8,
                "max_open_orders": int(r["max_open_orders"]), "max_orders_per_s": int(r["max_orders_per_s"]),
                "max_margin_ratio_e6": int(r["max_margin_ratio_e6"]), "symbols": per}

    def account(self) -> dict[str, Any] | None:
        got = self.view.state(RISK_STATE, M.RiskState).read()
        return None if got is None else account_view(got[0][0], self.symbols, self.instruments)

    def positions(self) -> dict[str, Any]:
        risk = self.risk()
        out: dict[str, Any] = {}
        for sid, pos in sorted(self.tracker.positions.items()):
            out[self.symbol_name(sid)] = {"position_lots": pos.lots, "avg_price_ticks": round(pos.avg_ticks, 3),
                                          "realized_ticks_lots": round(pos.realized, 6), "fees": pos.fees_e8 / 1e8,
                                          "fills": pos.fills}
        if risk is not None:
            for s, d in risk["symbols"].items():
                row = out.setdefault(s, {})
                row["risk_position_lots"] = d["position"]
                row["mark_ticks"] = d["mark"]
                if s in out and "avg_price_ticks" in row and d["mark"]:
                    sid = self.symbols.index(s)
                    row["unrealized_ticks_lots"] = round(self.tracker.positions[sid].unrealized(d["mark"]), 6) \
                        if sid in self.tracker.positions else 0.0
        return {"positions": out, "units": "prices in ticks, quantities in lots of each symbol's instrument",
                "from": "exec fills seen by the monitor; risk_position_lots from risk.state"}

    def orders(self, limit: int, open_only: bool) -> dict[str, Any]:
        evs = self.tracker.open_orders() if open_only else list(self.tracker.recent)[-limit:]
        rows = [event_dict(e) | {"symbol": self.symbol_name(int(e["symbol_id"]))} for e in evs[-limit:]]
        return {"orders": rows, "open": len(self.tracker.open), "events_seen": self.tracker.events}

    def alerts(self, limit: int) -> dict[str, Any]:
        rows = []
        for p in ALERT_PRODUCERS:
            for a in self.view.ring(alerts_name(p), M.Alert).tail(limit):
                rows.append({"ts": int(a["ts"]) / 1e9, "proc": p, "level": int(a["level"]), "code": int(a["code"]),
                             "symbol": self.symbol_name(int(a["symbol_id"])), "value": float(a["value"]),
                             "text": bytes(a["text"]).rstrip(b"\0").decode(errors="replace")})
        rows.sort(key=lambda r: r["ts"], reverse=True)
        return {"alerts": rows[:limit]}

    def reconfigure(self, cfg: MonitorConfig, token: str) -> None:
        """A reloaded [monitor]: the token, the required list and the staleness limit."""
        self.cfg, self.token = cfg, token
        self.collector.required = tuple(cfg.required or ())
        self.collector.stale_after_s = cfg.stale_after_s

    def latency(self) -> list[dict[str, Any]]:
        """Every process's shm histograms as count and p50/p95/p99/p99.9 in microseconds."""
        return [{"proc": proc, "stage": stage, **summary_us(counts)}
                for proc, (_c, hists) in sorted(self.view.all_counters().items()) for stage, counts in hists.items()]

    def strategies(self) -> dict[str, Any]:
        doc, why = (None, "no strategy status file ([strategy] state_file = \"-\")") if self.strategy_status is None \
            else read_status_file(self.strategy_status)
        risk = self.risk()
        marks = {s: d["mark"] for s, d in risk["symbols"].items()} if risk is not None else {}
        return strategies_view(doc, why, self.view.status("strategy", self.cfg.stale_after_s), marks,
                               self.instruments)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready to trade: every required process fresh and risk.state written."""
        _, body = health(self.view, self.cfg.required, self.cfg.stale_after_s)
        why = [f"{p}: {w}" for p, w in sorted(body["why"].items())]
        risk = self.risk()
        if risk is None or risk["updated_age_s"] is None:
            why.append("risk.state: not written yet (risk not running?)")
        return not why, {"ready": not why, "why": why,
                         "trading_state": risk["trading_state"] if risk is not None else None}

    # -- commands ------------------------------------------------------------------------------
    def send(self, proc: str, cmd: C.Command) -> web.Response:
        try:
            C.send_command(self.view.instance, proc, cmd, timeout=0.5)
        except FileNotFoundError as exc:
            self.count(Counter.COMMAND_FAILURES)
            return _json({"error": str(exc), "to": proc}, 503)
        except posix_ipc.BusyError:
            self.count(Counter.COMMAND_FAILURES)
            return _json({"error": f"control queue full (process not reading?): proc={proc}", "to": proc}, 503)
        self.count(Counter.COMMANDS_SENT)
        log.info("command_sent", to=proc, command=type(cmd).__name__, operator=cmd.operator,
                 args=msgspec.to_builtins(cmd))
        return _json({"sent": type(cmd).__name__, "to": proc, "command": msgspec.to_builtins(cmd)}, 202)

    def execution_down(self) -> str:
        """Why a manual intent would not be taken now ("" when execution is running)."""
        st = self.view.status("execution", self.cfg.stale_after_s)
        return "" if st["fresh"] else f"execution is not running ({st['why']}): the order was not sent"

    async def wait_answer(self, answer: Callable[[], tuple[int, dict[str, Any]] | None]) -> tuple[int, dict] | None:
        """Poll the exec ring until ``answer()`` has one, at most ``order_answer_s``."""
        deadline = time.monotonic() + self.cfg.order_answer_s
        while True:
            self.poll()
            got = answer()
            if got is not None or time.monotonic() >= deadline:
                return got
            await asyncio.sleep(0.002)

    def describe(self, ev: Any) -> dict[str, Any]:
        return describe_event(ev, self.symbols)

    async def submit(self, body: OrderBody) -> web.Response:
        try:
            spec = parse_order(body.symbol, body.side, body.type, body.price, body.qty, self.symbols, self.instruments,
                               body.tif, body.reduce_only)
        except FieldError as exc:
            raise BadRequest(exc.reason, exc.field) from None
        down = self.execution_down()
        if down:
            return _json({"error": down}, 503)
        intent_id = self.manual.submit(spec)
        if not intent_id:
            self.count(Counter.COMMAND_FAILURES)
            return _json({"error": "orders.manual is full: execution is not reading it"}, 503)
        self.count(Counter.COMMANDS_SENT)
        self.answers.watch(intent_id)
        try:
            got = await self.wait_answer(lambda: submit_answer(self.answers.by_intent[intent_id], self.describe))
        finally:
            self.answers.forget(intent_id)
        if got is None:
            return _json({"outcome": "pending", "intent_id": intent_id, "order": spec.describe(),
                          "error": f"no answer from execution within {self.cfg.order_answer_s}s: "
                                   "its events will show in GET /api/orders"}, 202)
        status, answer = got
        return _json(answer | {"order": spec.describe()}, status)

    async def cancel(self, client_order_id: str) -> web.Response:
        if not CLIENT_ORDER_ID.fullmatch(client_order_id):
            raise BadRequest(f"not a client order id (1-36 of A-Z a-z 0-9 . : / _ -): {client_order_id!r}",
                             "client_order_id")
        self.poll()
        order = self.tracker.open.get((client_order_id.encode(),))
        if order is None:
            return _json({"error": f"no open order with client_order_id={client_order_id} "
                                   f"(GET /api/orders?open=1 lists them)"}, 404)
        if not int(order["client_tag"]):
            return _json({"error": f"order {client_order_id} has no client tag: only POST /api/cancel_all "
                                   "can cancel it"}, 409)
        down = self.execution_down()
        if down:
            return _json({"error": down.replace("order", "cancel")}, 503)
        intent_id = self.manual.cancel(int(order["strategy_id"]), int(order["client_tag"]), int(order["symbol_id"]))
        if not intent_id:
            self.count(Counter.COMMAND_FAILURES)
            return _json({"error": "orders.manual is full: execution is not reading it"}, 503)
        self.count(Counter.COMMANDS_SENT)
        self.answers.watch(intent_id, client_order_id)
        try:
            got = await self.wait_answer(lambda: cancel_answer(client_order_id, self.answers.by_intent[intent_id],
                                                               self.answers.by_order[client_order_id], self.describe))
        finally:
            self.answers.forget(intent_id, client_order_id)
        if got is None:
            return _json({"outcome": "pending", "client_order_id": client_order_id, "intent_id": intent_id,
                          "error": f"no answer from execution within {self.cfg.order_answer_s}s: "
                                   "its events will show in GET /api/orders"}, 202)
        status, answer = got
        return _json(answer, status)

    def close(self) -> None:
        self.manual.close()


ROUTES = web.AppKey("routes", RouteTable)  # the app's route table
OPENAPI = web.AppKey("openapi", dict)  # the document GET /api/openapi.json serves
CLIENT_ORDER_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")  # the alphabet and length of client order ids


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


def _int_arg(request: web.Request, name: str, default: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"must be an integer: {name}={raw!r}", name) from None
    if not 1 <= v <= hi:
        raise BadRequest(f"must be 1..{hi}: {name}={v}", name)
    return v


def _int_param(name: str, default: int, hi: int, what: str) -> Param:
    return Param(name, {"type": "integer", "minimum": 1, "maximum": hi, "default": default}, what)


def monitor_routes(mon: Monitor, feed: Feed) -> list[Route]:
    """The monitor's own routes (the history routes and the OpenAPI document are added by ``make_app``)."""

    async def metrics(_r: web.Request) -> web.Response:
        t0 = time.monotonic_ns()
        body = generate_latest(mon.registry)
        mon.count(Counter.SCRAPES)
        if mon.counters is not None:
            mon.counters.record(Hist.SCRAPE, time.monotonic_ns() - t0)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_h(_r: web.Request) -> web.Response:
        mon.count(Counter.HEALTH_REQUESTS)
        status, body = health(mon.view, mon.cfg.required, mon.cfg.stale_after_s)
        return _json(body, status)

    async def live_h(_r: web.Request) -> web.Response:
        mon.count(Counter.HEALTH_REQUESTS)
        return _json({"live": True, "pid": os.getpid(), "uptime_s": round(time.monotonic() - mon.started, 1)})

    async def ready_h(_r: web.Request) -> web.Response:
        mon.count(Counter.HEALTH_REQUESTS)
        ok, body = mon.ready()
        return _json(body, 200 if ok else 503)

    async def status_h(_r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        _, body = health(mon.view, mon.cfg.required, mon.cfg.stale_after_s)
        return _json(body | {"latency": mon.latency()})

    async def positions_h(_r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        return _json(mon.positions())

    async def orders_h(r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        limit = _int_arg(r, "limit", 100, mon.cfg.recent_orders)
        open_only = r.query.get("open", "0") not in ("0", "", "false")
        return _json(mon.orders(limit, open_only))

    def from_risk_state(read: Callable[[], dict[str, Any] | None]) -> Handler:
        async def handler(_r: web.Request) -> web.Response:
            mon.count(Counter.API_REQUESTS)
            body = read()
            if body is None:
                return _json({"error": "no risk.state block (risk not running?)"}, 503)
            return _json(body)
        return handler

    risk_h, account_h = from_risk_state(mon.risk), from_risk_state(mon.account)

    async def alerts_h(r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        return _json(mon.alerts(_int_arg(r, "limit", 50, mon.cfg.recent_alerts)))

    async def strategies_h(_r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        return _json(mon.strategies())

    async def audit_h(r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        rows = mon.audit.tail(_int_arg(r, "limit", 50, 1000))
        return _json({"records": rows, "file": str(mon.audit.path), "write_failures": mon.audit.failures,
                      "last_error": mon.audit.last_error})

    def command(proc: str, build: Callable[[Any, str], C.Command]) -> Handler:
        async def handler(_r: web.Request, body: Any, who: Who) -> web.Response:
            return mon.send(proc, build(body, who.operator))
        return handler

    def cancel_all(b: CancelAllBody, op: str) -> C.Command:
        if b.symbol and b.symbol not in mon.symbols:
            raise BadRequest(f"unknown symbol {b.symbol!r}; configured: {', '.join(mon.symbols)}", "symbol")
        return C.CancelAll(symbol=b.symbol, operator=op)

    async def submit_h(_r: web.Request, body: OrderBody, _who: Who) -> web.Response:
        return await mon.submit(body)

    async def cancel_h(r: web.Request, _body: None, _who: Who) -> web.Response:
        return await mon.cancel(r.match_info["client_order_id"])

    sent = {202: "the command is in the process's control queue",
            503: "the process has no control queue (not running) or its queue is full"}
    who = (Param("operator", {"type": "string", "maxLength": 64}, "who asks (default ops-api@<address>)"),
           Param("reason", {"type": "string", "maxLength": 500}, "why, for the audit trail"))
    return [
        Route("GET", "/metrics", metrics, "Prometheus metrics (every process's counters, histograms, rings)",
              {200: "the exposition text"}, tag="health", content_type="text/plain"),
        Route("GET", "/health", health_h, "every required process fresh, or the stale ones named",
              {200: "all fresh", 503: "stale processes, named in `why`"}, tag="health"),
        Route("GET", "/health/live", live_h, "the monitor itself answers (liveness)",
              {200: "alive"}, tag="health"),
        Route("GET", "/health/ready", ready_h, "ready to trade: every required process fresh and risk.state written",
              {200: "ready", 503: "not ready: `why` lists each reason"}, tag="health"),
        Route("GET", "/api/status", status_h, "process health and every latency histogram (p50, p95, p99, p99.9)",
              {200: "processes and latency"}),
        Route("GET", "/api/positions", positions_h, "positions from the fills the monitor saw, and risk's",
              {200: "positions by symbol"}),
        Route("GET", "/api/orders", orders_h, "recent order events, or the open orders",
              {200: "order events"},
              params=(_int_param("limit", 100, mon.cfg.recent_orders, "how many events"),
                      Param("open", {"type": "string", "enum": ["0", "1", "true", "false"]},
                            "1: only the open orders"))),
        Route("GET", "/api/risk", risk_h, "risk.state: trading state, limits, marks, equity, drawdown",
              {200: "risk state", 503: "no risk.state block (risk not running)"}),
        Route("GET", "/api/account", account_h, "wallet, margin balance and ratio, available balance; per position "
              "leverage, liquidation price and distance", {200: "the account", 503: "no risk.state block (risk not running)"}),
        Route("GET", "/api/alerts", alerts_h, "the newest alerts of every process",
              {200: "alerts, newest first"}, params=(_int_param("limit", 50, mon.cfg.recent_alerts, "how many"),)),
        Route("GET", "/api/strategies", strategies_h,
              "per strategy: state, positions, P&L, open orders and last error", {200: "strategies by id"}),
        Route("GET", "/api/audit", audit_h, "the audit trail: the newest state-changing calls (ops API and TUI)",
              {200: "records, newest first"}, params=(_int_param("limit", 50, 1000, "how many"),)),
        Route("GET", "/ws", feed.websocket, "the dashboard feed (WebSocket; procs.monitor.feed)",
              {101: "switching to WebSocket", 403: "off loopback without the ops token",
               503: "the feed is full ([monitor] feed_max_clients)"}, tag="feed"),
        Route("POST", "/api/kill_switch", command("risk", lambda b, op: C.SetKillSwitch(on=b.on, operator=op)),
              "the kill switch: on = HALTED (risk)", sent, tag="command", body=KillSwitchBody, changes_state=True),
        Route("POST", "/api/trading_state", command(
            "risk", lambda b, op: C.SetTradingState(state=b.state, operator=op)),
              "set the trading state (risk)", sent, tag="command", body=TradingStateBody, changes_state=True),
        Route("POST", "/api/cancel_all", command("execution", cancel_all),
              "cancel every open order, or a symbol's (execution)", sent, tag="command", body=CancelAllBody,
              changes_state=True),
        Route("POST", "/api/strategy/reload", command("strategy", lambda b, op: C.Reload(target=b.target, operator=op)),
              "reload strategy code and config (strategy)", sent, tag="command", body=ReloadBody, changes_state=True),
        Route("POST", "/api/orders", submit_h, "enter a manual order (orders.manual, execution's pre-trade check)",
              {201: "the order reached the venue: `outcome` accepted, filled, partially_filled, canceled or expired",
               202: "no answer from execution in [monitor] order_answer_s: `outcome` pending",
               422: "refused: `outcome` denied (b25's pre-trade check, `reason` names it) or rejected (the venue)",
               503: "execution not running, or orders.manual full"},
              tag="command", body=OrderBody, changes_state=True),
        Route("DELETE", "/api/orders/{client_order_id}", cancel_h, "cancel one open order (any strategy's or manual)",
              {200: "canceled", 202: "no answer from execution in [monitor] order_answer_s: `outcome` pending",
               404: "no open order with that client order id",
               409: "not cancelled: filled or closed meanwhile, refused by the venue, or without a client tag",
               503: "execution not running, or orders.manual full"},
              tag="command", changes_state=True,
              params=(Param("client_order_id", {"type": "string", "pattern": "^[.A-Z:/a-z0-9_-]{1,36}$"},
                            "the order's client order id (GET /api/orders)", location="path"), *who)),
    ]


def make_app(mon: Monitor, extra: Iterable[Route] = ()) -> web.Application:
    """The aiohttp application serving every route of the route table: the monitor's own, the
    history routes, ``extra`` (other modules' routes) and the OpenAPI document of them all."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            mon.count(Counter.BAD_REQUESTS)
            return _json({"error": exc.reason, "field": exc.field}, 400)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _json({"error": exc.reason, "path": request.path}, exc.status)

    def authorized(request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth:
            mon.count(Counter.AUTH_FAILURES)
            return web.Response(body=msgspec.json.encode({"error": "missing Authorization: Bearer <token>"}),
                                status=401, content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        if not mon.token:
            mon.count(Counter.AUTH_FAILURES)
            return _json({"error": "no ops token configured ([monitor] token_file or B25_MONITOR_TOKEN): "
                                   "state-changing calls are refused"}, 403)
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), mon.token.encode()):
            mon.count(Counter.AUTH_FAILURES)
            log.warn("ops_auth_refused", path=request.path, remote=request.remote)
            return _json({"error": "wrong token"}, 403)
        return None

    def state_changing(route: Route) -> Handler:
        """The token check, the body, and the audit record around a state-changing handler."""
        action = f"{route.method} {route.path}"

        async def handler(request: web.Request) -> web.StreamResponse:
            mon.count(Counter.API_REQUESTS)
            refused = authorized(request)
            if refused is not None:
                return refused
            args: dict[str, Any] = dict(request.match_info)
            operator, reason = request.query.get("operator", ""), request.query.get("reason", "")
            body = None
            try:
                if route.body is not None:
                    body = decode_body(await request.read(), route.body)
                    operator, reason = body.operator, body.reason
                    args |= {k: v for k, v in msgspec.to_builtins(body).items() if k not in ("operator", "reason")}
                elif len(operator) > 64 or len(reason) > 500:
                    raise BadRequest("operator is at most 64 characters, reason at most 500",
                                     "operator" if len(operator) > 64 else "reason")
                who = Who(operator or f"ops-api@{request.remote}", reason)
                response = await route.handler(request, body, who)
            except BadRequest as exc:
                mon.audit.record("ops-api", operator or f"ops-api@{request.remote}", reason, action, args, 400,
                                 f"refused: {exc.field}: {exc.reason}", request.remote or "")
                raise
            mon.audit.record("ops-api", who.operator, who.reason, action, args, response.status,
                             _outcome(response), request.remote or "")
            log.info("ops_call", action=action, operator=who.operator, reason=who.reason, status=response.status)
            return response
        return handler

    feed = Feed(mon, mon.instruments)

    async def close_feed(_app: web.Application) -> None:
        await feed.close()
        mon.close()

    table = RouteTable()
    table.add(*monitor_routes(mon, feed))
    if mon.history is not None:
        table.add(*history_routes(mon.history, BadRequest))
    table.add(*config_routes(mon.config_path, mon.view.instance, BadRequest))
    table.add(*extra)
    spec: dict[str, Any] = {}

    async def openapi_h(_r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        return _json(spec)

    table.add(Route("GET", "/api/openapi.json", openapi_h, "this document: every route the monitor serves",
                    {200: "the OpenAPI 3.1 document"}))
    spec.update(table.openapi("b25 ops API", "1", __doc__ or ""))
    order_body = spec["components"]["schemas"].get("OrderBody")
    if order_body is not None and mon.symbols:
        order_body["properties"]["symbol"]["enum"] = list(mon.symbols)

    app = web.Application(middlewares=[errors], client_max_size=64 * 1024)
    app.on_shutdown.append(close_feed)
    app.add_routes([web.route(r.method, r.path, state_changing(r) if r.changes_state else r.handler)
                    for r in table.routes])
    app[ROUTES] = table
    app[OPENAPI] = spec
    return app


def _outcome(response: web.StreamResponse) -> str:
    """A response's ``outcome`` or ``error`` in words, for the audit record."""
    raw = getattr(response, "body", None)
    if not isinstance(raw, bytes):
        return ""
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc[k]) for k in ("outcome", "sent", "client_order_id", "reason", "error") if doc.get(k)]
    return " ".join(parts)


__all__ = ["Monitor", "make_app", "monitor_routes", "Counter", "Hist", "decode_body", "BadRequest", "Who",
           "CommandBody"]
