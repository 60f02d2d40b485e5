"""The monitor's history routes: what risk's P&L files and market_data's recorder files hold.

GET /api/history/pnl?strategy=&symbol=&from=&to=&step=
    rows of risk's P&L history (procs/risk/history.py): ``strategy`` ("*" = the account row),
    ``symbol``, ``from``/``to`` (ISO 8601 UTC or epoch ms; default the last 24 hours), ``step``
    (seconds, or 1s/1m/5m/1h: the last row of each step per strategy and symbol; default every
    sample). At most ``MAX_ROWS`` rows: a longer span needs a step.
GET /api/history/bars?symbol=&interval=&from=&to=
    OHLCV bars (procs/tools/bars.py) of the trades in this instance's recorder files
    (``[market_data] recorder``; the file being written is read up to its last flushed batch).
    Bars of a finished file are computed once and kept.

Both read files in a worker thread, so the event loop keeps answering ``/health`` meanwhile. A
bad parameter is 400 naming it; no files at all is 200 with no rows and ``files`` saying where
the monitor looked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .routes import Param, Route

MAX_ROWS = 200_000
DAY_MS = 86_400_000


@dataclass
class HistorySources:
    """Where this instance's history lives (from the deployment's config)."""

    pnl_dir: Path | None  # <[risk.history] dir>/<instance>, None when the history is off
    record_dir: Path | None  # [market_data] recorder dir, None when the recorder is off
    record_prefix: str  # recorder files are <prefix>_<time>_<pid>.gz
    _bars: dict[tuple[str, int], tuple[tuple[int, int], Any]] = field(default_factory=dict)

    def record_files(self) -> list[Path]:
        if self.record_dir is None:
            return []
        return sorted(self.record_dir.glob(f"{self.record_prefix}_*.gz"))

    def bars(self, interval_ms: int, symbol: str | None) -> tuple[Any, list[str]]:
        """(BarSet over every recorder file, problems); unchanged files' bars come from the cache."""
        from procs.tools.bars import BarSet, compute_bars

        total = BarSet(interval_ms)
        problems: list[str] = []
        for p in self.record_files():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            key = (str(p), interval_ms)
            stamp = (st.st_size, st.st_mtime_ns)
            hit = self._bars.get(key)
            if hit is None or hit[0] != stamp:
                hit = (stamp, compute_bars([p], interval_ms, problems=problems))
                self._bars[key] = hit
            total.merge(hit[1])
        if symbol is not None:
            total.bars = {k: b for k, b in total.bars.items() if k[0] == symbol}
        return total, problems


def sources_from_config(config: str | None, instance: str) -> HistorySources:
    from procs.core.config import load_section
    from procs.market_data.config import MarketDataConfig
    from procs.risk.config import RiskConfig

    hist = load_section(config, "risk", RiskConfig).history
    rec = load_section(config, "market_data", MarketDataConfig).recorder
    return HistorySources(Path(hist.dir) / instance if hist.enabled else None,
                          Path(rec.dir) if rec.enabled else None, f"{instance}_md")


def _time_arg(request: web.Request, name: str, default: int | None, bad: type) -> int | None:
    from procs.tools.bars import parse_time_ms

    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_time_ms(raw)
    except ValueError as exc:
        raise bad(str(exc), name) from None


def _step_ms(raw: str | None, bad: type) -> int | None:
    from procs.tools.bars import interval_ms

    if raw is None or raw == "":
        return None
    try:
        return int(float(raw) * 1000) if raw.replace(".", "", 1).isdigit() else interval_ms(raw)
    except ValueError as exc:
        raise bad(f"step must be seconds or <n>s|m|h|d: {exc}", "step") from None


def pnl_rows(src: HistorySources, strategy: str | None, symbol: str | None, start: int | None, end: int | None,
             step: int | None) -> dict[str, Any]:
    from procs.risk.history import downsample, history_files, read_history

    if src.pnl_dir is None:
        return {"rows": [], "count": 0, "why": "the history is off ([risk.history] enabled = false)"}
    files = [p.name for p in history_files(src.pnl_dir, start, end)]
    table = read_history(src.pnl_dir, start, end, strategy, symbol)
    rows = table.to_pylist()
    for r in rows:
        r["ts"] = int(r["ts"].timestamp() * 1000)
    if step:
        rows = downsample(rows, step)
    return {"rows": rows, "count": len(rows), "files": files, "dir": str(src.pnl_dir)}


def history_routes(src: HistorySources, bad_request: type[Exception]) -> list[Route]:
    """The two GET routes, for ``make_app`` to add; ``bad_request(reason, field)`` is its 400."""
    BadRequest = bad_request  # noqa: N806 - the class the app's error middleware answers 400 for

    async def pnl(request: web.Request) -> web.Response:
        now = int(time.time() * 1000)
        start = _time_arg(request, "from", now - DAY_MS, BadRequest)
        end = _time_arg(request, "to", None, BadRequest)
        step = _step_ms(request.query.get("step"), BadRequest)
        if start is not None and end is not None and end <= start:
            raise BadRequest(f"to must be after from: from={start} to={end}", "to")
        q = request.query
        body = await asyncio.get_running_loop().run_in_executor(
            None, pnl_rows, src, q.get("strategy") or None, q.get("symbol") or None, start, end, step)
        if body["count"] > MAX_ROWS:
            raise BadRequest(f"{body['count']} rows, more than {MAX_ROWS}: pass a step or a shorter span", "step")
        body.update({"from": start, "to": end, "step_ms": step})
        return web.json_response(body)

    async def bars(request: web.Request) -> web.Response:
        from procs.tools.bars import interval_ms

        q = request.query
        try:
            ms = interval_ms(q.get("interval", "1m"))
        except ValueError as exc:
            raise BadRequest(str(exc), "interval") from None
        start, end = _time_arg(request, "from", None, BadRequest), _time_arg(request, "to", None, BadRequest)
        symbol = (q.get("symbol") or "").upper() or None
        got, problems = await asyncio.get_running_loop().run_in_executor(None, src.bars, ms, symbol)
        rows = got.rows(start, end)
        return web.json_response({"bars": rows, "count": len(rows), "interval_ms": ms,
                                  "files": [p.name for p in src.record_files()],
                                  "dir": str(src.record_dir) if src.record_dir else None,
                                  "notes": [p for p in problems if "still being written" not in p]})

    when = {"type": "string", "description": "ISO 8601 UTC or epoch milliseconds"}
    return [
        Route("GET", "/api/history/pnl", pnl, "risk's P&L history (per strategy and symbol, and the account)",
              {200: "rows"}, tag="history",
              params=(Param("strategy", {"type": "string"}, "a strategy id; * = the account row"),
                      Param("symbol", {"type": "string"}, "a symbol"),
                      Param("from", when, "start (default 24 hours ago)"), Param("to", when, "end (default now)"),
                      Param("step", {"type": "string"}, "seconds, or 1s/1m/5m/1h: the last row of each step"))),
        Route("GET", "/api/history/bars", bars, "OHLCV bars of the recorded trades", {200: "bars"}, tag="history",
              params=(Param("symbol", {"type": "string"}, "a symbol (default all)"),
                      Param("interval", {"type": "string", "default": "1m"}, "1s, 1m, 5m, 1h, 1d ..."),
                      Param("from", when, "start"), Param("to", when, "end"))),
    ]
