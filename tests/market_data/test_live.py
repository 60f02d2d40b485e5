"""market_data as a real process against the real simulator over WebSocket and REST."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from procs.core.registry import book_state_name, build_registry
from procs.market_data.publisher import read_book_state
from shm.counters import read_counters
from shm.segment import open_raw
from tests.support.procutil import start_proc, start_sim, stop, write_config
from tests.support.recordings import iter_frames, rebuilder

pytestmark = pytest.mark.proc

SYM = "BTCUSDT"


def _md_config(tmp: Path, rest: int, ws: int, symbols: list[str], extra: str = "") -> Path:
    syms = ", ".join(f'"{s}"' for s in symbols)
    return write_config(tmp, f"""
[venue]
ws_stream_url = "ws://127.0.0.1:{ws}"
rest_url = "http://127.0.0.1:{rest}"

[deploy]
symbols = [{syms}]
depth = 20

[market_data]
{extra}
""")


def _http(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class BookWatch:
    """Reads market_data's state block for one symbol (attaches when it appears)."""

    def __init__(self, instance: str, symbol: str) -> None:
        self.reg = build_registry(20)
        self.instance, self.symbol = instance, symbol
        self.reader = None

    def read(self) -> dict | None:
        if self.reader is None:
            try:
                self.reader = self.reg.reader(self.instance, book_state_name(self.symbol), timeout=0.05)
            except (TimeoutError, OSError):
                return None
        rec, _ = self.reader.read()
        return read_book_state(rec, None)

    def wait_update_id(self, u: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.read()
            if last is not None and last["update_id"] == u:
                return last
            time.sleep(0.02)
        raise AssertionError(f"book never reached update_id={u}: last={last and last['update_id']}")

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _counters(instance: str) -> dict[str, int]:
    seg = open_raw(f"/b25.{instance}.counters.market_data")
    assert seg is not None
    try:
        return read_counters(seg)[0]
    finally:
        seg.close()


def _cleanup(instance: str) -> None:
    from shm.inspect import clean
    clean(instance, force=True)


def test_replay_over_websocket_when_recording_ends_then_book_equals_b25_book(
        instance: str, procs: list, tmp_path: Path, real_data: Path) -> None:
    rec = real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"
    rb = rebuilder(symbols={SYM})
    for f in iter_frames([rec]):
        rb.feed(f)
    final = rb.syncs[SYM]
    sim, rest, ws = start_sim(procs, "--replay", str(rec), "--speed", "0")
    md = start_proc(procs, "procs.market_data", _md_config(tmp_path, rest, ws, [SYM]), instance,
                    log=tmp_path / "md.log")
    watch = BookWatch(instance, SYM)
    try:
        got = watch.wait_update_id(final.last_u, timeout=90)
        assert got["bids"] == final.book.bid_levels(20)
        assert got["asks"] == final.book.ask_levels(20)
        c = _counters(instance)
        assert c["gaps"] == 0 and c["decode_errors"] == 0 and c["depth_applied"] > 1000
    finally:
        watch.close()
        assert stop(md) == 0
        stop(sim)
        _cleanup(instance)


FAULTS = [
    # (fault spec, counter that must show it, minimum)
    ({"fault": "drop_diff", "symbol": SYM, "count": 1}, "gaps", 1),
    ({"fault": "reorder_diff", "symbol": SYM, "count": 1}, "gaps", 1),
    ({"fault": "duplicate_diff", "symbol": SYM, "count": 1}, "dropped_stale", 1),
    ({"fault": "seq_gap", "symbol": SYM, "count": 1}, "gaps", 1),
    ({"fault": "malformed_frame", "count": 1}, "decode_errors", 1),
    ({"fault": "disconnect"}, "reconnects", 1),
    ({"fault": "stall", "seconds": 2.5}, "watchdog_resyncs", 1),
]


def test_injected_faults_when_recovered_then_book_equals_simulator_true_book(
        instance: str, procs: list, tmp_path: Path) -> None:
    sim, rest, ws = start_sim(procs, "--rate", "400", "--symbols", "BTCUSDT,ETHUSDT")
    cfg = _md_config(tmp_path, rest, ws, ["BTCUSDT", "ETHUSDT"], "stale_after_s = 1.0\nreconnect_min_s = 0.05")
    md = start_proc(procs, "procs.market_data", cfg, instance, log=tmp_path / "md.log")
    base = f"http://127.0.0.1:{rest}"
    watches = {s: BookWatch(instance, s) for s in ("BTCUSDT", "ETHUSDT")}

    def checkpoint() -> None:
        """Freeze the market, let single events through until market_data's book is at the
        simulator's update id for every symbol, then compare the top 20 exactly."""
        _http("POST", f"{base}/sim/pause")
        try:
            deadline = time.monotonic() + 30
            pending = dict(watches)
            while pending and time.monotonic() < deadline:
                for s, w in list(pending.items()):
                    truth = _http("GET", f"{base}/sim/book?symbol={s}&limit=20")
                    try:
                        got = w.wait_update_id(truth["lastUpdateId"], timeout=0.3)
                    except AssertionError:
                        continue
                    want_b = [(int(round(float(p) * 100)), int(round(float(q) * 1000))) for p, q in truth["bids"]]
                    want_a = [(int(round(float(p) * 100)), int(round(float(q) * 1000))) for p, q in truth["asks"]]
                    assert got["bids"] == want_b, s
                    assert got["asks"] == want_a, s
                    del pending[s]
                if pending:  # a resync may need the next event to bridge its snapshot
                    _http("POST", f"{base}/sim/step?n=1")
            assert not pending, f"market_data never caught up with the simulator: {sorted(pending)}"
        finally:
            _http("POST", f"{base}/sim/resume")

    try:
        time.sleep(1.0)
        checkpoint()
        for spec, counter, minimum in FAULTS:
            before = _counters(instance)[counter]
            _http("POST", f"{base}/sim/fault", spec)
            deadline = time.monotonic() + 20
            while _counters(instance)[counter] - before < minimum and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _counters(instance)[counter] - before >= minimum, (spec, counter, _counters(instance))
            time.sleep(0.5 + float(spec.get("seconds", 0)))  # a stall must be over and data flowing again
            try:
                checkpoint()
            except AssertionError as exc:
                raise AssertionError(f"after {spec}: {exc}; sim={_http('GET', f'{base}/sim/stats')}") from None
        # REST faults while a resync needs a snapshot: the snapshot is retried until it works
        _http("POST", f"{base}/sim/fault", {"fault": "rest_429", "count": 2})
        _http("POST", f"{base}/sim/fault", {"fault": "rest_5xx", "count": 2})
        before = _counters(instance)["snapshot_errors"]
        _http("POST", f"{base}/sim/fault", {"fault": "drop_diff", "symbol": SYM, "count": 1})
        deadline = time.monotonic() + 20
        while _counters(instance)["snapshot_errors"] - before < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _counters(instance)["snapshot_errors"] - before >= 4
        time.sleep(1.0)
        checkpoint()
        _http("POST", f"{base}/sim/fault", {"fault": "slow_snapshot", "symbol": SYM, "seconds": 1.0})
        _http("POST", f"{base}/sim/fault", {"fault": "drop_diff", "symbol": SYM, "count": 1})
        time.sleep(2.5)
        checkpoint()
    finally:
        for w in watches.values():
            w.close()
        assert stop(md) == 0
        stop(sim)
        _cleanup(instance)
