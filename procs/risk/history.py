"""Live P&L history: risk's ledger, sampled every second, in Parquet day files.

Risk owns the exact ledger (every fill, per strategy and symbol, marked to the book) and reads
every order event as a named consumer, so it samples here; the monitor and the TUI only read the
files. Sampling is a few dict reads once a second in risk's periodic step; encoding and writing
run in a thread of their own (``DayFiles``), fed by a bounded queue, so neither risk's duty cycle
nor anything on the order path waits for a disk (a full queue drops a sample and counts it).

Files, under ``[risk.history] dir``/<instance>/ (default ``run/history/<instance>/``)::

    pnl-YYYYMMDD.parquet        the UTC day's rows, one row group per seal (every ``seal_s``)
    pnl-YYYYMMDD.tail.parquet   the rows since the last seal, rewritten every sample

Both are whole Parquet files at every moment (each is written beside and renamed into place), so a
reader (DuckDB ``'pnl-*.parquet'``, ``read_history``) never sees a torn file, and a SIGKILL of risk
loses only the sample being written: the tail holds everything up to the previous second. A seal
rewrites the day file with the tail as one more row group (docs/decisions/036-pnl-history-day-files.md:
an in-place append leaves no readable file while Parquet's footer is being written).
At start, a tail left by a killed risk is sealed into its day first; at the UTC day's end, and on a
clean stop, the tail is sealed and removed, so a finished day is one file.

Rows, per sample (``ts``: wall-clock UTC, ms): one per (strategy, symbol) that has traded or has an
open order, with ``position`` (base quantity), ``realized``, ``unrealized``, ``fees``, ``net_pnl``
(quote), ``open_orders``, ``mark``; and one account row (``strategy = symbol = "*"``) with the sums,
``equity`` (capital + net P&L) and ``drawdown`` (from the equity peak). Risk's ledger starts at its
own start (positions found on the exchange then are strategy ``seed``); ``open_orders`` counts the
orders risk has seen open since it started.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from procs.core import log
from procs.core import messages as M
from procs.risk.ledger import MANUAL, SEED, Ledger

ACCOUNT = "*"
_OPENING = (M.ORDER_SENT, M.ORDER_ACCEPTED, M.ORDER_PARTIALLY_FILLED)
_CLOSING = (M.ORDER_FILLED, M.ORDER_CANCELED, M.ORDER_EXPIRED, M.ORDER_REJECTED, M.ORDER_DENIED)
FIELDS = ("ts", "strategy", "symbol", "position", "realized", "unrealized", "fees", "net_pnl", "open_orders",
          "mark", "equity", "drawdown")


def schema():  # -> pyarrow.Schema
    import pyarrow as pa

    return pa.schema([("ts", pa.timestamp("ms", tz="UTC")), ("strategy", pa.string()), ("symbol", pa.string()),
                      ("position", pa.float64()), ("realized", pa.float64()), ("unrealized", pa.float64()),
                      ("fees", pa.float64()), ("net_pnl", pa.float64()), ("open_orders", pa.int32()),
                      ("mark", pa.float64()), ("equity", pa.float64()), ("drawdown", pa.float64())])


def day_name(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y%m%d")


class OpenOrders:
    """Open orders per (strategy, symbol) from the order events risk reads on ``exec``."""

    def __init__(self) -> None:
        self.open: dict[bytes, tuple[int, int]] = {}  # client order id -> (strategy_id, symbol_id)

    def on_batch(self, batch: np.ndarray) -> None:
        """One batch of OrderEvent records (a view: read before the consumer commits)."""
        for kind, st, sym, cid in zip(batch["kind"].tolist(), batch["strategy_id"].tolist(),
                                      batch["symbol_id"].tolist(), batch["client_order_id"].tolist(), strict=True):
            if not cid:
                continue
            if kind in _OPENING:
                self.open[cid] = (st, sym)
            elif kind in _CLOSING:
                self.open.pop(cid, None)

    def counts(self) -> dict[tuple[int, int], int]:
        out: dict[tuple[int, int], int] = {}
        for key in self.open.values():
            out[key] = out.get(key, 0) + 1
        return out


def sample_rows(ledger: Ledger, orders: OpenOrders, names: dict[int, str], ts_ms: int) -> list[tuple]:
    """The rows of one sample (see the module docstring), as tuples in ``FIELDS`` order."""
    counts = orders.counts()
    rows = []
    syms = [i.symbol for i in ledger.instruments]
    f = ledger.to_decimal
    cells = {(st, sid) for st, ps in ledger.by_strategy.items() for sid, p in enumerate(ps) if p.fills}
    cells |= set(counts)
    for st, sid in sorted(cells):
        if not 0 <= sid < ledger.n:
            continue
        p = ledger.position(sid, st)
        ins = ledger.instruments[sid]
        mark = ledger.marks[sid]
        unreal = p.unrealized(mark, ledger.factor[sid])
        rows.append((ts_ms, strategy_label(st, names), syms[sid], float(ins.lots_to_qty(p.pos)),
                     float(f(p.realized)), float(f(unreal)), float(f(p.fees)),
                     float(f(p.realized - p.fees + unreal)), counts.get((st, sid), 0),
                     float(ins.ticks_to_price(mark)) if mark > 0 else None, None, None))
    realized, fees, net = ledger.realized(), ledger.fees(), ledger.net_pnl()
    rows.append((ts_ms, ACCOUNT, ACCOUNT, None, float(f(realized)), float(f(net - realized + fees)),
                 float(f(fees)), float(f(net)), sum(counts.values()), None, float(f(ledger.equity())),
                 float(f(max(0, ledger.peak - ledger.equity())))))
    return rows


def strategy_label(strategy_id: int, names: dict[int, str]) -> str:
    return names.get(strategy_id) or {MANUAL: "manual", SEED: "seed"}.get(strategy_id, f"strategy-{strategy_id}")


class DayFiles:
    """The writer's side of the files (one thread; see the module docstring)."""

    def __init__(self, folder: str | Path, seal_s: float = 300.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.seal_s = seal_s
        self.day = ""
        self.tail: list[tuple] = []
        self.last_seal = time.monotonic()
        self.samples = 0
        self.seals = 0
        for t in sorted(self.folder.glob("pnl-*.tail.parquet")):  # left by a killed writer
            self._seal_file(t.name[4:12], _read(t).to_pylist())

    def day_path(self, day: str) -> Path:
        return self.folder / f"pnl-{day}.parquet"

    def tail_path(self, day: str) -> Path:
        return self.folder / f"pnl-{day}.tail.parquet"

    def append(self, rows: list[tuple]) -> None:
        """One sample's rows: into the tail (rewritten now), sealed every ``seal_s`` and at midnight."""
        if not rows:
            return
        day = day_name(rows[0][0])
        if self.day and day != self.day:
            self.seal()
        self.day = day
        self.tail.extend(rows)
        self.samples += 1
        _write(self.tail_path(day), _table(self.tail))
        if time.monotonic() - self.last_seal >= self.seal_s:
            self.seal()

    def seal(self) -> None:
        """The tail into the day file as one more row group; the tail file goes."""
        self.last_seal = time.monotonic()
        if not self.tail:
            return
        self._seal_file(self.day, [dict(zip(FIELDS, r, strict=True)) for r in self.tail])
        self.tail = []

    def _seal_file(self, day: str, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.day_path(day)
        old = pq.ParquetFile(path) if path.exists() else None
        last = _max_ts(old)
        # a kill between the day file's rename and the tail's removal leaves rows in both
        fresh = [r for r in rows if last is None or _ms(r["ts"]) > last]
        if fresh:
            tmp = path.with_name(path.name + ".tmp")
            with pq.ParquetWriter(tmp, schema(), compression="zstd") as w:
                for i in range(old.num_row_groups if old is not None else 0):
                    w.write_table(old.read_row_group(i))
                w.write_table(pa.Table.from_pylist(fresh, schema=schema()))
            os.replace(tmp, path)
            self.seals += 1
        self.tail_path(day).unlink(missing_ok=True)


def _ms(ts: Any) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)


def _max_ts(pf: Any) -> int | None:
    if pf is None or pf.metadata.num_rows == 0:
        return None
    col = pf.schema_arrow.get_field_index("ts")
    best = None
    for i in range(pf.num_row_groups):
        st = pf.metadata.row_group(i).column(col).statistics
        if st is not None and st.has_min_max:
            v = _ms(st.max)
            best = v if best is None else max(best, v)
    return best


def _table(rows: list[tuple]):  # -> pyarrow.Table
    import pyarrow as pa

    cols = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, schema(), strict=True)],
                                schema=schema())


def _write(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _read(path: Path):  # -> pyarrow.Table
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=schema())


class PnlHistory:
    """Risk's side: ``on_exec`` for every exec batch, ``maybe_sample`` from the periodic step."""

    def __init__(self, folder: str | Path, names: dict[int, str], interval_s: float = 1.0, seal_s: float = 300.0,
                 queue_samples: int = 600) -> None:
        self.names = names
        self.interval_ns = int(interval_s * 1e9)
        self.orders = OpenOrders()
        self.q: queue.Queue = queue.Queue(maxsize=queue_samples)
        self.dropped = 0
        self.failures = 0
        self._next = 0
        self.files = DayFiles(folder, seal_s)
        self._thread = threading.Thread(target=self._run, name="pnl-history", daemon=True)
        self._thread.start()

    def on_exec(self, batch: np.ndarray) -> None:
        self.orders.on_batch(batch)

    def maybe_sample(self, ledger: Ledger, now_ns: int | None = None, force: bool = False) -> bool:
        """Hand one sample to the writer when the interval has passed (wall clock), or now."""
        now = time.time_ns() if now_ns is None else now_ns
        if now < self._next and not force:
            return False
        self._next = now - now % self.interval_ns + self.interval_ns
        try:
            self.q.put_nowait(sample_rows(ledger, self.orders, self.names, now // 1_000_000))
        except queue.Full:
            self.dropped += 1
        return True

    def _run(self) -> None:
        while True:
            rows = self.q.get()
            if rows is None:
                break
            try:
                self.files.append(rows)
            except OSError as exc:  # a full disk: say so, keep risk running, try again next second
                self.failures += 1
                log.once(f"history_write:{type(exc).__name__}", "error", "history_write_failed", reason=str(exc))
        try:
            self.files.seal()
        except OSError as exc:
            log.error("history_seal_failed", reason=str(exc))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, seal the tail, stop the thread."""
        try:
            self.q.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


# -- readers (monitor, TUI, tools) ---------------------------------------------------------------
def history_files(folder: str | Path, start_ms: int | None = None, end_ms: int | None = None) -> list[Path]:
    """The day files (and tails) of the days that overlap [start, end), oldest first."""
    out = []
    for p in sorted(Path(folder).glob("pnl-*.parquet")):
        day = p.name[4:12]
        if not day.isdigit():
            continue
        d0 = int(dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC).timestamp() * 1000)
        if (end_ms is not None and d0 >= end_ms) or (start_ms is not None and d0 + 86_400_000 <= start_ms):
            continue
        out.append(p)
    return out


def read_history(folder: str | Path, start_ms: int | None = None, end_ms: int | None = None,
                 strategy: str | None = None, symbol: str | None = None):  # -> pyarrow.Table
    """Every row in [start, end) (optionally one strategy or symbol), sorted by time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = []
    sealed_max: dict[str, int] = {}
    for attempt in range(2):  # a tail sealed between the listing and the read: list again
        tables.clear()
        try:
            for p in history_files(folder, start_ms, end_ms):
                t = _read(p)
                day = p.name[4:12]
                if p.name.endswith(".tail.parquet") and day in sealed_max:
                    t = t.filter(pc.greater(t["ts"], pa.scalar(sealed_max[day], pa.timestamp("ms", tz="UTC"))))
                elif len(t):
                    sealed_max[day] = _ms(pc.max(t["ts"]).as_py())
                tables.append(t)
            break
        except FileNotFoundError:
            if attempt:
                raise
    t = pa.concat_tables(tables) if tables else schema().empty_table()
    mask = None

    def both(m: Any) -> None:
        nonlocal mask
        mask = m if mask is None else pc.and_(mask, m)

    ts_type = pa.timestamp("ms", tz="UTC")
    if start_ms is not None:
        both(pc.greater_equal(t["ts"], pa.scalar(start_ms, ts_type)))
    if end_ms is not None:
        both(pc.less(t["ts"], pa.scalar(end_ms, ts_type)))
    if strategy is not None:
        both(pc.equal(t["strategy"], strategy))
    if symbol is not None:
        both(pc.equal(t["symbol"], symbol))
    if mask is not None:
        t = t.filter(mask)
    return t.sort_by([("ts", "ascending"), ("strategy", "ascending"), ("symbol", "ascending")])


def downsample(rows: Iterable[dict], step_ms: int) -> list[dict]:
    """The last row of each (strategy, symbol) in every ``step_ms`` bucket (a bucket is labelled by
    its start), for charts over long spans."""
    last: dict[tuple[int, str, str], dict] = {}
    for r in rows:
        t = _ms(r["ts"])
        last[(t - t % step_ms, r["strategy"], r["symbol"])] = r | {"ts": t - t % step_ms}
    return [last[k] for k in sorted(last)]
