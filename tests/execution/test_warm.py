"""Execution's keep-warm tick: the intent -> request path on scratch data, nothing sent,
journaled, published or stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs.execution.journal import REC_EPOCH, read_journal
from procs.venue.binance.signing import Signer
from procs.venue.binance.wsapi import WsApiTransport


def test_engine_warm_when_called_then_nothing_sent_journaled_published_or_stored(tmp_path: Path) -> None:
    from tests.support.execution_engine import make

    eng, prod, wire, c = make(tmp_path)
    size = (tmp_path / "j").stat().st_size
    tokens = [b.tokens for b in eng.limiter.buckets]
    assert eng.warm() == 0  # no WS transport: all but the request
    ws = eng.gateway.ws = WsApiTransport("ws://127.0.0.1:1/ws-fapi/v1", Signer("k", "s"))
    assert eng.warm() > 0
    assert (tmp_path / "j").stat().st_size == size and eng.journal.records == 1  # the epoch record only
    assert prod.out == [] and wire.sent == [] and ws.pending == {} and ws._next_id == 0
    assert eng.store.by_cid == {} and eng.store.counts.total == 0 and not eng.rate and eng.n == 0
    assert [b.tokens for b in eng.limiter.buckets] == pytest.approx(tokens)
    assert c["keep_warm"] == 2
    j = eng.journal
    # the scratch frame went past the last frame with its length word left 0: no reader sees it
    assert j._mm[j.end:j.end + 4] == b"\0\0\0\0" and any(j._mm[j.end + 4:j.end + 64])
    assert [r.kind for r in read_journal(tmp_path / "j")[0]] == [REC_EPOCH]
    j.close()
    assert (tmp_path / "j").stat().st_size == j.end  # the zero tail and the scratch bytes are gone
    eng.warm()  # a last tick after close: nothing is written
    assert (tmp_path / "j").stat().st_size == j.end
