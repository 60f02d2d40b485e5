"""The seeded generator: deterministic by seed, never crossed, trades that consume the touch."""

from __future__ import annotations

import time

from procs.exchange_sim.config import DEFAULT_EXCHANGE_INFO, GeneratorConfig
from procs.exchange_sim.market.generator import Generator, GenEvent
from procs.exchange_sim.market.true_book import Market
from procs.venue.binance.exchange_info import instruments as load_exchange_info


def _run(seed: int, n: int, **cfg: object) -> tuple[list[GenEvent], Market]:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO), clock_ms=lambda: 0)
    gen = Generator(market, GeneratorConfig(seed=seed, **cfg), ["BTCUSDT", "ETHUSDT"])
    events = gen.seed_books()
    events += [gen.step() for _ in range(n)]
    return events, market


def test_generate_when_same_seed_then_identical_events_and_books() -> None:
    a, ma = _run(42, 5000)
    b, mb = _run(42, 5000)
    c, _ = _run(43, 5000)
    assert a == b
    assert a != c
    for sym in ("BTCUSDT", "ETHUSDT"):
        assert ma.books[sym].bids == mb.books[sym].bids and ma.books[sym].asks == mb.books[sym].asks


def test_generate_when_many_events_then_book_never_crossed_and_ids_chain() -> None:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO))
    gen = Generator(market, GeneratorConfig(seed=7), ["BTCUSDT", "ETHUSDT"])
    gen.seed_books()
    last_u = {s: market.books[s].last_u for s in ("BTCUSDT", "ETHUSDT")}
    ins = market.instruments["BTCUSDT"]
    for _ in range(20000):
        ev = gen.step()
        book = market.books[ev.symbol]
        assert ev.prev_u == last_u[ev.symbol] and ev.first_u > ev.prev_u and ev.last_u >= ev.first_u
        last_u[ev.symbol] = ev.last_u
        bb, ba = book.best_bid_px(), book.best_ask_px()
        assert bb is not None and ba is not None and bb < ba
        # the cached best must equal a full scan
        assert bb == max(book.bids) and ba == min(book.asks)
        assert all(q > 0 and q % ins.step_lots == 0 for q in book.bids.values())
    sizes = [len(market.books[s].bids) for s in ("BTCUSDT", "ETHUSDT")]
    assert all(10 <= n <= 150 for n in sizes), sizes


def test_trade_when_aggressor_then_consumes_touch_first_and_level_reflects_fill() -> None:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO))
    gen = Generator(market, GeneratorConfig(seed=3, trade_prob=0.5), ["BTCUSDT"])
    gen.seed_books()
    book = market.books["BTCUSDT"]
    checked = 0
    for _ in range(3000):
        before_b, before_a = dict(book.bids), dict(book.asks)
        best_b, best_a = max(before_b), min(before_a)
        ev = gen.step()
        if not ev.trades:
            continue
        _, px, qty, buyer_is_maker = ev.trades[0]
        side_before = before_b if buyer_is_maker else before_a
        assert px == (best_b if buyer_is_maker else best_a)  # the touch goes first
        changed = dict(ev.bids if buyer_is_maker else ev.asks)
        assert changed[px] == side_before[px] - qty
        checked += 1
    assert checked > 500


class _Recorder:
    def __init__(self) -> None:
        self.levels: list[tuple[str, bool, int, int]] = []
        self.trades: list[tuple[str, int, int, bool]] = []

    def on_book_level(self, symbol: str, is_bid: bool, price_ticks: int, qty_lots: int) -> None:
        self.levels.append((symbol, is_bid, price_ticks, qty_lots))

    def on_market_trade(self, symbol: str, price_ticks: int, qty_lots: int, buyer_is_maker: bool, ts_ms: int) -> None:
        self.trades.append((symbol, price_ticks, qty_lots, buyer_is_maker))


def test_listener_when_generating_then_sees_every_level_change_and_trade() -> None:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO))
    rec = _Recorder()
    market.add_listener(rec)
    gen = Generator(market, GeneratorConfig(seed=5), ["BTCUSDT"])
    events = gen.seed_books() + [gen.step() for _ in range(2000)]
    assert len(rec.levels) == sum(len(e.bids) + len(e.asks) for e in events)
    assert len(rec.trades) == sum(len(e.trades) for e in events)
    # replaying the listener's level stream rebuilds the true book
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for _sym, is_bid, px, qty in rec.levels:
        side = bids if is_bid else asks
        if qty:
            side[px] = qty
        else:
            side.pop(px, None)
    assert bids == market.books["BTCUSDT"].bids and asks == market.books["BTCUSDT"].asks
    assert market.best_bid("BTCUSDT") == (max(bids), bids[max(bids)])
    assert market.levels("BTCUSDT", False, 3) == sorted(asks.items())[:3]


class _MarkRecorder(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[str, int]] = []

    def on_mark_price(self, symbol: str, price_ticks: int, ts_ms: int) -> None:
        self.marks.append((symbol, price_ticks))


def test_mark_model_when_generating_then_a_smoothed_mid_heard_by_listeners() -> None:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO))
    rec = _MarkRecorder()
    market.add_listener(rec)
    gen = Generator(market, GeneratorConfig(seed=3), ["BTCUSDT"])
    gen.seed_books()
    book = market.books["BTCUSDT"]
    market.update_marks(0.3)
    first = book.mid_ticks()
    assert rec.marks == [("BTCUSDT", first)]  # the first mark is the mid
    lags = 0
    for _ in range(200):
        for _ in range(50):
            gen.step()
        before, mid = book.mark_ticks, book.mid_ticks()
        assert before is not None and mid is not None
        market.update_marks(0.3)
        assert book.mark_ticks == before + round(0.3 * (mid - before))
        lags += book.mark_ticks != mid
    assert lags > 50  # it trails the mid (and the last trade) instead of copying it
    assert market.mark_price_ticks("BTCUSDT") == book.mark_ticks == rec.marks[-1][1]
    # a recorded mark (replay) wins over the model from then on
    market.set_mark("BTCUSDT", 1234500)
    market.update_marks(0.3)
    assert market.mark_price_ticks("BTCUSDT") == 1234500 and rec.marks[-1] == ("BTCUSDT", 1234500)


def test_price_jump_when_armed_then_the_whole_book_moves_by_the_bps_in_one_event() -> None:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO))
    gen = Generator(market, GeneratorConfig(seed=3), ["BTCUSDT", "ETHUSDT"])
    gen.seed_books()
    for _ in range(500):
        gen.step()
    book = market.books["BTCUSDT"]
    bids, asks = dict(book.bids), dict(book.asks)
    mid = (book.best_bid_px() + book.best_ask_px()) / 2
    (ev,) = gen.jump("BTCUSDT", -200)  # 2 % down
    assert ev.symbol == "BTCUSDT" and ev.prev_u < ev.first_u
    delta = book.best_bid_px() - max(bids)
    assert abs(delta / mid * 1e4 + 200) < 1  # -200 bps within a tick
    assert book.bids == {p + delta: q for p, q in bids.items()}
    assert book.asks == {p + delta: q for p, q in asks.items()}
    assert all(px < mid * 0.985 for px, q in ev.bids if q)  # the event carries the moved levels
    for _ in range(2000):  # the walk goes on from the new fair price
        gen.step()
        assert book.best_bid_px() < book.best_ask_px()
    assert abs((book.best_bid_px() + book.best_ask_px()) / 2 / mid * 1e4 - 1e4 + 200) < 60


def test_wide_spread_when_armed_then_the_touch_stays_apart_until_the_window_ends() -> None:
    market = Market(load_exchange_info(DEFAULT_EXCHANGE_INFO))
    gen = Generator(market, GeneratorConfig(seed=5), ["BTCUSDT"])
    gen.seed_books()
    for _ in range(300):
        gen.step()
    book = market.books["BTCUSDT"]
    assert (book.best_ask_px() - book.best_bid_px()) / book.best_bid_px() * 1e4 < 5
    gen.widen("BTCUSDT", 100, seconds=0.5)  # 1 % apart
    spreads = []
    for _ in range(3000):
        gen.step()
        bb, ba = book.best_bid_px(), book.best_ask_px()
        assert bb is not None and ba is not None and bb < ba
        spreads.append((ba - bb) / bb * 1e4)
    assert min(spreads[:3000]) > 90  # ~100 bps: the walk moves the band a tick or two
    time.sleep(0.6)
    for _ in range(3000):
        gen.step()
    assert (book.best_ask_px() - book.best_bid_px()) / book.best_bid_px() * 1e4 < 10  # the touch closes again
