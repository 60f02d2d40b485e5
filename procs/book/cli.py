"""``b25 book FILE... [--symbol S] [--depth N] [--kind MARKET]``: rebuild books offline.

Uses exactly the live code (``BookSync`` + ``FastBook``, or ``Book`` with ``--engine python``,
through ``Rebuilder``, with the venue's codec and recording readers: ``[venue] kind``'s, the
default one here), so its output is the reference the live path is compared with. Prints one JSON line per applied depth event,
best levels first, prices and quantities as normalized decimal strings::

    {"symbol": "BTCUSDT", "u": 4984028370730, "bids": [["63943.9", "46.372"], ...], "asks": [...]}

Every resync the recording forces (gap, bad input, crossed book) is logged on stderr with the
update ids. Exit status: 0 when every book ended live, 1 when a gap (or other problem) was never
bridged by a later snapshot, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from procs.book.book import Book
from procs.book.rebuild import Problem, Rebuilder
from procs.book.sync import BookSync
from procs.core import log
from procs.core.instruments import int_to_decimal
from procs.venue.adapters import decode_venue, open_venue
from procs.venue.messages import DepthDiff
from procs.venue.protocols import Venue


def _venue() -> Venue:  # the default venue: its codec and its recording formats
    return open_venue(decode_venue({}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``b25 book``."""
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="recordings, in order (several continue one chain)")
    parser.add_argument("--symbol", action="append", default=None,
                        help="only this symbol (repeatable); default: every symbol")
    parser.add_argument("--depth", type=int, default=20, help="levels per side to print (default 20)")
    parser.add_argument("--kind", choices=_venue().recordings().markets, default=None,
                        help="the venue's market, overriding detection from the URL, path or data")
    parser.add_argument("--exchange-info", type=Path, default=None,
                        help="the venue's instrument list (a file) for tick/lot scales")
    parser.add_argument("--engine", choices=("numba", "python"), default=None,
                        help="book implementation: FastBook (numba, default when installed) or Book")


class _Printer:
    """Formats book lines; decimal text per integer is cached since the same levels repeat."""

    def __init__(self, depth: int, write: Callable[[bytes], object]) -> None:
        self.depth = depth
        self.write = write
        self._text: dict[tuple[int, int], str] = {}

    def _dec(self, value: int, scale: int) -> str:
        key = (value, scale)
        s = self._text.get(key)
        if s is None:
            if len(self._text) > 1 << 20:
                self._text.clear()
            s = self._text[key] = '"' + int_to_decimal(value, scale) + '"'
        return s

    def _side(self, levels: list[tuple[int, int]], ps: int, qs: int) -> str:
        dec = self._dec
        return "[" + ", ".join(f"[{dec(t, ps)}, {dec(q, qs)}]" for t, q in levels) + "]"

    def __call__(self, sync: BookSync, ev: DepthDiff) -> None:
        book: Book | None = sync.book
        assert book is not None
        ps, qs = book.instrument.price_scale, book.instrument.qty_scale
        bids = self._side(book.bid_levels(self.depth), ps, qs)
        asks = self._side(book.ask_levels(self.depth), ps, qs)
        line = f'{{"symbol": "{sync.symbol}", "u": {ev.last_id}, "bids": {bids}, "asks": {asks}}}\n'
        self.write(line.encode())


def _has_numba() -> bool:
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def _report(p: Problem) -> None:
    log.warn("book_resync_needed", symbol=p.symbol, status=p.status.name, why=p.why, ts_recv_ns=p.ts_recv_ns)


def run(args: argparse.Namespace) -> int:
    """Rebuild and print; returns the exit status."""
    if args.depth < 1:
        log.error("book_bad_args", reason="--depth must be >= 1", depth=args.depth)
        return 2
    venue = _venue()
    recordings = venue.recordings()
    instruments = None
    out = sys.stdout.buffer
    printer = _Printer(args.depth, out.write)
    engine = getattr(args, "engine", None) or ("numba" if _has_numba() else "python")
    fast = engine == "numba"
    try:
        if args.exchange_info is not None:
            info = recordings.instruments(recordings.markets[0], args.exchange_info)
            instruments = {k: info for k in recordings.markets}
        rb = Rebuilder(venue.market_codec(raw_levels=fast), recordings.instruments,
                       symbols=set(args.symbol) if args.symbol else None, instruments=instruments,
                       on_applied=printer, on_problem=_report, keep=max(64, 2 * args.depth), fast=fast)
        for frame in recordings.iter_frames(args.files, market=args.kind):
            rb.feed(frame)
        out.flush()
    except BrokenPipeError:  # `b25 book ... | head`: the reader is done, so are we
        sys.stderr.close()
        return 0
    except (OSError, ValueError) as exc:
        log.error("book_read_failed", reason=str(exc))
        return 2
    status = 0
    for symbol in rb.unbridged():
        last = [p for p in rb.problems if p.symbol == symbol][-1]
        log.error("book_gap_unbridged", symbol=symbol, status=last.status.name, why=last.why)
        status = 1
    if rb.decoder.decode_errors:
        log.warn("book_decode_errors", count=rb.decoder.decode_errors)
    if not rb.syncs:
        log.warn("book_no_depth", reason="no depth events for the selected symbols")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="b25 book", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
