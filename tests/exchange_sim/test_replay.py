"""Replay of real recordings: frames re-served verbatim and in order, a true book that agrees
with the stream, recorded pace times speed, and chains continued across files."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path

import aiohttp
import pytest
import uvloop

from procs.exchange_sim.config import SimConfig
from procs.exchange_sim.server import SimServer
from tests.support.sim import SyncClient

BTC_0718 = "hftbacktest-binance/usdm/btcusdt_20240718.gz"
BTC_0719 = "hftbacktest-binance/usdm/btcusdt_20240719.gz"


def _recorded_stream_frames(path: Path) -> list[tuple[int, bytes]]:
    out = []
    with gzip.open(path) as f:
        for line in f:
            ts, raw = line.rstrip(b"\n").split(b" ", 1)
            if raw.startswith(b'{"stream"'):
                out.append((int(ts), raw))
    return out


def _replay_config(*files: Path, speed: float = 0.0, **over: object) -> SimConfig:
    return SimConfig(rest_port=0, ws_port=0, source="replay", replay=[str(f) for f in files], speed=speed, **over)


async def _receive_all(ws: aiohttp.ClientWebSocketResponse, srv: SimServer) -> list[tuple[float, bytes]]:
    got = []
    while True:
        try:
            msg = await ws.receive(timeout=0.5 if srv.done.is_set() else 5.0)
        except TimeoutError:
            return got
        got.append((time.monotonic(), msg.data.encode()))


async def _verbatim(real: Path) -> None:
    srv = SimServer(_replay_config(real / BTC_0718))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@trade"
            async with http.ws_connect(url) as ws:
                got = [raw for _, raw in await _receive_all(ws, srv)]
        expected = [raw for _, raw in _recorded_stream_frames(real / BTC_0718)]
        assert len(got) == len(expected) == 11413
        assert got == expected
        st = srv.stats()["replay"]
        assert st["finished"] and st["depth_stale"] == 5 and st.get("depth_breaks", 0) == 0
    finally:
        await srv.stop()


def test_replay_when_speed_zero_then_every_recorded_frame_served_verbatim_in_order(real_data: Path) -> None:
    uvloop.run(_verbatim(real_data))


async def _true_book(real: Path) -> None:
    srv = SimServer(_replay_config(real / BTC_0718))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker"
            async with http.ws_connect(url) as ws:
                client = SyncClient(http, srv.rest_port, "BTCUSDT")
                ticker_checks = 0
                tickers: dict[int, dict] = {}  # bookTicker by u: equals the book's top at that u
                while True:
                    try:
                        msg = await ws.receive(timeout=0.5 if srv.done.is_set() else 5.0)
                    except TimeoutError:
                        break
                    frame = json.loads(msg.data)
                    data = frame["data"]
                    if data["e"] == "bookTicker":
                        tickers[data["u"]] = data
                        continue
                    if not client.on_event(data) or not client.synced:
                        await client.snapshot()
                    if client.synced and client.last_u in tickers:
                        t = tickers[client.last_u]
                        bb = max(client.bids)
                        ba = min(client.asks)
                        assert (bb, client.bids[bb]) == (int(t["b"].replace(".", "")), int(t["B"].replace(".", "")))
                        assert (ba, client.asks[ba]) == (int(t["a"].replace(".", "")), int(t["A"].replace(".", "")))
                        ticker_checks += 1
        true = srv.market.books["BTCUSDT"]
        assert client.breaks == 0 and client.resyncs == 1 and client.last_u == true.last_u
        # beyond the 1000 snapshot levels the true book holds far levels only diffs touched
        n = 500
        assert sorted(client.bids.items(), reverse=True)[:n] == true.levels(True, n)
        assert sorted(client.asks.items())[:n] == true.levels(False, n)
        assert ticker_checks > 20
    finally:
        await srv.stop()


def test_replay_when_client_syncs_then_its_book_equals_true_book_and_book_ticker(real_data: Path) -> None:
    uvloop.run(_true_book(real_data))


async def _paced(real: Path) -> None:
    speed = 20.0
    srv = SimServer(_replay_config(real / BTC_0718, speed=speed))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@trade") as ws:
                got = []
                t_end = time.monotonic() + 0.8
                while time.monotonic() < t_end:
                    msg = await ws.receive(timeout=2.0)
                    got.append((time.monotonic(), msg.data.encode()))
        rec = {raw: ts for ts, raw in _recorded_stream_frames(real / BTC_0718)}
        raws = [json.dumps(json.loads(r)["data"], separators=(",", ":")).encode() for r in rec]
        rec_ts = {raw: ts for raw, ts in zip(raws, rec.values(), strict=True)}
        first_wall, first_raw = got[0]
        assert len(got) > 20
        lateness = []
        for wall, raw in got[1:]:
            expect = (rec_ts[raw] - rec_ts[first_raw]) / 1e9 / speed
            lateness.append((wall - first_wall) - expect)
        # never (noticeably) early; late only by scheduling noise, which a loaded host inflates
        assert min(lateness) > -0.03, min(lateness)
        assert sorted(lateness)[len(lateness) // 2] < 0.1, lateness
    finally:
        await srv.stop()


def test_replay_when_speed_20_then_frames_follow_recorded_pace(real_data: Path) -> None:
    uvloop.run(_paced(real_data))


async def _two_files(real: Path) -> None:
    srv = SimServer(_replay_config(real / BTC_0718, real / BTC_0719, replay_wait_subscriber=False))
    await srv.start()
    try:
        await asyncio.wait_for(srv.done.wait(), 20)
        st = srv.stats()["replay"]
        assert st["depth_applied"] == 3321 + 5696 and st.get("depth_breaks", 0) == 0
        assert srv.market.now_ms() // 1000 >= 1721347500  # the clock followed the recording into 0719
    finally:
        await srv.stop()


def test_replay_when_two_files_then_one_chain_without_breaks(real_data: Path) -> None:
    uvloop.run(_two_files(real_data))


def _breaks(evs: list[dict]) -> list[tuple[int, int]]:
    return [(a["u"], b["pu"]) for a, b in zip(evs, evs[1:], strict=False) if b["pu"] != a["u"]]


async def _fault_on_replay(real: Path) -> None:
    srv = SimServer(_replay_config(real / BTC_0718, speed=50.0))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as ws:
                evs = [json.loads((await ws.receive(timeout=5)).data) for _ in range(20)]
                for n, fault in enumerate(("drop_diff", "seq_gap"), start=1):  # apart: each its own break
                    body = {"fault": fault, "symbol": "BTCUSDT"}
                    async with http.post(f"http://127.0.0.1:{srv.rest_port}/sim/fault", json=body) as r:
                        assert r.status == 200
                    # frames sent before the fault was armed may still be in flight: read until
                    # the break shows (bounded), then a few more
                    for _ in range(5000):
                        evs.append(json.loads((await ws.receive(timeout=5)).data))
                        if len(_breaks(evs)) == n:
                            break
                    evs += [json.loads((await ws.receive(timeout=5)).data) for _ in range(20)]
        assert len(_breaks(evs)) == 2
        assert srv.stats()["injected"] == {"drop_diff": 1, "seq_gap": 1}
    finally:
        await srv.stop()


def test_replay_when_diff_faults_configured_then_recorded_chain_breaks(real_data: Path) -> None:
    uvloop.run(_fault_on_replay(real_data))


async def _cryptofeed(real: Path) -> None:
    cf = real / "cryptofeed-binance"
    srv = SimServer(_replay_config(cf / "BINANCE_FUTURES.ws.1.0", exchange_info=str(cf / "BINANCE_FUTURES.0")))
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=sushiusdt@depth@100ms/sushiusdt@depth@0ms"
            async with http.ws_connect(url) as ws:
                ps = srv.market.instruments["SUSHIUSDT"].price_scale
                qs = srv.market.instruments["SUSHIUSDT"].qty_scale
                client = SyncClient(http, srv.rest_port, "SUSHIUSDT", ps, qs)
                recorded = synthesized = 0
                while True:
                    try:
                        msg = await ws.receive(timeout=0.5 if srv.done.is_set() else 5.0)
                    except TimeoutError:
                        break
                    frame = json.loads(msg.data)
                    if frame["stream"] == "sushiusdt@depth@100ms":
                        recorded += 1
                        continue
                    synthesized += 1
                    if not client.on_event(frame["data"]) or not client.synced:
                        await client.snapshot()
        true = srv.market.books["SUSHIUSDT"]
        # @depth@0ms is synthesized one for one from the applied @100ms diffs (3 predate the snapshot)
        assert (recorded, synthesized) == (255, 252)
        assert client.breaks == 0 and client.last_u == true.last_u
        assert sorted(client.bids.items(), reverse=True)[:500] == true.levels(True, 500)
        assert sorted(client.asks.items())[:500] == true.levels(False, 500)
        assert srv.stats()["replay"]["snapshots_loaded"] == 4
    finally:
        await srv.stop()


def test_replay_when_cryptofeed_recording_then_snapshots_merge_and_depth_variants_synthesized(real_data: Path) -> None:
    uvloop.run(_cryptofeed(real_data))


async def _replay_instruments(real: Path) -> None:
    srv = SimServer(_replay_config(real / "cryptofeed-binance" / "BINANCE_FUTURES.ws.1.0"))  # default exchangeInfo
    await srv.start()
    try:
        assert srv.market.now_ms() // 1000 == 1626992741  # 2021-07-22 22:25:41, from the recording
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{srv.rest_port}/fapi/v1/exchangeInfo") as r:
                info = await r.json()
            async with http.get(f"http://127.0.0.1:{srv.rest_port}/fapi/v1/depth",
                                params={"symbol": "AKROUSDT", "limit": "5"}) as r:
                depth = await r.json()
        akro = next(s for s in info["symbols"] if s["symbol"] == "AKROUSDT")
        pf = next(f for f in akro["filters"] if f["filterType"] == "PRICE_FILTER")
        assert pf["tickSize"] == "0.00001" and akro["pricePrecision"] == 5
        assert depth["lastUpdateId"] == 600859605486 and len(depth["bids"]) == 5
    finally:
        await srv.stop()


def test_replay_when_symbols_missing_from_exchange_info_then_synthesized_from_recorded_scales(real_data: Path) -> None:
    uvloop.run(_replay_instruments(real_data))


async def _stepping(real: Path) -> None:
    srv = SimServer(_replay_config(real / BTC_0718))
    srv.set_running(False)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{srv.rest_port}"
            url = f"http://127.0.0.1:{srv.ws_port}/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@trade"
            expected = [raw for _, raw in _recorded_stream_frames(real / BTC_0718)]
            async with http.ws_connect(url) as ws:
                with pytest.raises(TimeoutError):
                    await ws.receive(timeout=0.3)  # paused: nothing flows
                got = []
                for n in (1, 5, 4):  # the first 10 frames (line 14 is the REST snapshot)
                    async with http.post(base + "/sim/step", params={"n": str(n)}) as r:
                        assert r.status == 200
                    for _ in range(n):
                        got.append((await ws.receive(timeout=2)).data.encode())
                    with pytest.raises(TimeoutError):
                        await ws.receive(timeout=0.1)  # exactly n, then still again
                assert got == expected[:10]
                assert srv.stats()["stepped"] == 10
    finally:
        await srv.stop()


def test_replay_when_paused_and_stepped_then_exactly_n_frames_each_step(real_data: Path) -> None:
    uvloop.run(_stepping(real_data))


@pytest.mark.parametrize("rel", [
    "hftbacktest-binance/spot/btcusdt_20240808.gz",
    "hftbacktest-binance/cm/btcusd_perp_20240808.gz",
    "hftbacktest-binance/usdm/btcusdt_20230404.dat.gz",
    "hftbacktest-binance/usdm/ethusdt_20240718.gz",
    "cryptofeed-binance/BINANCE_DELIVERY.ws.1.0",
    "cryptofeed-binance/BINANCE.ws.1.0",
])
def test_replay_when_any_recording_format_then_runs_to_the_end_without_breaks(real_data: Path, rel: str) -> None:
    async def run() -> dict:
        srv = SimServer(_replay_config(real_data / rel, replay_wait_subscriber=False))
        await srv.start()
        try:
            await asyncio.wait_for(srv.done.wait(), 30)
            return srv.stats()["replay"]
        finally:
            await srv.stop()

    st = uvloop.run(run())
    assert st["finished"] and st["sent"] == st["frames"]
    assert st.get("depth_breaks", 0) == 0 and st.get("bad_frames", 0) == 0 and st.get("undecodable", 0) == 0
    assert st["depth_applied"] > 100


def test_replay_when_b25_recorder_format_then_wrapped_snapshot_loads(real_data: Path, tmp_path: Path) -> None:
    # b25's recorder writes hftbacktest lines, with the snapshot wrapped as <sym>@depthSnapshot
    lines = []
    with gzip.open(real_data / BTC_0718) as f:
        for n, line in enumerate(f):
            ts, raw = line.rstrip(b"\n").split(b" ", 1)
            if raw.startswith(b'{"lastUpdateId"'):
                raw = b'{"stream":"btcusdt@depthSnapshot","data":' + raw + b"}"
            lines.append(ts + b" " + raw)
            if n > 400:
                break
    rec = tmp_path / "b25_btcusdt.gz"
    with gzip.open(rec, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")

    async def run() -> tuple[dict, list[bytes]]:
        srv = SimServer(_replay_config(rec))
        await srv.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(f"http://127.0.0.1:{srv.ws_port}/ws/btcusdt@depth@0ms") as ws:
                    got = [raw for _, raw in await _receive_all(ws, srv)]
            return srv.stats()["replay"], got
        finally:
            await srv.stop()

    st, got = uvloop.run(run())
    assert st["snapshots_loaded"] == 1 and st["finished"] and st.get("depth_breaks", 0) == 0
    recorded = [json.loads(raw.split(b" ", 1)[1])["data"] for raw in lines if b'@depth@0ms"' in raw]
    assert [json.loads(r) for r in got] == recorded  # every diff, including those before the snapshot
