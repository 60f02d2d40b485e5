"""Book: exact text <-> integer conversion, top-N output, and the top list against a plain reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from procs.book.book import Book
from procs.core.instruments import Instrument, decimal_to_int, instrument_for_scales, int_to_decimal


def _fast_book(inst: Instrument, keep: int = 64):  # noqa: ANN202 - FastBook needs numba
    pytest.importorskip("numba")
    from procs.book.fastbook import FastBook

    return FastBook(inst, keep)


@pytest.fixture(params=["python", "numba"])
def make(request: pytest.FixtureRequest):  # noqa: ANN201
    """Both book implementations: every behaviour below must hold for each."""
    return Book if request.param == "python" else _fast_book


def _inst(ps: int = 2, qs: int = 3) -> Instrument:
    return instrument_for_scales("TEST", ps, qs)


@pytest.mark.parametrize("text,scale,value,normal", [
    ("63943.90", 2, 6394390, "63943.9"), ("63943.9", 2, 6394390, "63943.9"), ("0.000", 3, 0, "0"),
    ("46.372", 3, 46372, "46.372"), ("0.00000637", 8, 637, "0.00000637"), ("1000", 2, 100000, "1000"),
    ("12.50000000", 2, 1250, "12.5"), ("999999999.99", 2, 99999999999, "999999999.99"),
])
def test_convert_when_exact_decimal_then_round_trips(text: str, scale: int, value: int, normal: str) -> None:
    assert decimal_to_int(text, scale) == value
    assert int_to_decimal(value, scale) == normal
    assert decimal_to_int(int_to_decimal(value, scale), scale) == value
    b = Book(_inst(scale, scale))
    assert b._parse(text, scale) == value


@pytest.mark.parametrize("text", ["1.001", "NaN", "nan", "inf", "-1.00", "1e2", "", " 1", "1_0", "+1", "١", "1.0.0"])
def test_parse_when_not_an_exact_plain_decimal_of_the_scale_then_refused(text: str) -> None:
    assert Book._parse(text, 2) is None


def test_load_snapshot_when_levels_given_then_sorted_best_first_and_text_normalized(make) -> None:
    b = make(_inst())
    assert b.load_snapshot([("100.10", "1.000"), ("100.30", "2.500"), ("99.00", "0.001")],
                           [("101.00", "3.000"), ("100.50", "0.100")])
    assert b.bid_levels() == [(10030, 2500), (10010, 1000), (9900, 1)]
    assert b.ask_levels() == [(10050, 100), (10100, 3000)]
    assert b.best_bid() == (10030, 2500) and b.best_ask() == (10050, 100)
    assert not b.is_crossed()
    assert b.top_text(2) == ([["100.3", "2.5"], ["100.1", "1"]], [["100.5", "0.1"], ["101", "3"]])


def test_fill_top_when_fewer_levels_than_n_then_zero_padded(make) -> None:
    b = make(_inst())
    b.load_snapshot([("100.10", "1.000"), ("100.00", "2.000")], [("100.20", "3.000")])
    arrs = [np.full(5, -7, np.int64) for _ in range(4)]
    assert b.fill_top(*arrs) == (2, 1)
    assert arrs[0].tolist() == [10010, 10000, 0, 0, 0]
    assert arrs[1].tolist() == [1000, 2000, 0, 0, 0]
    assert arrs[2].tolist() == [10020, 0, 0, 0, 0]
    assert arrs[3].tolist() == [3000, 0, 0, 0, 0]


def test_apply_when_zero_quantity_then_level_deleted_and_absent_delete_ignored(make) -> None:
    b = make(_inst())
    b.load_snapshot([("100.10", "1.000")], [("100.20", "3.000")])
    assert b.apply([("100.10", "0.000"), ("50.00", "0")], [("100.30", "1.500")])
    assert b.bid_levels() == [] and b.best_bid() is None
    assert b.ask_levels() == [(10020, 3000), (10030, 1500)]


def test_is_crossed_when_bid_reaches_ask_then_true(make) -> None:
    b = make(_inst())
    b.load_snapshot([("100.10", "1.000")], [("100.20", "3.000")])
    assert b.apply([("100.20", "1.000")], [])
    assert b.is_crossed()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_apply_when_random_updates_then_top_n_equals_sorted_reference(make, seed: int) -> None:
    """The top list (kept short, rebuilt lazily) must always equal a full sort of the dict."""
    rng = random.Random(seed)
    b = make(_inst(), keep=8)
    ref_b: dict[int, int] = {}
    ref_a: dict[int, int] = {}
    mid = 100_000
    arrs = [np.zeros(10, np.int64) for _ in range(4)]
    for step in range(3000):
        mid += rng.choice((-3, -1, 0, 1, 3))
        bids, asks = [], []
        for _ in range(rng.randint(1, 30)):
            is_bid = rng.random() < 0.5
            dist = int(rng.expovariate(0.05))
            t = mid - 1 - dist if is_bid else mid + 1 + dist
            q = 0 if rng.random() < 0.4 else rng.randint(1, 5000)
            lv = (int_to_decimal(t, 2), int_to_decimal(q, 3))
            (bids if is_bid else asks).append(lv)
            ref = ref_b if is_bid else ref_a
            if q:
                ref[t] = q
            else:
                ref.pop(t, None)
        assert b.apply(bids, asks)
        want_b = sorted(ref_b.items(), reverse=True)
        want_a = sorted(ref_a.items())
        assert b.bid_levels(10) == want_b[:10], step
        assert b.ask_levels(10) == want_a[:10], step
        b.fill_top(*arrs)
        assert arrs[0][: len(want_b[:10])].tolist() == [t for t, _ in want_b[:10]]
        assert arrs[3][: len(want_a[:10])].tolist() == [q for _, q in want_a[:10]]
        if step % 500 == 0:
            assert b.bid_levels() == want_b and b.ask_levels() == want_a
    assert b.depth() == (len(ref_b), len(ref_a))


def test_fill_top_when_arrays_not_contiguous_then_still_filled(make) -> None:
    b = make(_inst())
    b.load_snapshot([("100.10", "1.000"), ("100.00", "2.000")], [("100.20", "3.000")])
    big = np.zeros((4, 6), np.int64)
    assert b.fill_top(big[0, ::2], big[1, ::2], big[2, ::2], big[3, ::2]) == (2, 1)
    assert big[0, ::2].tolist() == [10010, 10000, 0] and big[2, ::2].tolist() == [10020, 0, 0]


@pytest.mark.parametrize("text", ["1.001", "NaN", "-1.00", "1e2", "", " 1x", "1_0", "+1", "1.0.0", ".5", "1.",
                                  "99999999999999999.00"])
def test_apply_when_bad_text_then_false_and_reported(make, text: str) -> None:
    b = make(_inst())
    b.load_snapshot([("100.10", "1.000")], [("100.20", "3.000")])
    assert b.apply([("100.00", "1.000")], [(text, "1.000")]) is False
    assert b.bad_text
    b2 = make(_inst())
    b2.load_snapshot([("100.10", "1.000")], [("100.20", "3.000")])
    assert b2.apply([("100.00", text if text != "1.001" else "1.0001")], []) is False


def test_apply_when_worst_top_level_deleted_and_readded_in_one_message_then_still_listed(make) -> None:
    b = make(_inst(), keep=4)
    b.load_snapshot([(int_to_decimal(10000 - i, 2), "1.000") for i in range(8)], [("200.00", "1.000")])
    worst = b.bid_levels(4)[-1]
    wtxt = int_to_decimal(worst[0], 2)
    assert b.apply([(wtxt, "0"), (wtxt, "2.000")], [])
    assert (worst[0], 2000) in b.bid_levels(8)
    assert b.bid_levels() == sorted(b.bid_levels(), reverse=True)
    assert b.bid_levels(len(b.bid_levels())) == b.bid_levels()


def test_fastbook_when_raw_json_levels_then_same_as_lists() -> None:
    msgspec = pytest.importorskip("msgspec")
    fb = _fast_book(_inst())
    fb.load_snapshot([("100.10", "1.000")], [("100.20", "3.000")])
    assert fb.apply(msgspec.Raw(b'[["100.15","2.500"], ["100.10","0.000"]]'), msgspec.Raw(b"[]"))
    assert fb.bid_levels() == [(10015, 2500)] and fb.ask_levels() == [(10020, 3000)]
    assert fb.apply(b' [ [ "100.16" , "1" ] ] ', b"[]")
    assert fb.best_bid() == (10016, 1000)
    for bad in (b'[["100.16","1"]', b'[["100.16"]]', b'[[100.16,"1"]]', b'{"x":1}', rb'[["1\u0030","1"]]'):
        assert fb.apply(bad, b"[]") is False, bad


def test_fastbook_when_many_levels_then_table_grows_and_levels_survive() -> None:
    fb = _fast_book(_inst(), keep=16)
    ref = {}
    for k in range(0, 60000, 1000):
        lv = [(int_to_decimal(100000 + i, 2), "1.000") for i in range(k, k + 1000)]
        assert fb.apply(lv, [])
        ref.update({100000 + i: 1000 for i in range(k, k + 1000)})
    assert fb.depth() == (60000, 0)
    assert fb.bid_levels(3) == [(159999, 1000), (159998, 1000), (159997, 1000)]
    assert dict(fb.bid_levels()) == ref


def test_warm_up_when_called_then_kernels_ready_and_fast_second_time() -> None:
    pytest.importorskip("numba")
    from procs.book.fastbook import warm_up

    warm_up()
    assert warm_up() < 5.0  # compiled (or loaded from numba's cache) by the first call


def test_book_when_given_raw_json_levels_then_decoded_or_refused() -> None:
    import msgspec

    b = Book(_inst())
    b.load_snapshot([("100.10", "1.000")], [("100.20", "3.000")])
    assert b.apply(msgspec.Raw(b'[["100.15","2.500"]]'), msgspec.Raw(b"[]"))
    assert b.best_bid() == (10015, 2500)
    assert b.apply(b'[["100.15"', b"[]") is False
