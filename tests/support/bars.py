"""Bars computed the plain way, sharing no code with procs/ (the reference ``b25 bars`` is tested
against): trade dicts in the exchange's fields (``e``, ``s``, ``t``/``a``, ``f``, ``l``, ``p``,
``q``, ``m``, ``T``), aggregated with pandas."""

from __future__ import annotations

import pandas as pd


def reference_bars(trades: list[dict], interval: str) -> pd.DataFrame:
    """Every trade event, @aggTrade only for symbols without @trade; one row per non-empty bar."""
    rows = []
    for d in trades:
        n = d["l"] - d["f"] + 1 if d.get("e") == "aggTrade" and "f" in d else 1
        rows.append({"symbol": d["s"], "src": d.get("e", "trade"), "t": d["T"],
                     "id": d["a"] if d.get("e") == "aggTrade" else d["t"],
                     "p": float(d["p"]), "q": float(d["q"]), "m": d["m"], "n": n})
    df = pd.DataFrame(rows)
    with_trade = set(df.loc[df.src == "trade", "symbol"])
    df = df[(df.src == "trade") | ~df.symbol.isin(with_trade)]
    df = df.sort_values(["symbol", "t", "id"], kind="stable")
    ms = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[interval[-1]] * int(interval[:-1])
    df["open_time"] = df.t // ms * ms
    df["pq"] = df.p * df.q
    df["buy"] = df.q.where(~df.m, 0.0)
    df["sell"] = df.q.where(df.m, 0.0)
    g = df.groupby(["symbol", "open_time"], sort=True)
    out = pd.DataFrame({"open": g.p.first(), "high": g.p.max(), "low": g.p.min(), "close": g.p.last(),
                        "volume": g.q.sum(), "trades": g.n.sum(), "buy_volume": g.buy.sum(),
                        "sell_volume": g.sell.sum(), "notional": g.pq.sum()}).reset_index()
    out["vwap"] = out.notional / out.volume
    return out


def assert_same_bars(ours: list[dict], ref: pd.DataFrame, what: str) -> None:
    """``b25 bars`` rows equal the reference: keys, OHLC and counts exactly, sums to 1e-9."""
    import pytest

    assert len(ours) == len(ref), f"{what}: {len(ours)} bars, reference {len(ref)}"
    for a, (_, b) in zip(ours, ref.iterrows(), strict=True):
        key = f"{what} {a['symbol']} {a['open_time']}"
        assert (a["symbol"], a["open_time"]) == (b.symbol, b.open_time), key
        assert (a["open"], a["high"], a["low"], a["close"], a["trades"]) == \
               (b.open, b.high, b.low, b.close, b.trades), key
        for f in ("volume", "buy_volume", "sell_volume", "vwap"):
            assert a[f] == pytest.approx(b[f], rel=1e-9, abs=1e-12), f"{key} {f}"
        assert a["trades"] > 0 and a["volume"] > 0, f"{key}: an empty bar was written"
