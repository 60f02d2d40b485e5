"""Account settings and the start-up reads trading frameworks make before they trade.

``GET /fapi/v1/symbolConfig``, ``GET|POST /fapi/v1/positionSide/dual``, ``POST /fapi/v1/leverage``,
``POST /fapi/v1/marginType``, ``GET /fapi/v1/commissionRate``, ``GET /fapi/v1/leverageBracket``,
``GET|POST /fapi/v1/multiAssetsMargin``, ``GET /fapi/v1/income`` with the documented fields and
error codes [D:Symbol-Config, Get-Current-Position-Mode, Change-Position-Mode,
Change-Initial-Leverage, Change-Margin-Type, User-Commission-Rate, Notional-and-Leverage-Brackets,
Get-Current-Multi-Assets-Mode, Change-Multi-Assets-Mode, Get-Income-History; error-code].
Leverage and Multi-Assets changes are pushed as ACCOUNT_CONFIG_UPDATE.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from procs.exchange_sim.trading.accounts import Account
from procs.exchange_sim.trading.formats import leverage_update, multi_assets_update
from procs.exchange_sim.trading.signing import ApiError
from procs.exchange_sim.trading.venue import Venue, flag, mandatory, newest

# One notional/leverage bracket table for every symbol, shaped like Binance's BTCUSDT table
# (initial leverage, notional cap, maintenance margin ratio); ``cum`` is derived so the
# maintenance amount is continuous across brackets. Illustrative values, not live ones.
_BRACKETS = [(125, 50_000, "0.004"), (100, 600_000, "0.005"), (75, 3_000_000, "0.0065"),
             (50, 12_000_000, "0.01"), (25, 70_000_000, "0.02"), (20, 100_000_000, "0.025"),
             (10, 230_000_000, "0.05"), (5, 480_000_000, "0.1"), (4, 600_000_000, "0.125"),
             (3, 800_000_000, "0.15"), (2, 1_200_000_000, "0.25"), (1, 1_800_000_000, "0.5")]


def brackets() -> list[dict[str, Any]]:
    out, floor, cum, prev_mmr = [], 0, Decimal(0), Decimal(0)
    for i, (lev, cap, mmr_text) in enumerate(_BRACKETS, start=1):
        mmr = Decimal(mmr_text)
        cum += floor * (mmr - prev_mmr)
        out.append({"bracket": i, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
                    "maintMarginRatio": float(mmr), "cum": float(cum)})
        floor, prev_mmr = cap, mmr
    return out


_BRACKET_TABLE = brackets()


def max_notional(leverage: int) -> int:
    """The largest position notional the leverage allows (the cap of the last bracket that allows it)."""
    return max((b["notionalCap"] for b in _BRACKET_TABLE if b["initialLeverage"] >= leverage), default=0)


def maint_margin(notional: Decimal) -> Decimal:
    """Maintenance margin of a position notional: notional * ratio - cum of its bracket."""
    for b in _BRACKET_TABLE:
        if notional <= b["notionalCap"]:
            return notional * Decimal(str(b["maintMarginRatio"])) - Decimal(str(b["cum"]))
    return notional * Decimal("0.5")


def _symbols(venue: Venue, params: dict[str, str]) -> list[str]:
    sym = params.get("symbol")
    if sym:
        return [venue.instrument(sym).symbol]
    return sorted(venue.market.instruments)


def symbol_config(venue: Venue, acct: Account, params: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for sym in _symbols(venue, params):
        lev = acct.leverage(sym)
        s = acct.settings.get(sym)
        out.append({"symbol": sym, "marginType": s.margin_type if s else "CROSSED", "isAutoAddMargin": False,
                    "leverage": lev, "maxNotionalValue": str(max_notional(lev))})
    return out


def position_mode(acct: Account) -> dict[str, Any]:
    return {"dualSidePosition": acct.dual_side}


def set_position_mode(venue: Venue, acct: Account, params: dict[str, str]) -> dict[str, Any]:
    mandatory(params, "dualSidePosition")
    dual = flag(params, "dualSidePosition")
    if dual == acct.dual_side:
        raise ApiError(-4059, "No need to change position side.")
    if venue.open_orders(acct) or venue.open_algos(acct):
        raise ApiError(-4067, "Position side cannot be changed if there exists open orders.")
    if acct.has_position():
        raise ApiError(-4068, "Position side cannot be changed if there exists position.")
    acct.dual_side = dual
    return {"code": 200, "msg": "success"}


def set_leverage(venue: Venue, acct: Account, params: dict[str, str]) -> dict[str, Any]:
    inst = venue.instrument(params.get("symbol"))
    try:
        lev = int(mandatory(params, "leverage"))
    except ValueError:
        raise ApiError(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed."
                       ) from None
    if not 1 <= lev <= _BRACKET_TABLE[0]["initialLeverage"]:
        raise ApiError(-4028, f"Leverage {lev} is not valid")
    cap = max_notional(lev)
    if acct.notional(inst, venue.mark(inst.symbol)) > cap:
        raise ApiError(-2027, "Exceeded the maximum allowable position at current leverage.")
    acct.symbol_settings(inst.symbol).leverage = lev
    if venue.wants(acct.name):
        venue.emit(acct.name, leverage_update(inst.symbol, lev, venue.market.now_ms()))
    return {"leverage": lev, "maxNotionalValue": str(cap), "symbol": inst.symbol}


def set_margin_type(venue: Venue, acct: Account, params: dict[str, str]) -> dict[str, Any]:
    inst = venue.instrument(params.get("symbol"))
    kind = mandatory(params, "marginType").upper()
    if kind not in ("ISOLATED", "CROSSED", "CROSS"):
        raise ApiError(-1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
    isolated = kind == "ISOLATED"
    settings = acct.symbol_settings(inst.symbol)
    if settings.isolated == isolated:
        raise ApiError(-4046, "No need to change margin type.")
    if isolated and acct.multi_assets:
        raise ApiError(-4168, "Unable to adjust to isolated-margin mode under the Multi-Assets mode.")
    if venue.open_orders(acct, inst.symbol):
        raise ApiError(-4047, "Margin type cannot be changed if there exists open orders.")
    if acct.has_position(inst.symbol):
        raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
    settings.isolated = isolated
    return {"code": 200, "msg": "success"}


def commission_rate(venue: Venue, params: dict[str, str]) -> dict[str, Any]:
    inst = venue.instrument(params.get("symbol"))
    return {"symbol": inst.symbol, "makerCommissionRate": str(venue.maker_rate.normalize()),
            "takerCommissionRate": str(venue.taker_rate.normalize())}


def leverage_bracket(venue: Venue, params: dict[str, str]) -> Any:
    rows = [{"symbol": sym, "brackets": _BRACKET_TABLE} for sym in _symbols(venue, params)]
    return rows[0] if params.get("symbol") else rows  # one object when a symbol is sent


def multi_assets(acct: Account) -> dict[str, Any]:
    return {"multiAssetsMargin": acct.multi_assets}


def set_multi_assets(venue: Venue, acct: Account, params: dict[str, str]) -> dict[str, Any]:
    mandatory(params, "multiAssetsMargin")
    on = flag(params, "multiAssetsMargin")
    if on == acct.multi_assets:
        raise ApiError(-4171, "Adjusted asset mode is currently set and does not need to be adjusted")
    if on and any(s.isolated for s in acct.settings.values()):
        raise ApiError(-4167, "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under "
                              "isolated-margin mode.")
    acct.multi_assets = on
    if venue.wants(acct.name):
        venue.emit(acct.name, multi_assets_update(on, venue.market.now_ms()))
    return {"code": 200, "msg": "success"}


_INCOME_TYPES = ("TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR",
                 "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE", "CONTEST_REWARD",
                 "CROSS_COLLATERAL_TRANSFER", "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER",
                 "AUTO_EXCHANGE", "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW",
                 "POSITION_LIMIT_INCREASE_FEE", "STRATEGY_UMFUTURES_TRANSFER", "FEE_RETURN", "BFUSD_REWARD")
_WEEK_MS = 7 * 86_400_000


def income(venue: Venue, acct: Account, params: dict[str, str]) -> list[dict[str, Any]]:
    """Income history: commissions and realized PnL of the account's fills (no funding is charged).
    Without startTime / endTime the last 7 days [D:Get-Income-History]."""
    sym = params.get("symbol")
    if sym:
        venue.instrument(sym)
    kind = params.get("incomeType")
    if kind and kind not in _INCOME_TYPES:
        raise ApiError(-1102, "Mandatory parameter 'incomeType' was not sent, was empty/null, or malformed.")
    try:
        limit = int(params.get("limit", "100"))
        page = int(params.get("page", "1"))
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
    except ValueError:
        raise ApiError(-1102, "Mandatory parameter 'limit/page/startTime/endTime' was not sent, was empty/null, "
                              "or malformed.") from None
    if not 1 <= limit <= 1000 or page < 1:
        raise ApiError(-1130, "Invalid data sent for a parameter: limit must be 1..1000 and page >= 1.")
    if start is not None and end is not None and start > end:
        raise ApiError(-1023, "Start time is greater than end time.")
    if start is None and end is None:
        start = venue.market.now_ms() - _WEEK_MS
    rows = [r for r in newest(acct.income, venue.cfg.keep_income)
            if (not sym or r["symbol"] == sym) and (not kind or r["incomeType"] == kind)
            and (start is None or r["time"] >= start) and (end is None or r["time"] <= end)]
    return rows[(page - 1) * limit: page * limit]
