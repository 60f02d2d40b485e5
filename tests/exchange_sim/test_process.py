"""``python -m procs.exchange_sim`` as a real process: reports its ports, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_sim(*args: str, timeout: float = 10.0) -> tuple[subprocess.Popen, dict]:
    """Start exchange_sim and wait for its ``listening`` line; the caller must stop it."""
    proc = subprocess.Popen([sys.executable, "-m", "procs.exchange_sim", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        rec = json.loads(line)
        if rec.get("event") == "listening":
            return proc, rec
    proc.kill()
    proc.wait()
    raise AssertionError(f"exchange_sim did not report listening: rc={proc.poll()}")


def stop_sim(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.communicate(timeout=10)  # drains stderr so a chatty shutdown cannot block
            return proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@pytest.mark.proc
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_process_when_ports_zero_then_reports_ports_serves_and_stops_cleanly(sig: int) -> None:
    proc, rec = start_sim("--port", "0", "--ws-port", "0")
    try:
        assert rec["rest_port"] > 0 and rec["ws_port"] > 0 and rec["rest_port"] != 9731
        with urllib.request.urlopen(f"http://127.0.0.1:{rec['rest_port']}/fapi/v1/ping", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read()) == {}
            assert r.headers["X-MBX-USED-WEIGHT-1M"]
    finally:
        rc = stop_sim(proc, sig)
    assert rc == 0


@pytest.mark.proc
def test_process_when_config_invalid_then_exits_nonzero_naming_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sim]\nrest_prot = 1\n")
    out = subprocess.run([sys.executable, "-m", "procs.exchange_sim", "--config", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 2 and "rest_prot" in out.stderr


@pytest.mark.proc
def test_process_when_config_file_then_sim_section_applies(tmp_path: Path) -> None:
    cfg = tmp_path / "sim.toml"
    cfg.write_text('[sim]\nrest_port = 0\nws_port = 0\nsymbols = ["ETHUSDT"]\n[sim.generator]\nseed = 9\n')
    proc, rec = start_sim("--config", str(cfg))
    try:
        assert rec["symbols"] == ["ETHUSDT"]
        url = f"http://127.0.0.1:{rec['rest_port']}/fapi/v1/depth?symbol=ETHUSDT&limit=5"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        assert len(body["bids"]) == 5 and float(body["bids"][0][0]) < float(body["asks"][0][0])
    finally:
        assert stop_sim(proc) == 0


@pytest.mark.proc
def test_process_when_replay_speed_zero_then_serves_the_recording_and_snapshot(real_data: Path) -> None:
    import aiohttp
    import uvloop

    rec = real_data / "hftbacktest-binance/usdm/btcusdt_20240718.gz"
    proc, info = start_sim("--port", "0", "--ws-port", "0", "--replay", str(rec), "--speed", "0")

    async def client() -> tuple[int, dict]:
        n = 0
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{info['ws_port']}/stream?streams=btcusdt@depth@0ms/btcusdt@trade"
            async with http.ws_connect(url) as ws:
                while True:
                    try:
                        await ws.receive(timeout=1.5)
                    except TimeoutError:
                        break
                    n += 1
            async with http.get(f"http://127.0.0.1:{info['rest_port']}/sim/stats") as r:
                return n, await r.json()

    try:
        n, stats = uvloop.run(client())
        assert n == 3326 + 974  # every recorded depth and trade frame
        assert stats["replay"]["finished"] and stats["books"]["BTCUSDT"]["last_u"] == 4984033952967
    finally:
        assert stop_sim(proc) == 0


@pytest.mark.proc
def test_process_when_busy_and_client_leaves_then_no_log_spam_and_clean_stop() -> None:
    import asyncio

    import picows
    import uvloop

    proc, info = start_sim("--port", "0", "--ws-port", "0", "--rate", "20000")

    async def client() -> int:
        got = [0]

        class Client(picows.WSListener):
            def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
                got[0] += 1

        url = f"ws://127.0.0.1:{info['ws_port']}/stream?streams=btcusdt@depth@0ms/ethusdt@depth@0ms"
        transport, _ = await picows.ws_connect(Client, url)
        await asyncio.sleep(0.5)
        transport.disconnect()  # mid-stream, as a crashed reader would
        await asyncio.sleep(0.3)
        return got[0]

    try:
        assert uvloop.run(client()) > 100
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "connection lost" not in err and err.count("\n") < 20
