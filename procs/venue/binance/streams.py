"""Where Binance USD-M market data comes from: the combined-stream WebSocket URL, the REST depth
snapshot, and the frames that re-subscribe one symbol on a live connection."""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec

from .config import BinanceUsdmConfig

DEPTH_PATH = "/fapi/v1/depth"


class MarketStreams:
    """``procs.venue.protocols.MarketStreams`` for ``[venue]``'s depth, trade and mark-price streams."""

    def __init__(self, cfg: BinanceUsdmConfig) -> None:
        self.cfg = cfg
        self.name = cfg.ws_stream_url  # for the log: where the feed connects
        self._sub_id = 0

    def streams(self, symbols: list[str], marks: bool = True) -> list[str]:
        out = []
        for s in symbols:
            out.append(f"{s.lower()}@{self.cfg.depth_stream}")
            if self.cfg.trade_stream:
                out.append(f"{s.lower()}@{self.cfg.trade_stream}")
            if self.cfg.mark_stream and marks:
                out.append(f"{s.lower()}@{self.cfg.mark_stream}")
        return out

    def url(self, symbols: list[str], marks: bool = True) -> str:
        """The WebSocket URL that carries every symbol's depth diffs, trades and mark price."""
        return f"{self.cfg.ws_stream_url.rstrip('/')}/stream?streams={'/'.join(self.streams(symbols, marks))}"

    def snapshot_url(self, symbol: str, limit: int) -> str:
        """The REST request of a depth snapshot of ``limit`` levels a side."""
        return f"{self.cfg.rest_url.rstrip('/')}{DEPTH_PATH}?{urlencode({'symbol': symbol, 'limit': limit})}"

    def resubscribe(self, symbols: list[str], marks: bool = True) -> list[bytes]:
        """Frames that drop and take again ``symbols``' streams on the live connection (a silent
        symbol's resync: its next diffs come after a fresh snapshot)."""
        out = []
        for method in ("UNSUBSCRIBE", "SUBSCRIBE"):
            self._sub_id += 1
            out.append(msgspec.json.encode({"method": method, "params": self.streams(symbols, marks), "id": self._sub_id}))
        return out
