"""What the bridge accepts from NATS (both off by default, both need NATS authentication):

* **Order intents** of remote strategies on ``b25.<instance>.intent.<strategy>``: checked for
  form here (an allowed strategy, a configured symbol, the same tick/lot scales as ours, an
  ``intent_id`` that grows), then written to the gating ring ``orders.remote``, which execution
  reads like ``orders.strategy``: the same pre-trade checks, journal and client order ids. The
  answer (``IntentAck``) goes to the message's reply subject; what execution then does comes
  back on ``b25.<instance>.exec.<strategy>``.
* **Control commands** on ``b25.<instance>.cmd.<command>``: the ops API's (kill_switch,
  trading_state, cancel_all, strategy_reload), sent to the same process as the ops API sends
  them, with the operator recorded as ``nats:<user>/<operator>``.

A remote strategy silent (no intent, no heartbeat) for ``remote_dead_s`` is declared dead: a
CANCEL_ALL for it goes to ``orders.remote``. Every allowed strategy counts as heard when the
bridge starts, so a bridge restart also cancels, after ``remote_dead_s``, the orders of the
strategies that do not come back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

from procs.core import control as C
from procs.core import log
from procs.core import messages as M
from procs.strategy.config import strategy_number

from . import schema as S
from .config import BridgeConfig
from .counters import Counter

_SIDE = {"BUY": M.BUY, "SELL": M.SELL}
_TYPE = {"LIMIT": M.LIMIT, "MARKET": M.MARKET, "STOP_MARKET": M.STOP_MARKET,
         "TAKE_PROFIT_MARKET": M.TAKE_PROFIT_MARKET, "TRAILING_STOP_MARKET": M.TRAILING_STOP_MARKET}
_TIF = {"GTC": M.GTC, "IOC": M.IOC, "FOK": M.FOK, "POST_ONLY": M.POST_ONLY}


SEND_NOW = partial(C.send_command, timeout=0)  # a full control queue refuses at once: the loop never waits
_AT = re.compile(r" - at `\$\.([^`]*)`$")
_MISSING = re.compile(r"field `([^`]*)`")


class Refused(Exception):
    def __init__(self, error: str, field: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.field = field


def _check_prices(it: S.Submit) -> None:
    """A submit's price, trigger and callback agree with its order type (a conditional order's:
    ``M.conditional_terms_fault``, as the strategy API and the pre-trade check); Refused names the
    field."""
    t = it.order_type
    if t == "LIMIT" and it.price <= 0:
        raise Refused(f"a LIMIT order needs price > 0 ticks: price={it.price}", "price")
    if t in ("LIMIT", "MARKET"):
        if t == "MARKET" and it.price != 0:
            raise Refused(f"a MARKET order has price 0: price={it.price}", "price")
        if it.trigger_price or it.callback_bps or it.working_type != "CONTRACT_PRICE":
            field = "trigger_price" if it.trigger_price else "callback_bps" if it.callback_bps else "working_type"
            raise Refused(f"{field} is for the conditional order types, not {t}", field)
        return
    fault = M.conditional_terms_fault(_TYPE[t], it.price, it.trigger_price, it.callback_bps)
    if fault:
        raise Refused({"price": f"a {t} order has price 0: price={it.price}",
                       "trigger_price": f"a {t} order needs trigger_price > 0 ticks: trigger_price={it.trigger_price}",
                       "callback_bps": f"callback_bps must be 10..1000 in steps of 10: callback_bps={it.callback_bps}",
                       }[fault], fault)
    if t != "TRAILING_STOP_MARKET" and it.callback_bps:  # the bridge's own: the local API passes it on
        raise Refused(f"callback_bps is for TRAILING_STOP_MARKET, not {t}", "callback_bps")
    if it.tif != "GTC":
        raise Refused(f"a conditional order is GTC: tif={it.tif}", "tif")


def _decode(codec: S.Codec, data: bytes, typ: object) -> Any:
    """``data`` as ``typ``; Refused names the field and the reason."""
    try:
        return codec.decode(data, typ)
    except msgspec.ValidationError as exc:
        text = str(exc)  # "Expected ... - at `$.side`" or "Object missing required field `qty`"
        m = _AT.search(text) or _MISSING.search(text)
        raise Refused(text, m.group(1) if m else "") from None
    except msgspec.DecodeError as exc:
        raise Refused(f"not a msgpack or JSON message: {exc}") from None


class Inbound:
    def __init__(self, cfg: BridgeConfig, instance: str, symbols: list[str], scales: list[tuple[int, int]],
                 producer: Any, counters: Any, send: Callable[[str, str, C.Command], None] = SEND_NOW,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.instance = instance
        self.sym_id = {s: i for i, s in enumerate(symbols)}
        self.symbols = list(symbols)
        self.scales = list(scales)
        self.producer = producer  # orders.remote (None when intents are off)
        self.c = counters
        self.send = send
        self.now = now
        self.codec = S.Codec(cfg.encoding)
        self.user = cfg.user or ("nkey" if cfg.nkey_seed_file else "anonymous")
        self.number = {s: strategy_number(s) for s in cfg.remote_strategies}
        t = now()
        self.last_heard = {s: t for s in cfg.remote_strategies}
        self.last_intent = {s: 0 for s in cfg.remote_strategies}
        self.dead: set[str] = set()
        self._intent_prefix = S.subject(instance, "intent", "")
        self._cmd_prefix = S.subject(instance, "cmd", "")

    async def subscribe(self, nc: Any) -> None:
        """Subscribe on a new connection (nats-py keeps them across reconnects)."""
        if self.cfg.intents:
            await nc.subscribe(self._intent_prefix + "*", cb=self._on_intent_msg)
        if self.cfg.commands:
            await nc.subscribe(self._cmd_prefix + "*", cb=self._on_command_msg)

    async def _on_intent_msg(self, msg: Any) -> None:
        ack = self.on_intent(msg.subject, msg.data)
        if msg.reply and ack is not None:
            await msg.respond(self.codec.encode(ack) if msg.data[:1] != b"{" else msgspec.json.encode(ack))

    async def _on_command_msg(self, msg: Any) -> None:
        reply = self.on_command(msg.subject, msg.data)
        if msg.reply:
            await msg.respond(self.codec.encode(reply) if msg.data[:1] != b"{" else msgspec.json.encode(reply))

    # -- intents ----------------------------------------------------------------------------------
    def on_intent(self, subject: str, data: bytes) -> S.IntentAck | None:
        """One message on ``<p>.intent.<strategy>``: the answer (None for a heartbeat)."""
        strategy = subject[len(self._intent_prefix):]
        intent_id = 0
        try:
            if strategy not in self.number:
                raise Refused(f"strategy {strategy!r} may not send intents ([bridge] remote_strategies: "
                              f"{', '.join(self.cfg.remote_strategies)})", "subject")
            it = _decode(self.codec, data, S.AnyIntent)
            self.heard(strategy)
            if isinstance(it, S.Heartbeat):
                return None
            intent_id = it.intent_id
            if intent_id <= self.last_intent[strategy]:
                self.c.inc(Counter.INTENTS_DUPLICATE)
                return S.IntentAck(intent_id=intent_id, accepted=False, duplicate=True,
                                   error=f"intent_id {intent_id} is not above the last one taken "
                                         f"({self.last_intent[strategy]}): already done or out of order")
            row = self.intent_row(strategy, it)
            if self.producer is None or not self.producer.try_publish(*row):
                raise Refused("orders.remote is full: execution is not reading (is it running?)")
        except Refused as exc:
            self.c.inc(Counter.INTENTS_REFUSED)
            log.once(f"intent_refused:{strategy}:{exc.field}", "warn", "intent_refused", strategy=strategy,
                     error=exc.error, field=exc.field)
            return S.IntentAck(intent_id=intent_id, accepted=False, error=exc.error, field=exc.field)
        self.last_intent[strategy] = intent_id
        self.c.inc(Counter.INTENTS)
        return S.IntentAck(intent_id=intent_id, accepted=True)

    def intent_row(self, strategy: str, it: S.Submit | S.Modify | S.Cancel | S.CancelAll) -> tuple:
        """The OrderIntent record (a tuple in dtype order) for ``it``; Refused names a bad field."""
        sid = -1
        if it.symbol or not isinstance(it, S.CancelAll):
            sid = self.sym_id.get(it.symbol, -1)
            if sid < 0:
                raise Refused(f"unknown symbol {it.symbol!r}: configured {', '.join(self.symbols)}", "symbol")
        num, now = self.number[strategy], time.monotonic_ns()
        if isinstance(it, S.Submit):
            self._check_scales(it, sid)
            if it.qty <= 0:
                raise Refused(f"qty must be > 0 lots: qty={it.qty}", "qty")
            _check_prices(it)
            flags = M.INTENT_ON_MARK if it.working_type == "MARK_PRICE" else 0
            return (it.intent_id, M.SUBMIT_ORDER, M.SOURCE_REMOTE, num, sid, _SIDE[it.side], _TYPE[it.order_type],
                    _TIF[it.tif], it.price, it.qty, int(it.reduce_only), it.client_tag, 0, 0, now, flags,
                    it.trigger_price, it.callback_bps)
        if isinstance(it, S.Modify):
            self._check_scales(it, sid)
            if it.price < 0 or it.qty < 0 or not (it.price or it.qty):
                field = "price" if it.price < 0 else "qty"
                raise Refused(f"an amend needs a price and/or qty > 0 (0 keeps it): price={it.price} qty={it.qty}",
                              field)
            return (it.intent_id, M.MODIFY_ORDER, M.SOURCE_REMOTE, num, sid, 0, M.LIMIT, 0, it.price, it.qty, 0,
                    it.client_tag, 0, 0, now, 0, 0, 0)
        kind = M.CANCEL_ORDER if isinstance(it, S.Cancel) else M.CANCEL_ALL
        tag = it.client_tag if isinstance(it, S.Cancel) else 0
        return (it.intent_id, kind, M.SOURCE_REMOTE, num, sid, 0, 0, 0, 0, 0, 0, tag, 0, 0, now, 0, 0, 0)

    def _check_scales(self, it: S.Submit | S.Modify, sid: int) -> None:
        ps, qs = self.scales[sid]
        if (it.price_scale, it.qty_scale) != (ps, qs):
            raise Refused(f"scales differ from the bridge's for {it.symbol}: price_scale={it.price_scale} "
                          f"qty_scale={it.qty_scale}, expected price_scale={ps} qty_scale={qs}", "price_scale")

    def heard(self, strategy: str) -> None:
        self.last_heard[strategy] = self.now()
        if strategy in self.dead:
            self.dead.discard(strategy)
            log.info("remote_strategy_back", strategy=strategy)

    def check_dead(self) -> list[str]:
        """Declare dead every remote strategy silent for ``remote_dead_s``: a CANCEL_ALL of its
        orders goes to orders.remote (tried again next time while the ring is full)."""
        if self.producer is None:
            return []
        now = self.now()
        out = []
        for s, t in self.last_heard.items():
            if s in self.dead or now - t < self.cfg.remote_dead_s:
                continue
            row = (0, M.CANCEL_ALL, M.SOURCE_REMOTE, self.number[s], -1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                   time.monotonic_ns(), 0, 0, 0)
            if not self.producer.try_publish(*row):
                log.once("remote_dead_ring_full", "warn", "remote_dead_cancel_waiting", strategy=s)
                continue
            self.dead.add(s)
            self.c.inc(Counter.REMOTE_DEAD)
            log.warn("remote_strategy_dead", strategy=s, silent_s=round(now - t, 3), action="cancel_all its orders")
            out.append(s)
        self.c.set(Counter.REMOTE_ALIVE, len(self.last_heard) - len(self.dead))
        return out

    # -- commands ---------------------------------------------------------------------------------
    def on_command(self, subject: str, data: bytes) -> S.CommandReply:
        name = subject[len(self._cmd_prefix):]
        try:
            if name not in S.COMMANDS:
                raise Refused(f"unknown command {name!r}: {', '.join(S.COMMANDS)}", "subject")
            cmd = _decode(self.codec, data, S.AnyCommand)
            if S.type_name(type(cmd)) != name:
                raise Refused(f"message type {S.type_name(type(cmd))!r} sent on the subject of {name!r}", "type")
            if not cmd.operator.strip():
                raise Refused("operator must name who asks (it is recorded)", "operator")
            proc, control = self.control(cmd, f"nats:{self.user}/{cmd.operator}")
            try:
                self.send(self.instance, proc, control)
            except FileNotFoundError as exc:
                raise Refused(str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - posix_ipc.BusyError: the queue is full
                raise Refused(f"control queue of {proc} not accepting: {exc!r}") from None
        except Refused as exc:
            self.c.inc(Counter.COMMANDS_REFUSED)
            log.warn("command_refused", command=name, error=exc.error, field=exc.field)
            return S.CommandReply(ok=False, error=exc.error, field=exc.field)
        self.c.inc(Counter.COMMANDS)
        log.info("command_sent", to=proc, command=type(control).__name__, operator=control.operator,
                 args=msgspec.to_builtins(control), via="nats")
        return S.CommandReply(ok=True, sent=type(control).__name__, to=proc)

    def control(self, cmd: S.Command, operator: str) -> tuple[str, C.Command]:
        """The process and the control command the ops API would send for ``cmd``."""
        if isinstance(cmd, S.KillSwitch):
            return "risk", C.SetKillSwitch(on=cmd.on, operator=operator)
        if isinstance(cmd, S.TradingState):
            return "risk", C.SetTradingState(state=cmd.state, operator=operator)
        if isinstance(cmd, S.CancelAllOrders):
            if cmd.symbol and cmd.symbol not in self.sym_id:
                raise Refused(f"unknown symbol {cmd.symbol!r}; configured: {', '.join(self.symbols)}", "symbol")
            return "execution", C.CancelAll(symbol=cmd.symbol, operator=operator)
        assert isinstance(cmd, S.StrategyReload)
        return "strategy", C.Reload(target=cmd.target, operator=operator)
