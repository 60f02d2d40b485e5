"""[deploy]: the symbols, depth and ring capacities every process shares, and rings built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from procs.core import deploy
from procs.core import messages as M
from procs.core.registry import EXEC, MD_BOOK, ORDERS_MANUAL, RingCapacities, alerts_name, build_registry
from shm.ring import Consumer
from shm.segment import LayoutError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "b25.toml"
    p.write_text(text)
    return p


def test_deploy_when_absent_then_the_defaults() -> None:
    d = deploy.load(None)
    assert (d.symbols, d.depth, d.sim) == (["BTCUSDT", "ETHUSDT"], M.DEFAULT_DEPTH, True)
    assert build_registry().ring_spec(MD_BOOK).capacity == d.rings.md_book == 4096


def test_deploy_when_given_then_every_reader_takes_symbols_and_depth_from_it(tmp_path: Path) -> None:
    p = _write(tmp_path, '[deploy]\nsymbols = ["ETHUSDT"]\ndepth = 5\n')
    assert deploy.symbols(p) == ["ETHUSDT"] and deploy.depth(p) == 5
    assert deploy.registry(p).ring_spec(MD_BOOK).dtype == M.book_update_dtype(5)


def test_rings_when_configured_then_the_registry_declares_those_capacities(tmp_path: Path) -> None:
    p = _write(tmp_path, "[deploy.rings]\nmd_book = 1024\nexec = 65536\nalerts = 64\n")
    reg = deploy.registry(p)
    assert reg.ring_spec(MD_BOOK).capacity == 1024
    assert reg.ring_spec(EXEC).capacity == 65536
    assert {reg.ring_spec(alerts_name(p)).capacity for p in ("risk", "execution", "market_data")} == {64}
    assert reg.ring_spec(ORDERS_MANUAL).capacity == RingCapacities().orders_manual  # the rest keep the default


def test_rings_when_a_producer_creates_one_then_a_consumer_reads_its_capacity_from_the_segment(
        tmp_path: Path, instance: str) -> None:
    p = _write(tmp_path, "[deploy.rings]\norders_manual = 32\n")
    producer = deploy.registry(p).producer(instance, ORDERS_MANUAL)
    consumer = build_registry().consumer(instance, ORDERS_MANUAL, "execution", timeout=1.0)  # default 256
    try:
        assert consumer.capacity == 32
        # the gating ring holds its producer at 32 unread records: both sides count the same ring
        assert producer.publish_batch(np.zeros(40, M.OrderIntent)) == 32
        assert producer.remaining() == 0
    finally:
        consumer.close()
        producer.close(unlink=True)


def test_rings_when_a_producer_restarts_with_another_capacity_then_it_fails_naming_both(
        tmp_path: Path, instance: str) -> None:
    first = build_registry(rings=RingCapacities(orders_manual=64)).producer(instance, ORDERS_MANUAL)
    try:
        with pytest.raises(LayoutError, match="segment_capacity=64 expected_capacity=128"):
            build_registry(rings=RingCapacities(orders_manual=128)).producer(instance, ORDERS_MANUAL)
    finally:
        first.close(unlink=True)


def test_consumer_attach_is_capacity_agnostic() -> None:
    # consumers never pass a capacity: they take the producer's from the header
    import inspect

    assert "capacity" not in inspect.signature(Consumer.attach).parameters
