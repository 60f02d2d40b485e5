"""The embedded server (`[bridge] embedded_server`): the supervisord program `nats_server` runs the
real nats-server with JetStream in server_store_dir and the bridge's user and password."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import nats
import psutil
import pytest

from procs.bridge.server import free_port, wait_listening
from tests.support import spawn

pytestmark = pytest.mark.proc


async def jetstream_works(url: str, user: str, password: str) -> bool:
    nc = await nats.connect(url, user=user, password=password, allow_reconnect=False)
    try:
        info = await nc.jsm().add_stream(name="probe", subjects=["probe.>"])
        await nc.jetstream().publish("probe.x", b"1")
        return (await nc.jsm().stream_info("probe")).state.messages == 1 and info.config.name == "probe"
    finally:
        await nc.close()


async def refused_without_password(url: str) -> bool:
    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    except Exception:  # noqa: BLE001 - nats-py raises the authorization error it got
        return True
    await nc.close()
    return False


def test_nats_server_program_when_started_then_jetstream_with_the_configured_user(tmp_path: Path, procs) -> None:
    port = free_port()
    store = tmp_path / "nats"
    cfg = tmp_path / "b25.toml"
    cfg.write_text(f'[bridge]\nurl = "nats://127.0.0.1:{port}"\nembedded_server = true\nuser = "b25"\n'
                   f'password = "s3cret"\nserver_store_dir = "{store}"\n')
    p = spawn("-m", "procs.nats_server", "--config", str(cfg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(p)
    wait_listening("127.0.0.1", port, proc=p)
    url = f"nats://127.0.0.1:{port}"
    assert asyncio.run(jetstream_works(url, "b25", "s3cret"))
    assert asyncio.run(refused_without_password(url))
    assert psutil.Process(p.pid).nice() == 10  # [bridge] server_nice: below the hot path, like the bridge
    conf = store / "nats-server.conf"
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600 and (store / "jetstream").is_dir()
    p.terminate()
    assert p.wait(10) == 0  # nats-server shuts down cleanly on SIGTERM (supervisord's stopsignal)
