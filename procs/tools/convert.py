"""``b25 convert FILE... --to parquet DIR``: recordings as Parquet tables for DuckDB, polars, pandas.

Writes two tables into DIR (files given together continue one chain, as for ``b25 book``):

* ``books.parquet``: the book after every applied depth event, rebuilt with market_data's own code
  (``Rebuilder``, as ``b25 book``): ``symbol``, ``ts_event`` (the exchange's event time),
  ``ts_recv`` (local receive time), ``update_id`` (the event's last update id), then
  ``bid_px_1..N``, ``bid_qty_1..N``,
  ``ask_px_1..N``, ``ask_qty_1..N`` (level 1 = the touch; null where the book has fewer levels);
  N = ``--depth`` (default 5).
* ``trades.parquet``: every trade and aggregate trade as recorded (``Recordings.trade_of``):
  ``symbol``, ``trade_time``, ``event_time``, ``ts_recv``, ``trade_id``, ``first_trade_id``,
  ``last_trade_id``, ``price``, ``qty``, ``buyer_is_maker``, ``source`` (the venue's stream name).

Times are UTC timestamps (ms for the exchange's, ns for the receive time); prices and quantities
float64 (decimal text -> float, the nearest double). Rows are written in row groups of
``ROW_GROUP`` as they come, so memory stays flat on long recordings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from procs.book.rebuild import Rebuilder
from procs.book.sync import BookSync
from procs.tools.bars import recordings
from procs.venue.adapters import decode_venue, open_venue
from procs.venue.messages import DepthDiff, Frame

ROW_GROUP = 100_000


def books_schema(depth: int):  # -> pyarrow.Schema
    import pyarrow as pa

    fields = [("symbol", pa.string()), ("ts_event", pa.timestamp("ms", tz="UTC")),
              ("ts_recv", pa.timestamp("ns", tz="UTC")), ("update_id", pa.int64())]
    for side in ("bid", "ask"):
        fields += [(f"{side}_px_{i}", pa.float64()) for i in range(1, depth + 1)]
        fields += [(f"{side}_qty_{i}", pa.float64()) for i in range(1, depth + 1)]
    return pa.schema(fields)


def trades_schema():  # -> pyarrow.Schema
    import pyarrow as pa

    return pa.schema([("symbol", pa.string()), ("trade_time", pa.timestamp("ms", tz="UTC")),
                      ("event_time", pa.timestamp("ms", tz="UTC")), ("ts_recv", pa.timestamp("ns", tz="UTC")),
                      ("trade_id", pa.int64()), ("first_trade_id", pa.int64()), ("last_trade_id", pa.int64()),
                      ("price", pa.float64()), ("qty", pa.float64()), ("buyer_is_maker", pa.bool_()),
                      ("source", pa.string())])


class _TableWriter:
    """Columns filled row by row, written as a row group every ``ROW_GROUP`` rows."""

    def __init__(self, path: Path, schema: Any) -> None:
        import pyarrow.parquet as pq

        self.schema = schema
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.cols: dict[str, list] = {n: [] for n in schema.names}
        self.rows = 0
        self.pending = 0

    def add(self, row: dict[str, Any]) -> None:
        for n, col in self.cols.items():
            col.append(row.get(n))
        self.pending += 1
        if self.pending >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        self.writer.write_table(pa.Table.from_pydict(self.cols, schema=self.schema))
        self.rows += self.pending
        self.pending = 0
        for col in self.cols.values():
            col.clear()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def convert(paths: list[Path], out_dir: Path, depth: int = 5, kind: str | None = None,
            symbols: set[str] | None = None, problems: list[str] | None = None) -> dict[str, int]:
    """Write ``books.parquet`` and ``trades.parquet`` into ``out_dir``; rows written per table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    books = _TableWriter(out_dir / "books.parquet", books_schema(depth))
    trades = _TableWriter(out_dir / "trades.parquet", trades_schema())
    current: list[Frame] = []

    def applied(sync: BookSync, ev: DepthDiff) -> None:
        book = sync.book
        assert book is not None
        ps, qs = 10.0 ** -book.instrument.price_scale, 10.0 ** -book.instrument.qty_scale
        row: dict[str, Any] = {"symbol": sync.symbol, "ts_event": ev.ts_event_ms or None,
                               "ts_recv": current[0].ts_recv_ns, "update_id": ev.last_id}
        for side, levels in (("bid", book.bid_levels(depth)), ("ask", book.ask_levels(depth))):
            for i, (px, qty) in enumerate(levels, 1):
                row[f"{side}_px_{i}"] = round(px * ps, book.instrument.price_scale)
                row[f"{side}_qty_{i}"] = round(qty * qs, book.instrument.qty_scale)
        books.add(row)

    venue = open_venue(decode_venue({}))  # the recordings b25 reads are the default venue's
    recorded = venue.recordings()
    rb = Rebuilder(venue.market_codec(), recorded.instruments, symbols=symbols, on_applied=applied,
                   keep=max(64, 2 * depth), fast=False)
    try:
        for fr in recorded.iter_frames(list(paths), kind, problems if problems is not None else []):
            current[:] = [fr]
            rb.feed(fr)
            e = recorded.trade_of(fr)
            if e is not None and (symbols is None or e.symbol in symbols):
                trades.add({"symbol": e.symbol, "trade_time": e.trade_time_ms, "event_time": e.event_time_ms,
                            "ts_recv": e.ts_recv_ns, "trade_id": e.trade_id, "first_trade_id": e.first_trade_id,
                            "last_trade_id": e.last_trade_id, "price": float(e.price), "qty": float(e.qty),
                            "buyer_is_maker": e.buyer_is_maker, "source": e.source})
    finally:
        books.close()
        trades.close()
    if problems is not None:
        problems += [f"{p.symbol}: {p.status.name} {p.why}" for p in rb.problems]
    return {"books": books.rows, "trades": trades.rows}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="recordings, in order (one chain)")
    parser.add_argument("--to", dest="to", nargs=2, required=True, metavar=("FORMAT", "DIR"),
                        help="'parquet DIR': where books.parquet and trades.parquet go")
    parser.add_argument("--depth", type=int, default=5, help="book levels per side in books.parquet (default 5)")
    parser.add_argument("--symbol", action="append", default=None, help="only this symbol (repeatable)")
    parser.add_argument("--kind", choices=recordings().markets, default=None,
                        help="the venue's market, overriding detection")


def run(args: argparse.Namespace) -> int:
    fmt, out = args.to
    if fmt != "parquet":
        print(f"b25 convert: --to supports parquet only: format={fmt!r}", file=sys.stderr)
        return 2
    if not 1 <= args.depth <= 1000:
        print(f"b25 convert: --depth must be 1..1000: depth={args.depth}", file=sys.stderr)
        return 2
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        print(f"b25 convert: recording not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    problems: list[str] = []
    try:
        counts = convert(args.files, Path(out), args.depth, args.kind,
                         {s.upper() for s in args.symbol} if args.symbol else None, problems)
    except (OSError, ValueError) as exc:
        print(f"b25 convert: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"b25 convert: warning: {p}", file=sys.stderr)
    print(f"b25 convert: {counts['books']} book rows -> {Path(out) / 'books.parquet'}, "
          f"{counts['trades']} trades -> {Path(out) / 'trades.parquet'}", file=sys.stderr)
    return 0
