"""Manual orders: text fields validated into an exact order (ticks/lots), and the one writer of
``orders.manual`` that the TUI and the ops API share.

Every refusal names the field and says why (``FieldError.field``, ``.reason``). The checks are
the instrument's own filters (tick, step, min/max); the risk limits are execution's pre-trade
check, which every intent on ``orders.manual`` goes through like a strategy's.

``orders.manual`` is a single-producer ring with two possible writers (a TUI and the monitor):
``ManualOrders`` takes an exclusive ``flock`` on the ring's segment for each publication and
resumes at the ring's write cursor under it, so the writers take turns and never overwrite each
other's records. Manual intents carry ``strategy_id`` ``STRATEGY_ID_MANUAL`` (-1, what risk's
ledger and the reports call "manual") and ``client_tag`` = their intent id.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from procs.core import messages as M
from procs.core.instruments import Instrument
from procs.core.registry import ORDERS_MANUAL, RingCapacities, build_registry
from shm.ring import Producer
from shm.segment import SHM_DIR, shm_name


class FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class OrderSpec:
    symbol: str
    symbol_id: int
    side: int
    order_type: int
    tif: int
    price: int  # ticks, 0 for MARKET
    qty: int  # lots
    price_text: str  # a limit's price, a stop's or take-profit's trigger
    qty_text: str
    trigger_price: int = 0  # ticks: a stop or take-profit's trigger (the form's price field)
    reduce_only: bool = False  # always True for a stop or take-profit: it protects a position

    def describe(self) -> str:
        side = "BUY" if self.side == M.BUY else "SELL"
        extra = " reduce-only" if self.reduce_only else ""
        if self.order_type == M.MARKET:
            return f"{side} {self.qty_text} {self.symbol} MARKET{extra}"
        if self.order_type in M.CONDITIONAL_TYPES:
            name = M.ORDER_TYPE_NAMES[self.order_type].upper()
            return f"{side} {self.qty_text} {self.symbol} {name} at {self.price_text} (reduce-only)"
        tif = "" if self.tif == M.GTC else f" {M.TIF_NAMES[self.tif].upper()}"
        return f"{side} {self.qty_text} {self.symbol} @ {self.price_text} LIMIT{tif}{extra}"


_SIDES = {"buy": M.BUY, "b": M.BUY, "sell": M.SELL, "s": M.SELL}
_TYPES = {"limit": M.LIMIT, "l": M.LIMIT, "market": M.MARKET, "m": M.MARKET, "stop": M.STOP_MARKET,
          "stop_market": M.STOP_MARKET, "take_profit": M.TAKE_PROFIT_MARKET, "tp": M.TAKE_PROFIT_MARKET}
_TIFS = {name: tif for tif, name in M.TIF_NAMES.items()}


def _decimal(field: str, text: str) -> Decimal:
    t = text.strip()
    if not t:
        raise FieldError(field, "is required")
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise FieldError(field, f"not a number: {t!r}") from None
    if not d.is_finite() or "e" in t.lower():
        raise FieldError(field, f"not a plain decimal: {t!r}")
    if d <= 0:
        raise FieldError(field, f"must be > 0: {t}")
    return d


def _multiple(field: str, d: Decimal, step: str, what: str) -> None:
    if step not in ("", "0") and d % Decimal(step) != 0:
        raise FieldError(field, f"must be a multiple of the {what} {step}: {d}")


def parse_order(symbol: str, side: str, order_type: str, price: str, qty: str, symbols: list[str],
                instruments: dict[str, Instrument], tif: str = "gtc", reduce_only: bool = False) -> OrderSpec:
    """The fields as an OrderSpec; raises FieldError naming the first bad field."""
    sym = symbol.strip().upper()
    if sym not in symbols:
        raise FieldError("symbol", f"unknown symbol {sym or '(empty)'!r}; configured: {', '.join(symbols)}")
    inst = instruments.get(sym)
    if inst is None:
        raise FieldError("symbol", f"no instrument filters for {sym} (the venue's instrument list not loaded)")
    s = _SIDES.get(side.strip().lower())
    if s is None:
        raise FieldError("side", f"must be buy or sell: {side!r}")
    t = _TYPES.get(order_type.strip().lower())
    if t is None:
        raise FieldError("type", f"must be limit, market, stop or take_profit: {order_type!r}")
    time_in_force = _TIFS.get(tif.strip().lower())
    if time_in_force is None:
        raise FieldError("tif", f"must be one of {', '.join(_TIFS)}: {tif!r}")
    if t != M.LIMIT and time_in_force != M.GTC:
        raise FieldError("tif", f"a {'market' if t == M.MARKET else 'stop or take_profit'} order takes no time in "
                                f"force: {tif!r}")
    ticks = 0
    ptext = ""
    if t != M.MARKET:  # a limit price, or a stop's / take-profit's trigger price
        p = _decimal("price", price)
        _multiple("price", p, inst.tick_size, "tick size")
        if inst.min_price not in ("", "0") and p < Decimal(inst.min_price):
            raise FieldError("price", f"below the minimum price {inst.min_price}: {p}")
        if inst.max_price not in ("", "0") and p > Decimal(inst.max_price):
            raise FieldError("price", f"above the maximum price {inst.max_price}: {p}")
        try:
            ticks = inst.price_to_ticks(format(p, "f"))
        except ValueError as exc:
            raise FieldError("price", str(exc)) from None
        ptext = format(p.normalize(), "f")
    elif price.strip() not in ("", "0"):
        raise FieldError("price", "must be empty for a market order")
    q = _decimal("qty", qty)
    _multiple("qty", q, inst.step_size, "step size")
    lo, hi = (inst.min_qty, inst.max_qty) if t == M.LIMIT else (inst.market_min_qty, inst.market_max_qty)  # a stop trades at market
    if lo not in ("", "0") and q < Decimal(lo):
        raise FieldError("qty", f"below the minimum quantity {lo}: {q}")
    if hi not in ("", "0") and q > Decimal(hi):
        raise FieldError("qty", f"above the maximum quantity {hi}: {q}")
    try:
        lots = inst.qty_to_lots(format(q, "f"))
    except ValueError as exc:
        raise FieldError("qty", str(exc)) from None
    qtext = format(q.normalize(), "f")
    if t in M.CONDITIONAL_TYPES:  # the price field is the trigger; the order itself has no price
        return OrderSpec(sym, symbols.index(sym), s, t, M.GTC, 0, lots, ptext, qtext, trigger_price=ticks,
                         reduce_only=True)
    return OrderSpec(sym, symbols.index(sym), s, t, time_in_force, ticks, lots, ptext, qtext,
                     reduce_only=bool(reduce_only))


class ManualOrders:
    """The writer of ``orders.manual`` for one process; any number of processes may hold one."""

    def __init__(self, instance: str, depth: int = M.DEFAULT_DEPTH, rings: RingCapacities | None = None) -> None:
        self.instance = instance
        self.depth = depth
        self.rings = rings  # [deploy.rings]: the ring is created with the deployment's capacity
        self._producer: Producer | None = None
        self._lock_fd = -1

    def _open(self) -> Producer:
        # created on first use and kept: execution (the named consumer) never loses its place
        if self._producer is None:
            self._producer = build_registry(self.depth, self.rings).producer(self.instance, ORDERS_MANUAL)
            path = SHM_DIR / shm_name(self.instance, ORDERS_MANUAL).lstrip("/")
            self._lock_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return self._producer

    def _publish(self, kind: int, symbol_id: int, side: int, order_type: int, tif: int, price: int, qty: int,
                 reduce_only: bool, strategy_id: int, client_tag: int, trigger_price: int = 0) -> int:
        """The intent id of the published intent, or 0 when the ring is full (execution not reading)."""
        p = self._open()
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            p.resume()  # another writer may have published since this one last did
            intent_id = p.next_sequence + 1
            tag = client_tag or intent_id
            ok = p.try_publish(intent_id, kind, M.SOURCE_MANUAL, strategy_id, symbol_id, side, order_type, tif, price,
                               qty, int(reduce_only), tag, 0, 0, time.monotonic_ns(), 0, trigger_price, 0)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        return intent_id if ok else 0

    def submit(self, o: OrderSpec) -> int:
        """Publish one SUBMIT_ORDER intent; its intent id (also its client tag), 0 when the ring is full."""
        return self._publish(M.SUBMIT_ORDER, o.symbol_id, o.side, o.order_type, o.tif, o.price, o.qty,
                             o.reduce_only, M.STRATEGY_ID_MANUAL, 0, o.trigger_price)

    def cancel(self, strategy_id: int, client_tag: int, symbol_id: int) -> int:
        """Publish one CANCEL_ORDER intent for the order execution knows by (strategy_id,
        client_tag), whoever placed it; its intent id, 0 when the ring is full."""
        if not client_tag:
            raise ValueError("an order without a client tag cannot be cancelled singly (cancel all instead)")
        return self._publish(M.CANCEL_ORDER, symbol_id, 0, 0, 0, 0, 0, False, strategy_id, client_tag)

    def close(self, unlink: bool = False) -> None:
        """Unmap orders.manual; it stays for execution and the next writer unless ``unlink``."""
        if self._producer is not None:
            self._producer.close(unlink=unlink)
            self._producer = None
            os.close(self._lock_fd)
            self._lock_fd = -1
