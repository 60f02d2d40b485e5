"""The account as the exchange margins it: wallet, margin balance, maintenance margin, margin
ratio, available balance, and per position leverage and liquidation price. Pure functions of
the ledger's integers, no I/O (docs/decisions/045-margin-model.md).

Cross margin, one-way mode, one margin asset, as Binance USD-M computes it:

* maintenance margin of a position = notional * rate - amount of the notional's bracket
  ("Maintenance Margin = Position Notional * Maintenance Margin Rate on the level of position
  notional - Maintenance Amount", https://www.binance.com/en/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93;
  the brackets come from the venue's adapter, procs/venue/binance/account.py for Binance);
* margin balance = wallet balance + unrealized P&L at the mark price;
* margin ratio = maintenance margin / margin balance: the exchange liquidates at 100 %;
* available balance = margin balance - initial margin of positions (notional / the symbol's
  leverage setting, 20x unless set) - initial margin of open orders;
* leverage of a position = its notional / margin balance (what the account's equity carries);
* liquidation price (cross, one-way) = (WB - TMM1 + UPNL1 + cum - side * qty * entry) /
  (qty * rate - side * qty), with TMM1 and UPNL1 the other positions' maintenance margin and
  unrealized P&L, rate and cum those of the bracket the notional *at the liquidation price*
  falls in (the FAQ above: recompute when that bracket differs).

Money is Decimal quote here (a handful of symbols, every publish interval, off the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from procs.venue.messages import MarginTier

ZERO = Decimal(0)
EXHAUSTED = Decimal(999)  # ratio and leverage once the margin balance is gone (<= 0) with positions open
DEFAULT_LEVERAGE = 20  # Binance sets 20x when the account chose none (FAQ 360033162192)


@dataclass(frozen=True, slots=True)
class Tier:
    """One notional bracket: (floor, cap] keeps ``rate`` * notional - ``amount``."""

    floor: Decimal
    cap: Decimal
    rate: Decimal
    amount: Decimal
    max_leverage: int

    @classmethod
    def from_venue(cls, t: MarginTier) -> Tier:
        return cls(Decimal(t.floor), Decimal(t.cap), Decimal(t.maint_rate), Decimal(t.maint_amount), t.max_leverage)


def tier_for(tiers: list[Tier], notional: Decimal) -> Tier:
    """The bracket a notional falls in (the last one beyond every cap)."""
    for t in tiers:
        if notional <= t.cap:
            return t
    return tiers[-1]


def maint_margin(tiers: list[Tier], notional: Decimal) -> Decimal:
    """Maintenance margin of a position of ``notional`` (>= 0) quote."""
    if notional <= 0:
        return ZERO
    t = tier_for(tiers, notional)
    return notional * t.rate - t.amount


@dataclass(slots=True)
class PositionInput:
    """One symbol's net position as the ledger holds it, in quote and base units."""

    symbol: str
    qty: Decimal  # signed base quantity
    entry: Decimal  # average entry price (0 when flat)
    mark: Decimal  # 0 when unknown
    unrealized: Decimal
    leverage_setting: int = DEFAULT_LEVERAGE
    tiers: list[Tier] = field(default_factory=list)  # empty: maintenance margin unknown


@dataclass(slots=True)
class PositionMargin:
    symbol: str
    notional: Decimal = ZERO
    maint_margin: Decimal | None = ZERO  # None: no brackets known for the symbol
    initial_margin: Decimal = ZERO
    leverage: Decimal = ZERO  # notional / margin balance
    liquidation_price: Decimal = ZERO  # 0: none (no position, or the account covers any price)
    distance_pct: Decimal = ZERO  # |mark - liquidation| / mark * 100 (0 without a liquidation price)


@dataclass(slots=True)
class Account:
    wallet: Decimal
    unrealized: Decimal
    margin_balance: Decimal
    maint_margin: Decimal | None  # None when a position's brackets are unknown
    margin_ratio: Decimal | None  # maint / margin balance (EXHAUSTED when none is left); None when unknown
    available: Decimal
    leverage: Decimal  # gross notional / margin balance
    positions: list[PositionMargin]


def liquidation_price(pos: PositionInput, wallet: Decimal, other_maint: Decimal, other_unrealized: Decimal) -> Decimal:
    """Cross-margin, one-way liquidation price of ``pos`` (0 when there is none)."""
    qty = abs(pos.qty)
    if qty == 0 or not pos.tiers:
        return ZERO
    side = 1 if pos.qty > 0 else -1
    tier = tier_for(pos.tiers, qty * pos.entry)
    lp = ZERO
    for _ in range(len(pos.tiers) + 1):  # settle on the bracket of the notional at the liquidation price
        denominator = qty * tier.rate - side * qty
        if denominator == 0:
            return ZERO
        lp = (wallet - other_maint + other_unrealized + tier.amount - side * qty * pos.entry) / denominator
        if lp <= 0:
            return ZERO
        at_lp = tier_for(pos.tiers, qty * lp)
        if at_lp == tier:
            break
        tier = at_lp
    return lp


def account(wallet: Decimal, positions: list[PositionInput], open_order_margin: Decimal = ZERO) -> Account:
    """Every figure of the account from the wallet balance and the positions at their marks."""
    rows = []
    unrealized = sum((p.unrealized for p in positions), ZERO)
    margin_balance = wallet + unrealized
    maint_total: Decimal | None = ZERO
    gross = ZERO
    initial = ZERO
    for p in positions:
        notional = abs(p.qty) * p.mark
        row = PositionMargin(p.symbol, notional)
        if notional:
            if p.tiers:
                row.maint_margin = maint_margin(p.tiers, notional)
            else:
                row.maint_margin = None
            row.initial_margin = notional / max(1, p.leverage_setting)
        if row.maint_margin is None:
            maint_total = None
        elif maint_total is not None:
            maint_total += row.maint_margin
        gross += notional
        initial += row.initial_margin
        rows.append(row)
    for p, row in zip(positions, rows, strict=True):
        if margin_balance > 0:
            row.leverage = row.notional / margin_balance
        if p.qty and p.mark and row.maint_margin is not None:
            others = [r for r in rows if r is not row]
            if all(r.maint_margin is not None for r in others):
                other_maint = sum((r.maint_margin or ZERO for r in others), ZERO)
                other_upnl = sum((q.unrealized for q in positions if q is not p), ZERO)
                row.liquidation_price = liquidation_price(p, wallet, other_maint, other_upnl)
                if row.liquidation_price:
                    row.distance_pct = abs(p.mark - row.liquidation_price) / p.mark * 100
    ratio = None
    if maint_total is not None:
        ratio = maint_total / margin_balance if margin_balance > 0 else (EXHAUSTED if maint_total else ZERO)
    leverage = gross / margin_balance if margin_balance > 0 else (EXHAUSTED if gross else ZERO)
    return Account(wallet, unrealized, margin_balance, maint_total, ratio,
                   margin_balance - initial - open_order_margin, leverage, rows)
