"""Account, balance and positionRisk responses (v2 and v3 shapes) from the venue's accounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from procs.exchange_sim.trading.accounts import ZERO, Account, fmt8, px, qty
from procs.exchange_sim.trading.formats import fixed
from procs.exchange_sim.trading.venue import Venue


def _totals(venue: Venue, acct: Account) -> dict[str, Any]:
    """Per-asset and per-symbol margin figures, computed once per request."""
    upnl = pos_im = ord_im = maint = ZERO
    rows = []
    mmr = Decimal(venue.cfg.maint_margin_rate)
    for sym, inst in venue.market.instruments.items():
        pos = acct.positions.get(sym)
        orders = venue.open_orders(acct, sym) if sym in venue.engines else []
        if (pos is None or pos.amt == 0) and not orders:
            rows.append((sym, inst, pos, orders, None, ZERO, ZERO, ZERO, ZERO))
            continue
        mark = venue.mark(sym)
        u = acct.unrealized(inst, mark)
        pim = acct.position_margin(inst, mark)
        oim = acct.order_margin(inst, orders, mark)
        mm = abs(qty(inst, pos.amt) * px(inst, mark)) * mmr if pos and pos.amt and mark else ZERO
        upnl += u
        pos_im += pim
        ord_im += oim
        maint += mm
        rows.append((sym, inst, pos, orders, mark, u, pim, oim, mm))
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


def _notional(inst: Any, pos: Any, mark: int | None) -> Decimal:
    if pos is None or not pos.amt or mark is None:
        return ZERO
    return qty(inst, pos.amt) * px(inst, mark)


def account(venue: Venue, acct: Account, version: int) -> dict[str, Any]:
    now = venue.market.now_ms()
    t = _totals(venue, acct)
    body: dict[str, Any] = {}
    if version == 2:
        body.update({"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                     "feeBurn": False, "tradeGroupId": -1, "updateTime": 0, "multiAssetsMargin": False})
    body.update(_top(t))
    body["assets"] = _assets(acct, t, now)
    positions = []
    for sym, inst, pos, orders, mark, u, pim, oim, mm in t["rows"]:
        amt = pos.amt if pos else 0
        if version == 3:
            if not amt and not orders:
                continue
            positions.append({
                "symbol": sym, "positionSide": "BOTH", "positionAmt": fixed(amt, inst.qty_scale),
                "unrealizedProfit": fmt8(u), "isolatedMargin": "0", "notional": fmt8(_notional(inst, pos, mark)),
                "isolatedWallet": "0", "initialMargin": fmt8(pim + oim), "maintMargin": fmt8(mm),
                "updateTime": pos.update_ms if pos else 0,
            })
        else:
            bid = sum((qty(inst, o.remaining) * px(inst, o.price_ticks) for o in orders if o.is_buy), ZERO)
            ask = sum((qty(inst, o.remaining) * px(inst, o.price_ticks) for o in orders if not o.is_buy), ZERO)
            positions.append({
                "symbol": sym, "initialMargin": fmt8(pim + oim), "maintMargin": fmt8(mm),
                "unrealizedProfit": fmt8(u), "positionInitialMargin": fmt8(pim),
                "openOrderInitialMargin": fmt8(oim), "leverage": str(acct.leverage), "isolated": False,
                "entryPrice": fmt8(pos.entry if pos else ZERO), "breakEvenPrice": fmt8(pos.entry if pos else ZERO),
                "maxNotional": "1000000", "bidNotional": fmt8(bid), "askNotional": fmt8(ask),
                "positionSide": "BOTH", "positionAmt": fixed(amt, inst.qty_scale),
                "updateTime": pos.update_ms if pos else 0,
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
    for sym, inst, pos, orders, mark, u, pim, oim, mm in t["rows"]:
        if symbol and sym != symbol:
            continue
        amt = pos.amt if pos else 0
        if version == 3 and not amt and not orders:
            continue
        if mark is None:
            mark = venue.mark(sym)
        row = {
            "symbol": sym, "positionSide": "BOTH", "positionAmt": fixed(amt, inst.qty_scale),
            "entryPrice": fmt8(pos.entry if pos else ZERO), "breakEvenPrice": fmt8(pos.entry if pos else ZERO),
            "markPrice": fmt8(px(inst, mark) if mark is not None else ZERO), "unRealizedProfit": fmt8(u),
            "liquidationPrice": "0", "isolatedMargin": "0", "notional": fmt8(_notional(inst, pos, mark)),
            "marginAsset": inst.margin_asset, "isolatedWallet": "0", "initialMargin": fmt8(pim + oim),
            "maintMargin": fmt8(mm), "positionInitialMargin": fmt8(pim), "openOrderInitialMargin": fmt8(oim),
            "adl": 0, "bidNotional": "0", "askNotional": "0", "updateTime": pos.update_ms if pos else 0,
        }
        if version == 2:
            row.update({"leverage": str(acct.leverage), "maxNotionalValue": "1000000", "marginType": "cross",
                        "isAutoAddMargin": "false"})
        out.append(row)
    return out
