"""``b25 web``'s server in-process: the session cap and its page, the page's token off loopback,
and the refusal to start off loopback without a token."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from procs.web.__main__ import run
from procs.web.config import WebConfig
from procs.web.server import COOKIE, WebServer

TOKEN = "web-test-token"
# a session's "TUI": a process that stays until the server stops it (its quit message on stdin)
IDLE = [sys.executable, "-c", "import sys; sys.stdin.buffer.read(1)"]


def serve(body: Callable[[str, WebServer], Awaitable[Any]], host: str = "127.0.0.1", max_sessions: int = 4) -> Any:
    """Run the server on a free 127.0.0.1 port (``host`` is what its config claims) and ``body(url, server)``."""

    async def main() -> Any:
        server = WebServer(WebConfig(host=host, max_sessions=max_sessions), IDLE, TOKEN, "b25 test")
        runner = web.AppRunner(server.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            return await body(f"http://127.0.0.1:{port}", server)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


@pytest.mark.proc
def test_web_when_max_sessions_are_open_then_the_next_browser_gets_a_page_saying_so():
    async def body(url: str, server: WebServer) -> tuple[int, str, int, int]:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/ws?width=80&height=24"):
            for _ in range(200):
                if server.sessions:
                    break
                await asyncio.sleep(0.02)
            async with http.get(f"{url}/") as r:
                status, text = r.status, await r.text()
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{url}/ws")
            return status, text, refused.value.status, len(server.sessions)

    status, text, ws_status, open_sessions = serve(body, max_sessions=1)
    assert (status, ws_status, open_sessions) == (503, 503, 1)
    assert "All web sessions are in use" in text and "[web] max_sessions = 1" in text
    assert "a TUI process on the trading host" in text


def test_web_when_bound_off_loopback_then_the_page_and_its_websocket_need_the_ops_token():
    async def body(url: str, _server: WebServer) -> list[Any]:
        out: list[Any] = []
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: an IP host
            async with http.get(f"{url}/") as r:
                out += [r.status, "ops token" in await r.text()]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{url}/ws")
            out.append(refused.value.status)
            async with http.post(f"{url}/login", data={"token": "guess"}, allow_redirects=False) as r:
                out += [r.status, "wrong token" in await r.text(), COOKIE in r.cookies]
            async with http.post(f"{url}/login", data={"token": TOKEN}, allow_redirects=False) as r:
                out += [r.status, r.cookies[COOKIE]["httponly"] != "", TOKEN not in r.cookies[COOKIE].value]
            async with http.get(f"{url}/") as r:  # the session cookie now
                text = await r.text()
                out += [r.status, "data-session-websocket-url" in text, "googleapis" in text]
        return out

    assert serve(body, host="0.0.0.0") == [401, True, 403, 403, True, False, 303, True, True, 200, True, False]


def test_web_when_on_loopback_then_watching_needs_no_token():
    async def body(url: str, _server: WebServer) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/") as r:
            return r.status, await r.text()

    status, text = serve(body)
    assert status == 200 and f"{'ws'}://127.0.0.1:" in text and "/static/js/textual.js" in text


def test_web_when_asked_to_listen_off_loopback_without_a_token_then_it_refuses_to_start(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("B25_MONITOR_TOKEN", raising=False)
    cfg = tmp_path / "b25.toml"
    cfg.write_text('[web]\nhost = "0.0.0.0"\n')
    args = argparse.Namespace(config=str(cfg), instance="unused", host=None, port=None)
    assert run(args) == 2
    assert "refusing to listen on 0.0.0.0 without the ops token" in capsys.readouterr().err
    cfg.write_text('[web]\nmax_sessions = 0\n')
    assert run(args) == 2
    assert "max_sessions must be 1..64" in capsys.readouterr().err
