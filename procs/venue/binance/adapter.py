"""``Adapter``: Binance USD-M behind ``procs.venue.protocols.Venue``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from procs.core.credentials import load_credentials
from procs.venue.messages import VenueInfo

from . import exchange_info
from .account import AccountSource
from .config import BinanceUsdmConfig
from .gateway import OrderGateway
from .market import MarketCodec
from .recordings import Recordings
from .signing import TEST_ACCOUNT, Signer
from .streams import MarketStreams


class Adapter:
    """What the processes get for ``[venue] kind = "binance_usdm"``."""

    def __init__(self, cfg: BinanceUsdmConfig) -> None:
        self.cfg = cfg

    # -- instruments ------------------------------------------------------------------------
    def info(self, should_stop: Callable[[], bool] = lambda: False, attempts: int = 0,
             timeout_s: float = 10.0) -> VenueInfo | None:
        """Instruments and limits from ``[venue] exchange_info``, else fetched (each try within
        ``timeout_s``, retried until ``should_stop``: then None; ``attempts`` > 0 raises after
        that many failures)."""
        if self.cfg.exchange_info:
            return self.read_info(self.cfg.exchange_info)
        body = exchange_info.wait_for(self.cfg.rest_url, should_stop, attempts, timeout_s=timeout_s)
        return None if body is None else exchange_info.parse(body)

    def read_info(self, path: str | Path) -> VenueInfo:
        """Instruments and limits from a file in this venue's format; ValueError naming the file."""
        try:
            return exchange_info.read(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"cannot read the instrument list: section=[venue] exchange_info={path} "
                             f"reason={exc!r}") from None

    # -- the account --------------------------------------------------------------------------
    def signer(self) -> Signer:
        """The account's key and signer; ValueError naming the source that failed (never the secret)."""
        c = self.cfg
        key, secret = load_credentials(section="venue", rest_url=c.rest_url, api_key=c.api_key,
                                       api_secret=c.api_secret, secrets_file=c.secrets_file, key_env=c.api_key_env,
                                       secret_env=c.api_secret_env, loopback_default=TEST_ACCOUNT)
        return Signer(key, secret)

    def account_source(self, signer: Signer, timeout_s: float) -> AccountSource:
        """Account, positions and open orders over signed REST (blocking)."""
        return AccountSource(self.cfg.rest_url, signer, self.cfg.recv_window_ms, timeout_s)

    def market_streams(self) -> MarketStreams:
        """The combined depth and trade streams of ``[venue]``, and REST depth snapshots."""
        return MarketStreams(self.cfg)

    def order_gateway(self, signer: Signer, *, prefer_ws: bool, request_timeout_s: float, reconnect_min_s: float,
                      reconnect_max_s: float, on_connection: Callable[[bool], None] | None = None) -> OrderGateway:
        """Orders over the WS API (REST while it is down), the user-data stream, REST for the rest."""
        return OrderGateway(self.cfg, signer, prefer_ws=prefer_ws, request_timeout_s=request_timeout_s,
                            reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s,
                            on_connection=on_connection)

    def market_codec(self, raw_levels: bool = False) -> MarketCodec:
        """The combined-stream frames of USD-M (``depth.CHAINED`` diffs, with the frame kernel)."""
        return MarketCodec(raw_levels, "usdm")

    def recordings(self) -> Recordings:
        """hftbacktest, cryptofeed and b25's own recordings of Binance (USD-M, COIN-M, spot)."""
        return Recordings()
