"""The account as Binance USD-M reports it: signed ``GET /fapi/v3/account``,
``/fapi/v3/positionRisk`` and ``/fapi/v1/symbolConfig`` (the leverage settings), netted into an
``AccountSnapshot`` (risk's reconciliation); ``GET /fapi/v1/leverageBracket`` for the margin tiers
(https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Notional-and-Leverage-Brackets).

Blocking (``SyncRest``): risk calls it from its own thread, never from the agent's loop.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import msgspec

from procs.venue.messages import AccountSnapshot, MarginTier, OrderReport, VenueError

from .orders import is_decimal, order_reports
from .rest_sync import SyncRest
from .signing import Signer


class PositionRow(msgspec.Struct):
    symbol: str
    positionAmt: str = "0"  # noqa: N815 (the exchange's field names)
    entryPrice: str = "0"  # noqa: N815
    positionSide: str = "BOTH"  # noqa: N815


class AccountBody(msgspec.Struct):
    totalWalletBalance: str = ""  # noqa: N815
    totalUnrealizedProfit: str = ""  # noqa: N815
    totalMarginBalance: str = ""  # noqa: N815
    totalMaintMargin: str = ""  # noqa: N815
    totalOpenOrderInitialMargin: str = ""  # noqa: N815
    availableBalance: str = ""  # noqa: N815


class SymbolConfigRow(msgspec.Struct):
    symbol: str
    leverage: int = 0


class Bracket(msgspec.Struct):
    # numbers on the wire (``"maintMarginRatio": 0.0065``): decoded straight to exact Decimals
    initialLeverage: int  # noqa: N815
    notionalCap: Decimal  # noqa: N815
    notionalFloor: Decimal  # noqa: N815
    maintMarginRatio: Decimal  # noqa: N815
    cum: Decimal = Decimal(0)


class BracketRow(msgspec.Struct):
    symbol: str
    brackets: list[Bracket]


_positions = msgspec.json.Decoder(list[PositionRow])
_account = msgspec.json.Decoder(AccountBody)
_symbol_config = msgspec.json.Decoder(list[SymbolConfigRow])
_brackets = msgspec.json.Decoder(list[BracketRow])


def _text(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


def margin_tiers(rows: list[BracketRow]) -> dict[str, list[MarginTier]]:
    """Each symbol's brackets, lowest notional first, as b25's ``MarginTier``."""
    return {r.symbol: [MarginTier(floor=_text(b.notionalFloor), cap=_text(b.notionalCap),
                                  maint_rate=_text(b.maintMarginRatio), maint_amount=_text(b.cum),
                                  max_leverage=b.initialLeverage)
                       for b in sorted(r.brackets, key=lambda b: b.notionalFloor)] for r in rows}


def checked_positions(rows: list[PositionRow]) -> list[PositionRow]:
    """``rows`` when every amount and entry price is decimal text; VenueError naming the one that is not."""
    for r in rows:
        for name, value in (("positionAmt", r.positionAmt), ("entryPrice", r.entryPrice)):
            if not is_decimal(value):
                raise VenueError(f"account answer not understood: {r.symbol[:20]!r} {name}={value[:40]!r}")
    return rows


def decode_snapshot(account: bytes, positions: bytes) -> AccountSnapshot:
    """The ``/fapi/v3/account`` and ``/fapi/v3/positionRisk`` bodies as one snapshot (without the
    margin settings ``AccountSource.snapshot`` adds); VenueError naming what is not understood."""
    try:
        acct = _account.decode(account)
        rows = checked_positions(_positions.decode(positions))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise VenueError(f"account answer not understood: {exc}"[:200]) from None
    entries = {r.symbol: r.entryPrice for r in rows if Decimal(r.positionAmt)}
    return AccountSnapshot(positions=net_positions(rows), entry_prices=entries,
                           wallet_balance=acct.totalWalletBalance, unrealized=acct.totalUnrealizedProfit)


def net_positions(rows: list[PositionRow]) -> dict[str, str]:
    """Signed net position per symbol (hedge-mode LONG/SHORT rows summed; SHORT is negative)."""
    out: dict[str, Decimal] = {}
    for r in rows:
        out[r.symbol] = out.get(r.symbol, Decimal(0)) + Decimal(r.positionAmt or "0")
    return {s: format(v.normalize(), "f") if v else "0" for s, v in out.items()}


class AccountSource:
    """``procs.venue.protocols.AccountSource`` over the REST API (one request at a time)."""

    def __init__(self, rest_url: str, signer: Signer, recv_window_ms: int = 5000, timeout_s: float = 3.0) -> None:
        self.rest = SyncRest(rest_url, signer, recv_window_ms, timeout_s)

    def snapshot(self) -> AccountSnapshot:
        """Positions, entry prices, wallet balance and unrealized P&L; VenueError when the venue
        does not answer usefully."""
        try:
            acct = _account.decode(self.rest.raw("GET", "/fapi/v3/account"))
            rows = checked_positions(_positions.decode(self.rest.raw("GET", "/fapi/v3/positionRisk")))
            settings = _symbol_config.decode(self.rest.raw("GET", "/fapi/v1/symbolConfig"))
            entries = {r.symbol: r.entryPrice for r in rows if Decimal(r.positionAmt or "0")}
        except (msgspec.DecodeError, ValueError, ArithmeticError) as exc:
            raise VenueError(f"account answer not understood: {exc!r}"[:200]) from None
        return AccountSnapshot(positions=net_positions(rows), entry_prices=entries,
                               wallet_balance=acct.totalWalletBalance, unrealized=acct.totalUnrealizedProfit,
                               margin_balance=acct.totalMarginBalance, maint_margin=acct.totalMaintMargin,
                               open_order_margin=acct.totalOpenOrderInitialMargin,
                               available_balance=acct.availableBalance,
                               leverage={r.symbol: r.leverage for r in settings if r.leverage > 0})

    def margin_tiers(self, symbols: list[str]) -> dict[str, list[MarginTier]]:
        """The maintenance-margin brackets of ``symbols`` (one request for every symbol)."""
        try:
            rows = _brackets.decode(self.rest.raw("GET", "/fapi/v1/leverageBracket"))
        except (msgspec.DecodeError, ValueError, InvalidOperation) as exc:
            raise VenueError(f"leverage brackets not understood: {exc!r}"[:200]) from None
        tiers = margin_tiers(rows)
        return {s: tiers[s] for s in symbols if s in tiers}

    def open_orders(self, symbol: str = "") -> list[OrderReport]:
        """The account's open orders (of one symbol, or all)."""
        rows = self.rest.call("GET", "/fapi/v1/openOrders", {"symbol": symbol} if symbol else {})
        try:
            return order_reports(rows)
        except ValueError as exc:
            raise VenueError(str(exc)) from None
