"""exchangeInfo: the venue's instruments and rate limits, parsed once and fetched one way.

``parse`` turns an exchangeInfo body into a ``VenueInfo`` (USD-M, COIN-M or spot ``symbols[]``
entries, ``rateLimits``, and the simulator's session name); ``read`` takes a JSON file or a
cryptofeed ``*.0`` recording (first line ``<url> -> <ts>: <json>``); ``fetch`` asks the REST
API once; ``wait_for`` asks until it answers or the caller stops. Every b25 process, the TUI
and the replay harness get their instruments through these (``Adapter.info``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from procs.core import log
from procs.core.instruments import Instrument, scale_of
from procs.venue.messages import RateLimit, VenueInfo

INFO_PATH = "/fapi/v1/exchangeInfo"
# exchangeInfo field (not Binance's) by which the simulator names its process: its account
# starts flat with each one, so state saved against another session does not hold there
SIM_SESSION_FIELD = "b25SimSession"
_UNIT_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
_LIMIT_KIND = {"REQUEST_WEIGHT": "weight", "ORDERS": "orders"}


def _filters(entry: dict) -> dict[str, dict]:
    return {f["filterType"]: f for f in entry.get("filters", [])}


def instrument(entry: dict) -> Instrument:
    """An Instrument from one exchangeInfo ``symbols[]`` entry (USD-M, COIN-M or spot)."""
    f = _filters(entry)
    pf = f.get("PRICE_FILTER", {})
    ls = f.get("LOT_SIZE", {})
    ml = f.get("MARKET_LOT_SIZE", ls)
    mn = f.get("MIN_NOTIONAL", f.get("NOTIONAL", {}))
    pp = f.get("PERCENT_PRICE", {})
    mo = f.get("MAX_NUM_ORDERS", {})
    tick = pf.get("tickSize", "0")
    step = ls.get("stepSize", "0")
    price_scale = max(scale_of(tick), int(entry.get("pricePrecision", 0)), 2 if tick == "0" else 0)
    qty_scale = max(scale_of(step), int(entry.get("quantityPrecision", 0)))
    return Instrument(
        symbol=entry["symbol"],
        price_scale=price_scale,
        qty_scale=qty_scale,
        tick_size=tick,
        step_size=step,
        min_price=pf.get("minPrice", "0"),
        max_price=pf.get("maxPrice", "0"),
        min_qty=ls.get("minQty", "0"),
        max_qty=ls.get("maxQty", "0"),
        market_min_qty=ml.get("minQty", "0"),
        market_max_qty=ml.get("maxQty", "0"),
        min_notional=str(mn.get("notional", mn.get("minNotional", "0"))),
        multiplier_up=pp.get("multiplierUp", "0"),
        multiplier_down=pp.get("multiplierDown", "0"),
        max_num_orders=int(mo.get("limit", 0)),
        contract_type=entry.get("contractType", ""),
        margin_asset=entry.get("marginAsset", entry.get("quoteAsset", "USDT")),
        contract_size=int(entry.get("contractSize", 1)),
    )


def interval_ms(entry: dict) -> int:
    """A ``rateLimits`` entry's window in ms (0 when it names no known unit)."""
    return _UNIT_MS.get(entry.get("interval", ""), 0) * int(entry.get("intervalNum", 1))


def rate_limits(entries: list[dict]) -> list[RateLimit]:
    """The request-weight and order-count limits of an exchangeInfo ``rateLimits`` array."""
    out = []
    for rl in entries:
        kind = _LIMIT_KIND.get(rl.get("rateLimitType", ""))
        interval, limit = interval_ms(rl), int(rl.get("limit", 0))
        if kind is not None and interval > 0 and limit > 0:
            out.append(RateLimit(kind, interval, limit))
    return out


def parse(body: dict) -> VenueInfo:
    """A ``VenueInfo`` from an exchangeInfo body; ValueError naming the entry that is not understood."""
    if not isinstance(body, dict):
        raise ValueError(f"exchangeInfo is not an object: {str(body)[:80]}")
    instruments = {}
    for k, e in enumerate(_list(body, "symbols")):
        try:
            inst = instrument(e)
            if not isinstance(inst.symbol, str) or not inst.symbol:
                raise ValueError(f"symbol={inst.symbol!r}")
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            name = e.get("symbol") if isinstance(e, dict) else None
            raise ValueError(f"exchangeInfo symbols[{k}] ({str(name)[:20]}) not understood: {exc!r}"[:300]) from None
        instruments[inst.symbol] = inst
    try:
        limits = rate_limits(_list(body, "rateLimits"))
    except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise ValueError(f"exchangeInfo rateLimits not understood: {exc!r}"[:300]) from None
    return VenueInfo(instruments, limits, str(body.get(SIM_SESSION_FIELD, "")))


def _list(body: dict, key: str) -> list:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"exchangeInfo {key} is not a list: {str(value)[:80]}")
    return value


def read_body(path: str | Path) -> dict:
    """The exchangeInfo body in a JSON file or a cryptofeed ``*.0`` recording."""
    text = Path(path).read_text()
    first = text.splitlines()[0] if text else ""
    if " -> " in first and ": {" in first:
        return json.loads(first[first.index(": {") + 2 :])
    return json.loads(text)


def read(path: str | Path) -> VenueInfo:
    """A ``VenueInfo`` from a file (``[venue] exchange_info``, a recording's exchangeInfo)."""
    return parse(read_body(path))


def instruments(source: str | Path | dict) -> dict[str, Instrument]:
    """Instruments by symbol from an exchangeInfo body or file."""
    return (parse(source) if isinstance(source, dict) else read(source)).instruments


def fetch(rest_url: str, timeout_s: float = 10.0) -> dict:
    """One ``GET exchangeInfo`` (unsigned); raises OSError or ValueError when it fails."""
    with urllib.request.urlopen(rest_url.rstrip("/") + INFO_PATH, timeout=timeout_s) as r:
        body = json.loads(r.read())
    if not isinstance(body, dict):
        raise ValueError(f"exchangeInfo is not an object: type={type(body).__name__}")
    return body


def wait_for(rest_url: str, should_stop: Callable[[], bool] = lambda: False, attempts: int = 0,
             retry_min_s: float = 0.2, retry_max_s: float = 5.0, timeout_s: float = 10.0) -> dict | None:
    """``fetch`` until it answers: None when ``should_stop`` says so first; after ``attempts``
    failures (0 = no bound) the last error is raised. The first failure is logged once."""
    delay, n = retry_min_s, 0
    while True:
        try:
            return fetch(rest_url, timeout_s)
        except (OSError, ValueError) as exc:
            n += 1
            if attempts and n >= attempts:
                raise
            log.once("exchange_info_failed", "warn", "exchange_info_failed", url=rest_url, reason=repr(exc),
                     action="retrying")
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if should_stop():
                return None
            time.sleep(min(0.05, delay))
        delay = min(retry_max_s, delay * 2)
