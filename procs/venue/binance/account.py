"""The account as Binance USD-M reports it: signed ``GET /fapi/v3/account`` and
``/fapi/v3/positionRisk``, netted into an ``AccountSnapshot`` (risk's reconciliation).

Blocking (``SyncRest``): risk calls it from its own thread, never from the agent's loop.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from procs.venue.messages import AccountSnapshot, OrderReport, VenueError

from .orders import order_report
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


_positions = msgspec.json.Decoder(list[PositionRow])
_account = msgspec.json.Decoder(AccountBody)


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
            rows = _positions.decode(self.rest.raw("GET", "/fapi/v3/positionRisk"))
            entries = {r.symbol: r.entryPrice for r in rows if Decimal(r.positionAmt or "0")}
        except (msgspec.DecodeError, ValueError, ArithmeticError) as exc:
            raise VenueError(f"account answer not understood: {exc!r}"[:200]) from None
        return AccountSnapshot(positions=net_positions(rows), entry_prices=entries,
                               wallet_balance=acct.totalWalletBalance, unrealized=acct.totalUnrealizedProfit)

    def open_orders(self, symbol: str = "") -> list[OrderReport]:
        """The account's open orders (of one symbol, or all)."""
        rows = self.rest.call("GET", "/fapi/v1/openOrders", {"symbol": symbol} if symbol else {})
        if not isinstance(rows, list):
            raise VenueError(f"open orders answer is not a list: {str(rows)[:100]}")
        return [order_report(r) for r in rows]
