"""``b25 bars``: OHLCV bars from the trades in recordings, in every format ``b25 book`` reads.

    b25 bars FILE... [--symbol S] --interval 1s|1m|5m|1h|1d [--from T] [--to T] [--out F.parquet|F.csv]

A bar per symbol and interval: open, high, low, close, volume, VWAP, trade count, and the volume
bought and sold by the aggressor (the taker: ``m`` false = the buyer took liquidity).

* **Time**: the exchange's trade time (ms), UTC; a bar is labelled by its open time and holds the
  trades with ``open_time <= trade time < open_time + interval``.
* **Empty intervals are left out**: a bar exists only where at least one trade happened (no
  forward-filled close, no zero-volume rows). Fill them in your query if you want a regular grid.
* **Which trades**: single trades; aggregate trades only for a symbol that has no single ones in
  the files (never both, which would count every trade twice). An aggregate trade counts as the
  number of trades it covers, as the exchange's own klines count them. A trade id at or below the
  last one seen for its symbol and stream is a duplicate (a file given twice) and is skipped, counted.
  The venue's recording reader (``Recordings.trades``) says what each recorded trade is.
* **Units**: ``volume`` in the exchange's quantity unit (base asset; contracts for COIN-M), VWAP
  weighted by it. Sums are exact (Decimal) and converted to float64 once, at the end.

Bars from several files merge exactly (``BarSet.merge``): the monitor's ``/api/history/bars``
keeps one ``BarSet`` per finished recorder file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from procs.venue.adapters import decode_venue, open_venue
from procs.venue.messages import RecordedTrade
from procs.venue.protocols import Recordings

INTERVAL_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_INTERVAL = re.compile(r"^(\d+)([smhd])$")
COLUMNS = ("symbol", "open_time", "open", "high", "low", "close", "volume", "vwap", "trades",
           "buy_volume", "sell_volume")


def interval_ms(text: str) -> int:
    """``"1s"``, ``"5m"``, ``"1h"``, ``"1d"`` ... -> milliseconds; ValueError naming the value."""
    m = _INTERVAL.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"interval must be <n>s, <n>m, <n>h or <n>d with n > 0 (1s, 1m, 5m, 1h, 1d): "
                         f"interval={text!r}")
    n = int(m.group(1)) * INTERVAL_UNITS_MS[m.group(2)]
    if INTERVAL_UNITS_MS["d"] % n and n % INTERVAL_UNITS_MS["d"]:
        raise ValueError(f"interval must divide a day (or be whole days), so bars line up on UTC midnight: "
                         f"interval={text!r}")
    return n


def parse_time_ms(text: str) -> int:
    """A time for ``--from``/``--to``: ISO 8601 (UTC unless it says otherwise) or epoch ms."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        d = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time (ISO 8601 YYYY-MM-DDTHH:MM:SSZ, or epoch ms): {text!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return int(d.timestamp() * 1000)


TradeEvent = RecordedTrade  # one trade as recorded (procs.venue.messages)


def recordings() -> Recordings:
    """The default venue's recording readers (the recordings b25 reads are that venue's)."""
    return open_venue(decode_venue({})).recordings()


def iter_trade_events(paths: Iterable[str | Path], kind: str | None = None,
                      problems: list[str] | None = None) -> Iterator[TradeEvent]:
    """Every trade and aggregate trade of the recordings, in file order (duplicates kept); a
    file cut short ends the stream, noted in ``problems``."""
    return recordings().trades(list(paths), kind, problems if problems is not None else [])


@dataclass
class Bar:
    """One bar's running sums (exact)."""

    open_key: tuple[int, int]  # (trade time, trade id) of the first trade
    open: Decimal
    close_key: tuple[int, int]
    close: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)  # sum of price * qty, for the VWAP
    trades: int = 0
    buy_volume: Decimal = Decimal(0)
    sell_volume: Decimal = Decimal(0)

    def merge(self, other: Bar) -> None:
        if other.open_key < self.open_key:
            self.open_key, self.open = other.open_key, other.open
        if other.close_key > self.close_key:
            self.close_key, self.close = other.close_key, other.close
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.volume += other.volume
        self.notional += other.notional
        self.trades += other.trades
        self.buy_volume += other.buy_volume
        self.sell_volume += other.sell_volume


@dataclass
class BarSet:
    """Bars of one interval for any number of symbols: ``add`` trades, ``merge`` another set."""

    interval_ms: int
    bars: dict[tuple[str, int], Bar] = field(default_factory=dict)  # (symbol, open time ms) -> bar

    def add(self, e: TradeEvent) -> None:
        px, qty = Decimal(e.price), Decimal(e.qty)
        open_ms = e.trade_time_ms - e.trade_time_ms % self.interval_ms
        key = (e.trade_time_ms, e.trade_id)
        b = self.bars.get((e.symbol, open_ms))
        if b is None:
            b = self.bars[(e.symbol, open_ms)] = Bar(key, px, key, px, px, px)
        else:
            if key < b.open_key:
                b.open_key, b.open = key, px
            if key >= b.close_key:
                b.close_key, b.close = key, px
            if px > b.high:
                b.high = px
            if px < b.low:
                b.low = px
        b.volume += qty
        b.notional += px * qty
        b.trades += e.count
        if e.buyer_is_maker:
            b.sell_volume += qty
        else:
            b.buy_volume += qty

    def merge(self, other: BarSet) -> None:
        if other.interval_ms != self.interval_ms:
            raise ValueError(f"cannot merge bars of {other.interval_ms} ms into {self.interval_ms} ms")
        for k, b in other.bars.items():
            mine = self.bars.get(k)
            if mine is None:
                self.bars[k] = Bar(**vars(b))
            else:
                mine.merge(b)

    def symbols(self) -> set[str]:
        return {sym for sym, _ in self.bars}

    def combined(self, fallback: BarSet) -> BarSet:
        """These bars, plus ``fallback``'s for the symbols that have none here (aggregate trades where no single ones)."""
        mine = self.symbols()
        out = BarSet(self.interval_ms, dict(self.bars))
        out.bars.update({k: b for k, b in fallback.bars.items() if k[0] not in mine})
        return out

    def rows(self, start_ms: int | None = None, end_ms: int | None = None) -> list[dict]:
        """Bars as plain rows, by symbol then open time; ``start_ms <= open_time < end_ms``."""
        out = []
        for (sym, t), b in sorted(self.bars.items()):
            if (start_ms is not None and t < start_ms) or (end_ms is not None and t >= end_ms):
                continue
            out.append({"symbol": sym, "open_time": t, "open": float(b.open), "high": float(b.high),
                        "low": float(b.low), "close": float(b.close), "volume": float(b.volume),
                        "vwap": float(b.notional / b.volume) if b.volume else float(b.close),
                        "trades": b.trades, "buy_volume": float(b.buy_volume),
                        "sell_volume": float(b.sell_volume)})
        return out


def compute_bars(paths: Iterable[str | Path], interval: str | int, symbols: set[str] | None = None,
                 kind: str | None = None, problems: list[str] | None = None,
                 skipped: dict[str, int] | None = None) -> BarSet:
    """The bars of every trade in the recordings (see the module docstring for the rules)."""
    ms = interval if isinstance(interval, int) else interval_ms(interval)
    single, aggregated = BarSet(ms), BarSet(ms)
    last: dict[tuple[str, str], int] = {}
    for e in iter_trade_events(paths, kind, problems):
        if symbols is not None and e.symbol not in symbols:
            continue
        key = (e.symbol, e.source)
        if e.trade_id <= last.get(key, -1):  # a duplicate: a file given twice, a stream resent
            if skipped is not None:
                skipped[e.symbol] = skipped.get(e.symbol, 0) + 1
            continue
        last[key] = e.trade_id
        (aggregated if e.aggregated else single).add(e)
    return single.combined(aggregated)


def bars_table(rows: list[dict]):  # -> pyarrow.Table
    """Rows as an Arrow table: ``open_time`` a UTC timestamp (ms), prices and volumes float64."""
    import pyarrow as pa

    schema = pa.schema([("symbol", pa.string()), ("open_time", pa.timestamp("ms", tz="UTC")),
                        ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()),
                        ("close", pa.float64()), ("volume", pa.float64()), ("vwap", pa.float64()),
                        ("trades", pa.int64()), ("buy_volume", pa.float64()), ("sell_volume", pa.float64())])
    return pa.Table.from_pylist(rows, schema=schema)


def write_table(table, out: Path) -> None:  # table: pyarrow.Table
    """``.parquet`` or ``.csv`` by the file's suffix."""
    if out.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out, compression="zstd")
    elif out.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out)
    else:
        raise ValueError(f"--out must end in .parquet or .csv: out={out}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="recordings (any format b25 reads)")
    parser.add_argument("--symbol", action="append", default=None, help="only this symbol (repeatable)")
    parser.add_argument("--interval", required=True, help="1s, 1m, 5m, 1h, 1d (any <n>s|m|h|d dividing a day)")
    parser.add_argument("--from", dest="start", default=None, metavar="T", help="first bar open time (ISO or ms)")
    parser.add_argument("--to", dest="end", default=None, metavar="T", help="bars opening before this time")
    parser.add_argument("--out", type=Path, default=None, metavar="F", help="F.parquet or F.csv (default: CSV on stdout)")
    parser.add_argument("--kind", choices=recordings().markets, default=None, help="the venue's market, overriding detection")


def run(args: argparse.Namespace) -> int:
    try:
        ms = interval_ms(args.interval)
        start = parse_time_ms(args.start) if args.start else None
        end = parse_time_ms(args.end) if args.end else None
        if args.out is not None and args.out.suffix not in (".parquet", ".csv"):
            raise ValueError(f"--out must end in .parquet or .csv: out={args.out}")
        missing = [str(f) for f in args.files if not f.exists()]
        if missing:
            raise ValueError(f"recording not found: {', '.join(missing)}")
    except ValueError as exc:
        print(f"b25 bars: {exc}", file=sys.stderr)
        return 2
    problems: list[str] = []
    skipped: dict[str, int] = {}
    try:
        bars = compute_bars(args.files, ms, {s.upper() for s in args.symbol} if args.symbol else None,
                            args.kind, problems, skipped)
    except (OSError, ValueError) as exc:
        print(f"b25 bars: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"b25 bars: warning: {p}", file=sys.stderr)
    for sym, n in sorted(skipped.items()):
        print(f"b25 bars: skipped {n} duplicate trades of {sym}", file=sys.stderr)
    table = bars_table(bars.rows(start, end))
    if args.out is None:
        import pyarrow.csv as pacsv

        try:
            pacsv.write_csv(table, sys.stdout.buffer)
            sys.stdout.flush()
        except BrokenPipeError:
            sys.stderr.close()
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, args.out)
    print(f"b25 bars: {table.num_rows} bars -> {args.out}", file=sys.stderr)
    return 0
