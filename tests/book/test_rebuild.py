"""Every real recording rebuilds without a gap, and the book agrees with the exchange's bookTicker."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs.book.sync import BookSync, SyncState
from procs.venue.messages import DepthDiff, TopOfBook
from tests.support.recordings import iter_frames, rebuilder

# (files, {symbol: applied diffs} from the README, bookTicker checks "book at the same u" from
# the README or None where it gives none)
CASES = [
    (["hftbacktest-binance/usdm/btcusdt_20240808.gz"], {"BTCUSDT": 6547}, 126),
    (["hftbacktest-binance/usdm/btcusdt_20240718.gz", "hftbacktest-binance/usdm/btcusdt_20240719.gz"],
     {"BTCUSDT": 9017}, 106),
    (["hftbacktest-binance/usdm/ethusdt_20240718.gz"], {"ETHUSDT": 3268}, 28),
    (["hftbacktest-binance/usdm/btcusdt_20230404.dat.gz"], {"BTCUSDT": 4322}, None),
    (["hftbacktest-binance/cm/btcusd_perp_20240808.gz"], {"BTCUSD_PERP": 26824}, None),
    (["hftbacktest-binance/spot/btcusdt_20240808.gz"], {"BTCUSDT": 3449}, None),
    (["cryptofeed-binance/BINANCE_FUTURES.ws.1.0"],
     {"SUSHIUSDT": 252, "AKROUSDT": 188, "KEEPUSDT": 132, "CTKUSDT": 180}, None),
    (["cryptofeed-binance/BINANCE_DELIVERY.ws.1.0"], None, None),
    (["cryptofeed-binance/BINANCE.ws.1.0"], None, None),
]


class _Checker:
    """Book best bid/ask per applied u, and bookTicker values per u, compared at the end."""

    def __init__(self) -> None:
        self.book_at: dict[tuple[str, int], tuple] = {}
        self.ticker_at: dict[tuple[str, int], tuple] = {}
        self.same_u_now = 0  # tickers arriving while the book sits exactly at their u
        self.same_u_now_mismatch = 0

    def on_applied(self, sync: BookSync, ev: DepthDiff) -> None:
        b = sync.book
        assert b is not None
        self.book_at[(sync.symbol, ev.last_id)] = (b.best_bid(), b.best_ask())

    def on_ticker(self, sync: BookSync, tk: TopOfBook) -> None:
        b = sync.book
        assert b is not None
        i = b.instrument
        val = ((i.price_to_ticks(tk.bid_px), i.qty_to_lots(tk.bid_qty)),
               (i.price_to_ticks(tk.ask_px), i.qty_to_lots(tk.ask_qty)))
        self.ticker_at[(sync.symbol, tk.update_id)] = val
        if sync.state == SyncState.LIVE and sync.last_u == tk.update_id:
            self.same_u_now += 1
            self.same_u_now_mismatch += (b.best_bid(), b.best_ask()) != val


@pytest.mark.parametrize("fast", [False, True], ids=["python", "numba"])
@pytest.mark.parametrize("files,applied,same_u", CASES, ids=["/".join(c[0][-1].split("/")[-2:]) for c in CASES])
def test_rebuild_when_real_recording_then_no_gap_and_book_matches_book_ticker(
        real_data: Path, files: list[str], applied: dict[str, int] | None, same_u: int | None,
        fast: bool) -> None:
    if fast:
        pytest.importorskip("numba")
    chk = _Checker()
    rb = rebuilder(on_applied=chk.on_applied, on_ticker=chk.on_ticker, fast=fast)
    for frame in iter_frames([real_data / f for f in files]):
        rb.feed(frame)

    assert rb.problems == []
    assert rb.decoder.decode_errors == 0
    assert rb.syncs and all(s.state == SyncState.LIVE for s in rb.syncs.values())
    assert all(s.counters.gaps == 0 and s.counters.crossed == 0 for s in rb.syncs.values())
    if applied is not None:
        assert {sym: s.counters.applied for sym, s in rb.syncs.items()} == applied
    common = [k for k in chk.ticker_at if k in chk.book_at]
    assert len(common) > 0
    assert [k for k in common if chk.book_at[k] != chk.ticker_at[k]] == []
    assert chk.same_u_now_mismatch == 0
    if same_u is not None:
        assert chk.same_u_now == same_u


def test_rebuild_when_first_futures_event_has_u_equal_snapshot_id_then_it_is_applied(real_data: Path) -> None:
    firsts: list[int] = []
    rb = rebuilder(on_applied=lambda s, ev: firsts.append(ev.last_id) if not firsts else None)
    for frame in iter_frames(real_data / "hftbacktest-binance/usdm/ethusdt_20240718.gz"):
        rb.feed(frame)
    assert firsts == [4984028386786]  # == lastUpdateId of the inline snapshot (README)


def test_rebuild_when_spot_first_event_abuts_snapshot_then_it_is_applied(real_data: Path) -> None:
    first_u: dict[str, int] = {}
    first_U: dict[str, int] = {}

    def on_applied(sync: BookSync, ev: DepthDiff) -> None:
        if sync.symbol not in first_U:
            first_U[sync.symbol] = ev.first_id
            first_u[sync.symbol] = ev.last_id

    snaps: dict[str, int] = {}
    rb = rebuilder(on_applied=on_applied)
    for frame in iter_frames(real_data / "cryptofeed-binance/BINANCE.ws.1.0"):
        if frame.snapshot_symbol:
            snaps[frame.snapshot_symbol] = int(frame.raw.split(b":", 2)[1].split(b",")[0])
        rb.feed(frame)
    assert set(first_U) == set(snaps) == {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"}
    assert all(first_U[s] == snaps[s] + 1 for s in snaps)  # U == L + 1: abutting, accepted


def test_rebuild_when_fast_and_python_books_then_identical_full_depth(real_data: Path) -> None:
    pytest.importorskip("numba")
    books = []
    for fast in (False, True):
        rb = rebuilder(fast=fast)
        for frame in iter_frames(real_data / "cryptofeed-binance/BINANCE_DELIVERY.ws.1.0"):
            rb.feed(frame)
        books.append({s: (x.book.bid_levels(), x.book.ask_levels(), x.last_u) for s, x in rb.syncs.items()})
    assert books[0] == books[1] and len(books[0]) == 10
