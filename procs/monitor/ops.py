"""The monitor's HTTP side (aiohttp): /metrics, /health and the JSON ops API.

GET  /api/status | /api/positions | /api/orders[?limit=N&open=1] | /api/risk | /api/alerts[?limit=N]
GET  /api/account                                  -> wallet, margin, leverage, liquidation (procs.monitor.account)
GET  /ws                                           -> the dashboard feed (procs.monitor.feed)
GET  /api/history/pnl | /api/history/bars                (procs.monitor.history)
POST /api/kill_switch {"on": bool}                 -> SetKillSwitch to risk
POST /api/trading_state {"state": "ACTIVE"|...}    -> SetTradingState to risk
POST /api/cancel_all {"symbol": ""}                -> CancelAll to execution
POST /api/strategy/reload {"target": ""}           -> Reload to strategy
Every POST needs ``Authorization: Bearer <token>`` (401 without, 403 when wrong or when no
token is configured) and may carry ``"operator"`` for the audit line. A bad body gets 400 with
the field and the reason; a target process without a control queue gets 503.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import msgspec
import posix_ipc
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from procs.core import control as C
from procs.core import log
from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.core.registry import ALERT_PRODUCERS, EXEC, RISK_STATE, alerts_name
from shm.counters import Counters

from .account import account_view
from .collector import ShmCollector
from .config import MonitorConfig
from .config_routes import config_routes
from .feed import Feed
from .health import health
from .history import HistorySources, history_routes
from .orders import OrderTracker, event_dict
from .shmview import InstanceView
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


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    operator: str = ""


class KillSwitchBody(_Body):
    on: bool


class TradingStateBody(_Body):
    state: Literal["ACTIVE", "REDUCING", "HALTED"]


class CancelAllBody(_Body):
    symbol: str = ""


class ReloadBody(_Body):
    target: str = ""


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
        raise BadRequest(_AT.sub("", text), fld) from None
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

    def count(self, c: Counter, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.inc(c, n)

    def poll(self) -> int:
        """Catch up with the exec ring (called from the loop every ``poll_s``)."""
        batch = self.exec_view.poll(limit=8192, history=8191)
        if self.exec_view.att.attaches != self._exec_attaches:  # a recreated exec ring: its history only
            self._exec_attaches = self.exec_view.att.attaches
            self.tracker = OrderTracker(self.cfg.recent_orders)
            self.trading.stats = OrderStats()
        if len(batch):
            self.tracker.apply(batch)
            self.trading.stats.apply(batch)
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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(mon: Monitor) -> web.Application:
    """The aiohttp application serving /metrics, /health and /api/*."""

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

    def command(typ: type, build: Callable[[Any, str], tuple[str, C.Command]]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            mon.count(Counter.API_REQUESTS)
            refused = authorized(request)
            if refused is not None:
                return refused
            body = decode_body(await request.read(), typ)
            operator = body.operator or f"ops-api@{request.remote}"
            proc, cmd = build(body, operator)
            return mon.send(proc, cmd)
        return handler

    def cancel_all(b: CancelAllBody, op: str) -> tuple[str, C.Command]:
        if b.symbol and b.symbol not in mon.symbols:
            raise BadRequest(f"unknown symbol {b.symbol!r}; configured: {', '.join(mon.symbols)}", "symbol")
        return "execution", C.CancelAll(symbol=b.symbol, operator=op)

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

    async def status_h(_r: web.Request) -> web.Response:
        mon.count(Counter.API_REQUESTS)
        _, body = health(mon.view, mon.cfg.required, mon.cfg.stale_after_s)
        return _json(body)

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

    feed = Feed(mon, mon.instruments)

    async def close_feed(_app: web.Application) -> None:
        await feed.close()

    app = web.Application(middlewares=[errors], client_max_size=64 * 1024)
    app.on_shutdown.append(close_feed)
    app.add_routes([
        web.get("/metrics", metrics), web.get("/health", health_h),
        web.get("/api/status", status_h), web.get("/api/positions", positions_h),
        web.get("/api/orders", orders_h), web.get("/api/risk", risk_h), web.get("/api/alerts", alerts_h),
        web.get("/api/account", account_h),
        web.get("/ws", feed.websocket),
        web.post("/api/kill_switch", command(
            KillSwitchBody, lambda b, op: ("risk", C.SetKillSwitch(on=b.on, operator=op)))),
        web.post("/api/trading_state", command(
            TradingStateBody, lambda b, op: ("risk", C.SetTradingState(state=b.state, operator=op)))),
        web.post("/api/cancel_all", command(CancelAllBody, cancel_all)),
        web.post("/api/strategy/reload", command(
            ReloadBody, lambda b, op: ("strategy", C.Reload(target=b.target, operator=op)))),
    ])
    if mon.history is not None:
        app.add_routes(history_routes(mon.history, BadRequest))
    app.add_routes(config_routes(mon.config_path, mon.view.instance, authorized, decode_body, BadRequest))
    return app


__all__ = ["Monitor", "make_app", "Counter", "Hist", "decode_body", "BadRequest"]
