"""b25 TUI: the operator's screen. ``b25 tui [--instance NAME] [--config F]``.

Reads everything from the instance's shared memory as an observer (never gates a ring, never
writes a segment it does not own), polls it every 100 ms with ``set_interval``, and writes only
manual OrderIntents to ``orders.manual`` and control commands. Quitting leaves the system running.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, TabbedContent, TabPane

from procs.core import messages as M
from procs.core.audit import AuditTrail, audit_path
from procs.core.config import ConfigError, load_section
from procs.core.manual_orders import OrderSpec
from shm.segment import DEFAULT_INSTANCE

from .account import AccountPanel
from .commands import Commands, TokenGate
from .config import TuiConfig
from .panels import (
    AlertsPanel,
    BookLadder,
    LatencyPanel,
    OrdersPanel,
    Panel,
    PositionsPanel,
    ProcessesPanel,
    RiskPanel,
    StrategiesPanel,
    StrategyConfigPanel,
    TradesTape,
)
from .roster import StrategyRoster
from .screens import ConfirmScreen, HelpScreen, OrderEntryScreen, TokenScreen
from .session import HistoryView, SessionChart, StrategyPnlPanel
from .source import ShmSource
from .supervisor import SupervisorClient

ROOT = Path(__file__).resolve().parents[1]
TABS = ("market", "portfolio", "strategy", "system")


class B25App(App):
    """Panels in four tabs (each usable at 80x24); keys for symbol, orders, cancel-all, kill switch."""

    TITLE = "b25"
    CSS = """
    Screen { layout: vertical; }
    TabbedContent { height: 1fr; }
    TabPane { padding: 0; }
    DataTable, TextTable, PositionsPanel, RiskPanel, LatencyPanel { border: round $primary-darken-2; }
    TextTable { padding: 0 0 0 1; text-wrap: nowrap; text-overflow: clip; width: 1fr; }
    PositionsPanel, RiskPanel, LatencyPanel { width: 1fr; }
    DataTable:focus { border: round $accent; }
    #market-left { width: 39; }
    BookLadder { height: 1fr; }
    TradesTape { height: 1fr; }
    OrdersPanel { height: 1fr; }
    PositionsPanel, RiskPanel, LatencyPanel, StrategiesPanel, ProcessesPanel, AlertsPanel { height: 1fr; }
    StrategyConfigPanel { height: auto; max-height: 8; }
    PositionsPanel DataTable, LatencyPanel DataTable { border: none; height: 1fr; }
    #equity, #latency-hist { height: 3; }
    #portfolio-top { height: 1fr; }
    AccountPanel { width: 66; max-width: 45%; height: 1fr; border: round $primary-darken-2; padding: 0 0 0 1; }
    #portfolio-session { height: 1fr; }
    SessionChart { border: round $primary-darken-2; width: 2fr; }
    StrategyPnlPanel { width: 3fr; max-width: 73; height: 1fr; }  /* 73: its columns and the border */
    RiskPanel ProgressBar { height: 1; }
    RiskPanel Label { height: 1; }
    ModalScreen { align: center middle; }
    #dialog { width: 70; max-width: 100%; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    .field { height: 3; }
    .field-label { width: 8; padding: 1 0; }
    .field Input { width: 1fr; }
    #error { height: auto; min-height: 1; }
    #buttons { height: 3; align: center middle; }
    #buttons Button { margin: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("s", "symbol(1)", "Symbol"),
        Binding("S", "symbol(-1)", "Prev symbol", show=False),
        Binding("o", "order", "Order"),
        Binding("c", "cancel_all", "Cancel all"),
        Binding("d", "cancel_order", "Cancel"),
        Binding("k", "kill(True)", "Kill"),
        Binding("K", "kill(False)", "Unkill", show=False),
        Binding("R", "reload", "Reload strat", show=False),
        Binding("L", "reload_config", "Reload config", show=False),
        *(Binding(str(i + 1), f"tab('{t}')", t.capitalize(), show=False) for i, t in enumerate(TABS)),
    ]

    def __init__(self, source: ShmSource, commands: Commands, refresh_s: float = 0.1, title: str | None = None,
                 token_gate: TokenGate | None = None) -> None:
        super().__init__()
        self.token_gate = token_gate  # a web session: every state-changing key asks for the ops token first
        self.source = source
        self.commands = commands
        self.refresh_s = refresh_s
        self.symbols = source.symbols
        self.symbol = self.symbols[0] if self.symbols else ""
        self.title = title or f"b25 {source.instance}"
        self.last_message = ""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        with TabbedContent(initial="market"):
            with TabPane("1 market", id="market"):
                with Horizontal():
                    with Vertical(id="market-left"):
                        yield BookLadder("book", id="book")
                    with Vertical():
                        yield TradesTape("trades", id="trades")
                        yield OrdersPanel("orders", id="orders")
            with TabPane("2 portfolio", id="portfolio"), Vertical():
                with Horizontal(id="portfolio-top"):
                    yield PositionsPanel(id="positions")
                    yield AccountPanel(id="account")
                    yield RiskPanel(self.symbols, id="risk")
                with Horizontal(id="portfolio-session"):
                    yield SessionChart(id="session-chart")
                    yield StrategyPnlPanel(id="session-strategies")
            with TabPane("3 strategy", id="strategy"), Vertical():
                with Horizontal():
                    yield StrategiesPanel("signals", id="strategies")
                    yield LatencyPanel(id="latency")
                yield StrategyConfigPanel("strategy config", id="strategy-config")
            with TabPane("4 system", id="system"), Vertical():
                yield ProcessesPanel("processes (t start, x stop, r restart)", id="processes")
                yield AlertsPanel("alerts", id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.panels = {t: [p for p in self.query_one(f"#{t}", TabPane).query("*") if isinstance(p, Panel)]
                       for t in TABS}
        self.tabs = self.query_one(TabbedContent)
        self.set_interval(self.refresh_s, self.tick)
        self.tick()

    def tick(self) -> None:
        """Catch up shm and redraw the panels of the visible tab (the others when shown)."""
        self.source.refresh()
        for panel in self.panels.get(self.tabs.active or "market", ()):
            try:
                panel.refresh_from(self.source, self.symbol)
            except NoMatches:  # a panel whose children are still mounting, or already gone at exit
                continue
        risk = self.source.risk()
        state = "risk ?" if risk is None else M.TRADING_STATE_NAMES.get(int(risk["trading_state"]), "?")
        sub = f"{self.symbol}  {state}" + (f"  | {self.last_message}" if self.last_message else "")
        if sub != self.sub_title:
            self.sub_title = sub

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self.tick()

    # -- actions ------------------------------------------------------------------------------
    def say(self, message: str, severity: str = "information") -> None:
        self.last_message = message
        self.notify(message, severity=severity)  # type: ignore[arg-type]

    def action_tab(self, tab: str) -> None:
        self.tabs.active = tab

    def action_symbol(self, step: int) -> None:
        if self.symbols:
            self.symbol = self.symbols[(self.symbols.index(self.symbol) + step) % len(self.symbols)]
            self.tick()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def guarded(self, what: str, proceed: Callable[[], None]) -> None:
        """Run a state-changing action; in a web session only after the ops token was given."""
        if self.token_gate is None:
            proceed()
            return

        def done(given: str | None) -> None:
            why = "cancelled" if given is None else self.token_gate.check(given)  # type: ignore[union-attr]
            if why:
                self.say(f"{what}: {why}", "error")
            else:
                proceed()

        self.push_screen(TokenScreen(what), done)

    def action_order(self) -> None:
        self.guarded("manual order", self._order)

    def _order(self) -> None:
        def done(spec: OrderSpec | None) -> None:
            if spec is not None:
                msg = self.commands.submit(spec)
                self.say(msg, "information" if msg.startswith("sent") else "error")

        self.push_screen(OrderEntryScreen(self.symbol, self.symbols, self.source.instruments), done)

    def action_cancel_all(self) -> None:
        self.guarded("cancel all", lambda: self.say(self.commands.cancel_all()))

    def action_cancel_order(self) -> None:
        order = self.query_one(OrdersPanel).selected()
        if order is None:
            self.say("no open order to cancel", "warning")
            return
        self.guarded("cancel order", lambda: self._cancel_order(order))

    def _cancel_order(self, order: Any) -> None:
        row = OrdersPanel._row(self.source, order, "OPEN")
        what = f"{row[1]} {row[3]} {row[4]} @ {row[2]} ({row[7]})"

        def done(yes: bool | None) -> None:
            if yes:
                msg = self.commands.cancel(order)
                self.say(msg, "information" if msg.startswith("cancel sent") else "error")
            else:
                self.say("order left open")

        self.push_screen(ConfirmScreen(f"Cancel the order {what}?"), done)

    def action_kill(self, on: bool) -> None:
        self.guarded(f"kill switch {'ON' if on else 'OFF'}", lambda: self._kill(on))

    def _kill(self, on: bool) -> None:
        question = ("Turn the kill switch ON? Trading halts (risk sets HALTED)." if on
                    else "Turn the kill switch OFF? Trading may resume.")

        def done(yes: bool | None) -> None:
            if yes:
                msg = self.commands.kill_switch(on)
                self.say(msg, "warning" if "sent" in msg else "error")
            else:
                self.say("kill switch unchanged")

        self.push_screen(ConfirmScreen(question), done)

    def action_reload(self) -> None:
        self.guarded("reload strategies", lambda: self.say(self.commands.reload_strategy()))

    def action_reload_config(self) -> None:
        def work() -> None:
            msg, ok = self.commands.reload_config()
            self.call_from_thread(self.say, msg, "information" if ok else "warning")

        self.guarded("reload config", lambda: (self.say("reloading the config ..."),
                                               self.run_worker(work, thread=True, group="config")))

    def program_action(self, action: str, name: str) -> None:
        self.guarded(f"{action} {name}", lambda: self._program(action, name))

    def _program(self, action: str, name: str) -> None:
        """start/stop/restart via supervisord in a thread: a stop waits for the program to exit."""
        self.say(f"{action} {name} ...")

        def work() -> None:
            msg = self.commands.program(action, name)
            self.call_from_thread(self.say, msg)
            self.source.invalidate()

        self.run_worker(work, thread=True, group="supervisor")


def history_dir(config: str | None, instance: str) -> Path | None:
    """Where risk writes this instance's P&L history (None when it is off)."""
    from procs.risk.config import RiskConfig

    hist = load_section(config, "risk", RiskConfig).history
    return Path(hist.dir) / instance if hist.enabled else None


def audit_trail(config: str | None, instance: str) -> AuditTrail | None:
    """The audit trail the ops API writes (``[monitor] audit_dir``); None when [monitor] is unreadable."""
    from procs.monitor.config import load_monitor_config

    try:
        return AuditTrail(audit_path(load_monitor_config(config).audit_dir, instance))
    except (ConfigError, ValueError):
        return None


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--instance", default=DEFAULT_INSTANCE)
    ap.add_argument("--config", default=None, help="deployment TOML (default: b25.toml in the repo root if present)")
    ap.add_argument("--web-session", action="store_true",
                    help="run for `b25 web`: every state-changing key asks for the ops token first")
    ap.add_argument("--refresh", type=float, default=None, help="override [tui] refresh_s")


def run(args: argparse.Namespace) -> int:
    from procs.core import deploy

    config = args.config
    if config is None and (ROOT / "b25.toml").exists():
        config = str(ROOT / "b25.toml")
    try:
        cfg = load_section(config, "tui", TuiConfig)
        shared = deploy.load(config)
        syms, book_depth = list(shared.symbols), shared.depth
        instruments = deploy.instruments(config)
    except (ConfigError, ValueError) as exc:
        print(f"tui: {exc}", file=sys.stderr)
        return 2
    sock = Path(cfg.supervisor_socket)
    sup = SupervisorClient(sock if sock.is_absolute() else ROOT / sock)
    source = ShmSource(args.instance, syms, instruments, book_depth, cfg.stale_after_s, sup,
                       cfg.supervisor_poll_s, cfg.trades)
    source.roster = StrategyRoster(config)
    source.history = HistoryView(history_dir(config, args.instance))  # type: ignore[attr-defined]
    commands = Commands(args.instance, book_depth, cfg.operator, sup, rings=shared.rings, config_path=config,
                        audit=audit_trail(config, args.instance))
    try:
        gate = TokenGate.from_config(config) if args.web_session else None
        B25App(source, commands, args.refresh or cfg.refresh_s, token_gate=gate).run()
    finally:
        commands.close()
        source.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="b25 tui", description=__doc__)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
