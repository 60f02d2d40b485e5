"""Account, balance and positionRisk responses (v2 and v3 shapes) from the venue's accounts.

One row per position side: ``BOTH`` in one-way mode, ``LONG`` and ``SHORT`` in hedge mode
[D:Account-Information-V2/V3, Position-Information-V2/V3]. Maintenance margin follows the
leverage-bracket table of ``procs.exchange_sim.trading.settings``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from procs.exchange_sim.trading.accounts import ZERO, Account, Position, fmt8, px, qty
from procs.exchange_sim.trading.formats import fixed
from procs.exchange_sim.trading.settings import maint_margin, max_notional
from procs.exchange_sim.trading.venue import Venue


class _Row:
    """One (symbol, position side) with its margin figures."""

    __slots__ = ("sym", "inst", "side", "pos", "orders", "mark", "upnl", "pos_im", "ord_im", "maint")

    def __init__(self, sym: str, inst: Any, side: str, pos: Position | None, orders: list, mark: int | None) -> None:
        self.sym, self.inst, self.side, self.pos, self.orders, self.mark = sym, inst, side, pos, orders, mark
        self.upnl = self.pos_im = self.ord_im = self.maint = ZERO

    @property
    def amt(self) -> int:
        return self.pos.amt if self.pos is not None else 0

    def notional(self) -> Decimal:
        if not self.amt or self.mark is None:
            return ZERO
        return qty(self.inst, self.amt) * px(self.inst, self.mark)


def _sides(acct: Account) -> tuple[str, ...]:
    return ("LONG", "SHORT") if acct.dual_side else ("BOTH",)


def _totals(venue: Venue, acct: Account) -> dict[str, Any]:
    """Per-asset and per-position margin figures, computed once per request."""
    upnl = pos_im = ord_im = maint = ZERO
    rows: list[_Row] = []
    for sym, inst in venue.market.instruments.items():
        orders = venue.open_orders(acct, sym) if sym in venue.engines or sym in venue.pending else []
        lev = acct.leverage(sym)
        active = any(p.amt for p in acct.sides(sym)) or orders
        mark = venue.mark(sym) if active else None
        for side in _sides(acct):
            row = _Row(sym, inst, side, acct.positions.get((sym, side)), [o for o in orders if o.position_side == side],
                       mark)
            if row.amt and mark is not None:
                row.upnl = acct.unrealized(inst, mark, side)
                row.pos_im = abs(row.notional()) / lev
                row.maint = maint_margin(abs(row.notional()))
            if row.orders:
                row.ord_im = acct.order_margin(inst, row.orders, mark)
            upnl += row.upnl
            pos_im += row.pos_im
            ord_im += row.ord_im
            maint += row.maint
            rows.append(row)
    wallet = sum(acct.wallet.values(), ZERO)
    margin_balance = wallet + upnl
    avail = margin_balance - pos_im - ord_im
    return {"rows": rows, "upnl": upnl, "pos_im": pos_im, "ord_im": ord_im, "maint": maint,
            "wallet": wallet, "margin_balance": margin_balance, "avail": avail}


def _assets(acct: Account, t: dict[str, Any], now: int) -> list[dict[str, Any]]:
    out = []
    for asset, wb in acct.wallet.items():
        # All positions are USD-M and margined in the first (quote) asset of the account.
        main = asset == next(iter(acct.wallet))
        up = t["upnl"] if main else ZERO
        im = t["pos_im"] + t["ord_im"] if main else ZERO
        avail = (wb + up - im) if main else wb
        out.append({
            "asset": asset, "walletBalance": fmt8(wb), "unrealizedProfit": fmt8(up),
            "marginBalance": fmt8(wb + up), "maintMargin": fmt8(t["maint"] if main else ZERO),
            "initialMargin": fmt8(im), "positionInitialMargin": fmt8(t["pos_im"] if main else ZERO),
            "openOrderInitialMargin": fmt8(t["ord_im"] if main else ZERO), "crossWalletBalance": fmt8(wb),
            "crossUnPnl": fmt8(up), "availableBalance": fmt8(avail), "maxWithdrawAmount": fmt8(max(ZERO, avail)),
            "marginAvailable": True, "updateTime": acct.update_ms or now,
        })
    return out


def _top(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalInitialMargin": fmt8(t["pos_im"] + t["ord_im"]), "totalMaintMargin": fmt8(t["maint"]),
        "totalWalletBalance": fmt8(t["wallet"]), "totalUnrealizedProfit": fmt8(t["upnl"]),
        "totalMarginBalance": fmt8(t["margin_balance"]), "totalPositionInitialMargin": fmt8(t["pos_im"]),
        "totalOpenOrderInitialMargin": fmt8(t["ord_im"]), "totalCrossWalletBalance": fmt8(t["wallet"]),
        "totalCrossUnPnl": fmt8(t["upnl"]), "availableBalance": fmt8(t["avail"]),
        "maxWithdrawAmount": fmt8(max(ZERO, t["avail"])),
    }


def _entry(r: _Row) -> str:
    return fmt8(r.pos.entry if r.pos is not None else ZERO)


def account(venue: Venue, acct: Account, version: int) -> dict[str, Any]:
    now = venue.market.now_ms()
    t = _totals(venue, acct)
    body: dict[str, Any] = {}
    if version == 2:
        body.update({"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                     "feeBurn": False, "tradeGroupId": -1, "updateTime": 0, "multiAssetsMargin": acct.multi_assets})
    body.update(_top(t))
    body["assets"] = _assets(acct, t, now)
    positions = []
    for r in t["rows"]:
        isolated = acct.settings[r.sym].isolated if r.sym in acct.settings else False
        update = r.pos.update_ms if r.pos is not None else 0
        if version == 3:
            if not r.amt and not r.orders:
                continue
            positions.append({
                "symbol": r.sym, "positionSide": r.side, "positionAmt": fixed(r.amt, r.inst.qty_scale),
                "unrealizedProfit": fmt8(r.upnl), "isolatedMargin": "0", "notional": fmt8(r.notional()),
                "isolatedWallet": "0", "initialMargin": fmt8(r.pos_im + r.ord_im), "maintMargin": fmt8(r.maint),
                "updateTime": update,
            })
        else:
            bid = sum((qty(r.inst, o.remaining) * px(r.inst, o.price_ticks) for o in r.orders if o.is_buy), ZERO)
            ask = sum((qty(r.inst, o.remaining) * px(r.inst, o.price_ticks) for o in r.orders if not o.is_buy), ZERO)
            lev = acct.leverage(r.sym)
            positions.append({
                "symbol": r.sym, "initialMargin": fmt8(r.pos_im + r.ord_im), "maintMargin": fmt8(r.maint),
                "unrealizedProfit": fmt8(r.upnl), "positionInitialMargin": fmt8(r.pos_im),
                "openOrderInitialMargin": fmt8(r.ord_im), "leverage": str(lev), "isolated": isolated,
                "entryPrice": _entry(r), "breakEvenPrice": _entry(r), "maxNotional": str(max_notional(lev)),
                "bidNotional": fmt8(bid), "askNotional": fmt8(ask), "positionSide": r.side,
                "positionAmt": fixed(r.amt, r.inst.qty_scale), "updateTime": update,
            })
    body["positions"] = positions
    return body


def balance(venue: Venue, acct: Account) -> list[dict[str, Any]]:
    now = venue.market.now_ms()
    t = _totals(venue, acct)
    out = []
    for a in _assets(acct, t, now):
        out.append({
            "accountAlias": "SgsR", "asset": a["asset"], "balance": a["walletBalance"],
            "crossWalletBalance": a["crossWalletBalance"], "crossUnPnl": a["crossUnPnl"],
            "availableBalance": a["availableBalance"], "maxWithdrawAmount": a["maxWithdrawAmount"],
            "marginAvailable": True, "updateTime": a["updateTime"],
        })
    return out


def position_risk(venue: Venue, acct: Account, symbol: str | None, version: int) -> list[dict[str, Any]]:
    if symbol:
        venue.instrument(symbol)
    t = _totals(venue, acct)
    out = []
    for r in t["rows"]:
        if symbol and r.sym != symbol:
            continue
        if version == 3 and not r.amt and not r.orders:
            continue
        mark = r.mark if r.mark is not None else venue.mark(r.sym)
        isolated = acct.settings[r.sym].isolated if r.sym in acct.settings else False
        row = {
            "symbol": r.sym, "positionSide": r.side, "positionAmt": fixed(r.amt, r.inst.qty_scale),
            "entryPrice": _entry(r), "breakEvenPrice": _entry(r),
            "markPrice": fmt8(px(r.inst, mark) if mark is not None else ZERO), "unRealizedProfit": fmt8(r.upnl),
            "liquidationPrice": "0", "isolatedMargin": "0", "notional": fmt8(r.notional()),
            "marginAsset": r.inst.margin_asset, "isolatedWallet": "0", "initialMargin": fmt8(r.pos_im + r.ord_im),
            "maintMargin": fmt8(r.maint), "positionInitialMargin": fmt8(r.pos_im),
            "openOrderInitialMargin": fmt8(r.ord_im), "adl": 0, "bidNotional": "0", "askNotional": "0",
            "updateTime": r.pos.update_ms if r.pos is not None else 0,
        }
        if version == 2:
            lev = acct.leverage(r.sym)
            row.update({"leverage": str(lev), "maxNotionalValue": str(max_notional(lev)),
                        "marginType": "isolated" if isolated else "cross", "isAutoAddMargin": "false"})
        out.append(row)
    return out
