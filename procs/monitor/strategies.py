"""GET /api/strategies: per strategy, its state, positions, P&L, open orders and last error.

The strategy engine writes what each strategy is doing to its status file
(``procs.strategy.config.status_file``, rewritten within a second of a change); the monitor reads
it, marks the positions at risk's marks (``risk.state``) for the unrealized P&L, and converts
ticks and lots to prices and quantities with each symbol's instrument. The strategy process's
own status block says whether the file is current: when the process is not running, every
strategy's state is ``not running`` and ``why`` says what the status block says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from procs.core import messages as M
from procs.core.instruments import Instrument

SIDES = {M.BUY: "BUY", M.SELL: "SELL"}
TYPES = {M.LIMIT: "LIMIT", M.MARKET: "MARKET"}


def read_status_file(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the engine's status document, "") or (None, why not)."""
    try:
        return json.loads(path.read_text()), ""
    except FileNotFoundError:
        return None, f"no strategy status file at {path} (the strategy process has not written one)"
    except (OSError, ValueError) as exc:
        return None, f"strategy status file {path} unreadable: {exc}"


def _unit(inst: Instrument | None) -> float:
    """Quote value of one tick times one lot (as the engine computes it)."""
    if inst is None:
        return 0.0
    return float(inst.contract_size) * 10.0 ** -(inst.price_scale + inst.qty_scale)


def _price(inst: Instrument | None, ticks: float) -> str | float:
    if inst is None:
        return ticks
    if float(ticks).is_integer():
        return inst.ticks_to_price(int(ticks))
    return round(ticks * 10.0 ** -inst.price_scale, inst.price_scale + 4)  # an average: not on the tick grid


def _qty(inst: Instrument | None, lots: int) -> str | int:
    return inst.lots_to_qty(lots) if inst is not None else lots


def strategies_view(doc: dict[str, Any] | None, why: str, process: dict[str, Any], marks: dict[str, int],
                    instruments: dict[str, Instrument]) -> dict[str, Any]:
    """The body of GET /api/strategies from the status document, the strategy process's status
    (``InstanceView.status``) and risk's marks in ticks by symbol (0 = unknown)."""
    running = bool(process.get("fresh"))
    out: dict[str, Any] = {}
    for sid, row in sorted((doc or {}).get("strategies", {}).items()):
        positions: dict[str, Any] = {}
        totals = {"realized": 0.0, "unrealized": 0.0, "fees": 0.0}
        for sym, p in row.get("positions", {}).items():
            inst = instruments.get(sym)
            mark = marks.get(sym, 0)
            unrealized = (mark - p["avg_px"]) * p["qty"] * _unit(inst) if mark and p["qty"] else 0.0
            positions[sym] = {"qty": _qty(inst, p["qty"]), "avg_price": _price(inst, p["avg_px"]) if p["qty"] else None,
                              "mark": _price(inst, mark) if mark else None, "realized": round(p["realized"], 8),
                              "unrealized": round(unrealized, 8), "fees": round(p["fees"], 8),
                              "net": round(p["realized"] + unrealized - p["fees"], 8), "volume": _qty(inst, p["volume"]),
                              "fills": p["fills"]}
            totals["realized"] += p["realized"]
            totals["unrealized"] += unrealized
            totals["fees"] += p["fees"]
        orders = []
        for o in row.get("open_orders", []):
            inst = instruments.get(o["symbol"])
            orders.append({"tag": o["tag"], "symbol": o["symbol"], "side": SIDES.get(o["side"], str(o["side"])),
                           "type": TYPES.get(o["order_type"], str(o["order_type"])),
                           "tif": M.TIF_NAMES.get(o["tif"], str(o["tif"])),
                           "price": _price(inst, o["price"]) if o["order_type"] == M.LIMIT else None,
                           "qty": _qty(inst, o["qty"]), "filled": _qty(inst, o["filled"]), "status": o["status"],
                           "order_id": o["order_id"]})
        out[sid] = {"state": row["state"] if running else "not running", "class": row.get("class", ""),
                    "number": row.get("num", 0), "symbols": row.get("symbols", []), "version": row.get("version", ""),
                    "positions": positions,
                    "pnl": {k: round(v, 8) for k, v in totals.items()}
                    | {"net": round(totals["realized"] + totals["unrealized"] - totals["fees"], 8)},
                    "open_orders": orders, "last_error": row.get("last_error")}
    body: dict[str, Any] = {"strategies": out, "process": {"running": running, "why": process.get("why", "")},
                            "as_of": (doc or {}).get("ts"),
                            "units": "prices and quantities as the venue writes them; P&L in the quote asset"}
    if why:
        body["why"] = why
    return body
