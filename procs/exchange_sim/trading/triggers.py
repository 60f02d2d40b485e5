"""Conditional orders: STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET.

Two ways in, as on the exchange:

* **Classic** (``POST /fapi/v1/order`` with a conditional type): an order with an ``orderId`` that
  shows in ``openOrders`` until it triggers. On the trigger the exchange cancels this initial order
  with expiry reason 8 and places the order it stands for [D:Event-Order-Update, "Expiry Reason
  8"]: ORDER_TRADE_UPDATE ``x=EXPIRED er=8`` for it, then a new order (a new ``orderId``, the same
  client order id, ``o`` MARKET or LIMIT, ``ot`` the conditional type) that trades as usual. Live
  Binance serves these types on the algo service only and answers -4120 here (decision 031); the
  simulator still takes them unless ``[sim_trading] conditional_on_order_endpoint = false``.
* **Algo service** (``POST /fapi/v1/algoOrder``, ``algoType=CONDITIONAL``) [D:New-Algo-Order]: an
  algo order with an ``algoId``, reported as ALGO_UPDATE ``NEW``; on the trigger ``TRIGGERING``, the
  actual order goes to the matching engine (``TRIGGERED`` with its order id ``ai``, or ``REJECTED``
  with ``rm``), and ``FINISHED`` once that order is filled, canceled or expired
  [D:Event-Algo-Order-Update].

Trigger rules [D:New-Order]: STOP / STOP_MARKET trigger when the working price (``MARK_PRICE``:
the mark; ``CONTRACT_PRICE``, the default: the last trade) is >= the stop price for a BUY,
<= for a SELL; TAKE_PROFIT / TAKE_PROFIT_MARKET the other way round. A trailing stop tracks the
lowest (BUY) / highest (SELL) price since it was placed; it is active once that extreme has
reached ``activationPrice`` (default: the price at placement) and triggers when the price comes
back by ``callbackRate`` percent from the extreme. ``priceProtect`` holds a trigger while mark and
last price differ by more than the symbol's ``triggerProtect``. A conditional order that would
trigger at once is refused with -2021.
"""

from __future__ import annotations

from decimal import Decimal

STOPS = ("STOP", "STOP_MARKET")
TAKE_PROFITS = ("TAKE_PROFIT", "TAKE_PROFIT_MARKET")
TRAILING = "TRAILING_STOP_MARKET"
CONDITIONAL_TYPES = frozenset(STOPS + TAKE_PROFITS + (TRAILING,))
MARKET_TRIGGERED = frozenset(("STOP_MARKET", "TAKE_PROFIT_MARKET", TRAILING))


class TriggerSpec:
    """What a conditional order asks for, validated (ticks, lots, enums)."""

    __slots__ = ("type", "is_buy", "tif", "qty_lots", "price_ticks", "stop_ticks", "working_type",
                 "price_protect", "close_position", "reduce_only", "position_side", "activation_ticks",
                 "callback_rate", "callback_tenths")

    def __init__(self, *, type: str, is_buy: bool, tif: str, qty_lots: int, price_ticks: int, stop_ticks: int,
                 working_type: str, price_protect: bool, close_position: bool, reduce_only: bool,
                 position_side: str, activation_ticks: int = 0, callback_rate: str = "") -> None:
        self.type = type
        self.is_buy = is_buy
        self.tif = tif
        self.qty_lots = qty_lots  # 0 with closePosition: the position's size at the trigger
        self.price_ticks = price_ticks  # STOP / TAKE_PROFIT only
        self.stop_ticks = stop_ticks
        self.working_type = working_type
        self.price_protect = price_protect
        self.close_position = close_position
        self.reduce_only = reduce_only
        self.position_side = position_side
        self.activation_ticks = activation_ticks
        self.callback_rate = callback_rate
        # callbackRate is a percent with one decimal (0.1 .. 10): kept in tenths for exact checks
        self.callback_tenths = int(Decimal(callback_rate) * 10) if callback_rate else 0

    @property
    def actual_type(self) -> str:
        """The order type placed at the trigger."""
        return "MARKET" if self.type in MARKET_TRIGGERED else "LIMIT"


class Trail:
    """A trailing stop's extreme price since placement and whether it has activated."""

    __slots__ = ("extreme", "activated")

    def __init__(self) -> None:
        self.extreme = 0
        self.activated = False


def start_trail(spec: TriggerSpec, trail: Trail, price: int | None) -> None:
    """Seed a trailing stop with the working price at placement."""
    if spec.type != TRAILING or price is None:
        return
    trail.extreme = price
    if not spec.activation_ticks:
        trail.activated = True
    else:
        trail.activated = price <= spec.activation_ticks if spec.is_buy else price >= spec.activation_ticks


def would_trigger_now(spec: TriggerSpec, price: int | None) -> bool:
    """True when the order would trigger at placement (the exchange refuses it with -2021)."""
    if price is None:
        return False
    if spec.type == TRAILING:
        # BUY: activationPrice must be below the latest price; SELL: above [D:New-Order]
        if not spec.activation_ticks:
            return False
        return spec.activation_ticks >= price if spec.is_buy else spec.activation_ticks <= price
    return _crossed(spec, price)


def _crossed(spec: TriggerSpec, price: int) -> bool:
    if spec.type in STOPS:
        return price >= spec.stop_ticks if spec.is_buy else price <= spec.stop_ticks
    return price <= spec.stop_ticks if spec.is_buy else price >= spec.stop_ticks


def hit(spec: TriggerSpec, trail: Trail, price: int) -> bool:
    """Feed one working price; True when the order triggers now."""
    if spec.type != TRAILING:
        return _crossed(spec, price)
    if not trail.extreme:
        trail.extreme = price
    if spec.is_buy:
        trail.extreme = min(trail.extreme, price)
        if not trail.activated and (not spec.activation_ticks or trail.extreme <= spec.activation_ticks):
            trail.activated = True
        # price >= lowest * (1 + rate), in exact integers (rate in tenths of a percent)
        return trail.activated and price * 1000 >= trail.extreme * (1000 + spec.callback_tenths)
    trail.extreme = max(trail.extreme, price)
    if not trail.activated and (not spec.activation_ticks or trail.extreme >= spec.activation_ticks):
        trail.activated = True
    return trail.activated and price * 1000 <= trail.extreme * (1000 - spec.callback_tenths)


def protected(mark: int | None, last: int | None, trigger_protect: Decimal) -> bool:
    """priceProtect: True (hold the trigger) while |mark - last| / mark exceeds triggerProtect."""
    if not mark or last is None or not trigger_protect:
        return False
    return Decimal(abs(mark - last)) / Decimal(mark) > trigger_protect


class AlgoOrder:
    """One algo-service conditional order (``POST /fapi/v1/algoOrder``)."""

    __slots__ = ("algo_id", "client_algo_id", "account", "symbol", "spec", "trail", "status", "create_ms",
                 "update_ms", "trigger_ms", "actual", "reject_reason", "counted_closed")

    def __init__(self, algo_id: int, client_algo_id: str, account: str, symbol: str, spec: TriggerSpec,
                 now_ms: int) -> None:
        self.algo_id = algo_id
        self.client_algo_id = client_algo_id
        self.account = account
        self.symbol = symbol
        self.spec = spec
        self.trail = Trail()
        self.status = "NEW"
        self.create_ms = now_ms
        self.update_ms = now_ms
        self.trigger_ms = 0
        self.actual = None  # the SimOrder placed at the trigger
        self.reject_reason = ""
        self.counted_closed = False  # among the venue's closed_algos (procs/exchange_sim/trading/venue.py)

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"
