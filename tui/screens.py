"""Modal screens: confirmation, help, and the manual order entry form."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from procs.core.instruments import Instrument
from procs.core.manual_orders import FieldError, OrderSpec, parse_order

HELP = """\
[b]b25 keys[/b]
  1 2 3 4   market / portfolio / strategy / system tabs
  s  S      next / previous symbol
  o         manual order entry (goes through execution's risk checks)
  c         cancel all open orders (CancelAll to execution)
  d         cancel the selected open order (up/down select it in the orders panel)
  k  K      kill switch ON / OFF (asks first; SetKillSwitch to risk)
  R         reload strategies (Reload to strategy)
  L         reload the config file into every process that can take it; names what needs a restart
  t x r     start / stop / restart the selected process (system tab)
  ?         this help      q  quit (the system keeps running)
"""


class ConfirmScreen(ModalScreen[bool]):
    """Asks before anything drastic; y / enter = yes, n / escape = no."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TokenScreen(ModalScreen[str | None]):
    """A web session asks for the ops token before a state-changing command; escape = cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"ops token needed for: {self.what}", id="token-title")
            yield Input(password=True, placeholder="the token in run/monitor.token", id="token")
            yield Static("enter = send, escape = cancel", id="token-hint")

    def on_mount(self) -> None:
        self.query_one("#token", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(HELP, id="help")

    def action_close(self) -> None:
        self.dismiss(None)


FIELDS = ("symbol", "side", "type", "price", "qty")


class OrderEntryScreen(ModalScreen[OrderSpec | None]):
    """The manual order form: every field validated; a refusal names the field and says why."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, symbol: str, symbols: list[str], instruments: dict[str, Instrument]) -> None:
        super().__init__()
        self.symbol = symbol
        self.symbols = symbols
        self.instruments = instruments

    def compose(self) -> ComposeResult:
        defaults = {"symbol": self.symbol, "side": "buy", "type": "limit", "price": "", "qty": ""}
        hints = {"symbol": ", ".join(self.symbols), "side": "buy | sell",
                 "type": "limit | market | stop | take_profit", "price": "limit price, or a stop's trigger",
                 "qty": "quantity"}
        with Vertical(id="dialog"):
            yield Label("manual order (execution applies the risk checks)", id="form-title")
            for f in FIELDS:
                with Horizontal(classes="field"):
                    yield Label(f, classes="field-label")
                    yield Input(defaults[f], placeholder=hints[f], id=f)
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Submit", variant="success", id="submit")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#price", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def submit(self) -> None:
        v = {f: self.query_one(f"#{f}", Input).value for f in FIELDS}
        try:
            spec = parse_order(v["symbol"], v["side"], v["type"], v["price"], v["qty"], self.symbols, self.instruments)
        except FieldError as exc:
            self.query_one("#error", Static).update(f"[b red]{exc.field}[/]: {exc.reason}")
            self.query_one(f"#{exc.field}", Input).focus()
            return
        self.dismiss(spec)
