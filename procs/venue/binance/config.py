"""``[venue] kind = "binance_usdm"``: Binance USD-M futures (or exchange_sim, the default)."""

from __future__ import annotations

from typing import ClassVar

from procs.venue.config import VenueConfig


class BinanceUsdmConfig(VenueConfig, tag="binance_usdm"):
    """Binance USD-M futures endpoints; the defaults are exchange_sim's on 127.0.0.1."""

    adapter: ClassVar[str] = "procs.venue.binance.adapter"
    rest_url: str = "http://127.0.0.1:9731"
    ws_stream_url: str = "ws://127.0.0.1:9732"  # market streams and the user-data stream (<base>/ws/<key>)
    ws_api_url: str = "ws://127.0.0.1:9732/ws-fapi/v1"
    recv_window_ms: int = 5000  # how long a signed request stays valid after its timestamp
    user_stream_keepalive_s: float = 1800.0  # the user-data stream's key is renewed this often
    depth_stream: str = "depth@0ms"  # or depth, depth@100ms
    trade_stream: str = "trade"  # or aggTrade; "" = no trades
    mark_stream: str = "markPrice@1s"  # or markPrice (every 3 s); "" = none (risk then marks at the mid)

    def __post_init__(self) -> None:
        if self.recv_window_ms <= 0 or self.recv_window_ms > 60_000:
            raise ValueError(f"recv_window_ms must be 1..60000: recv_window_ms={self.recv_window_ms}")
        if self.user_stream_keepalive_s <= 0:
            raise ValueError(f"user_stream_keepalive_s must be > 0: user_stream_keepalive_s={self.user_stream_keepalive_s}")
        if not self.depth_stream.startswith("depth"):
            raise ValueError(f"depth_stream must be a diff depth stream (depth, depth@100ms, depth@0ms): "
                             f"depth_stream={self.depth_stream!r}")
        if self.mark_stream not in ("", "markPrice", "markPrice@1s"):
            raise ValueError(f"mark_stream must be markPrice, markPrice@1s or empty: mark_stream={self.mark_stream!r}")
        if self.trade_stream not in ("", "trade", "aggTrade"):
            raise ValueError(f"trade_stream must be trade, aggTrade or empty: trade_stream={self.trade_stream!r}")
