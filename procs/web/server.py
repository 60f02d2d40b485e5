"""The web server of ``b25 web``: the TUI in a browser, one TUI process per session.

textual-serve's ``AppService`` runs each session's TUI (``python -m tui.app --web-session``) and
relays its terminal over a WebSocket to xterm.js in the page; this module adds what a trading
host needs around it (docs/decisions/035-web-session-per-process.md):

* **sessions**: at most ``[web] max_sessions`` at once (each is a process on the trading host);
  the next browser gets a page saying so, and its WebSocket is refused with 503;
* **the page's token**: on loopback watching needs none; bound to anything else, the page and its
  WebSocket need the ops token first (a login form sets an HttpOnly, SameSite=Strict cookie that
  holds an HMAC of the token, never the token), and the server refuses to start without a token;
* **state-changing keys**: the TUI runs with ``--web-session``, where every order, cancel, kill
  switch, reload and start/stop/restart asks for the ops token (``tui.commands.TokenGate``);
* **no outside requests**: the page's font and scripts come from this server, so it works on a
  host with no internet; the WebSocket URL follows the address the browser used (an SSH tunnel
  on another local port works).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shlex
from pathlib import Path
from typing import Any

import jinja2
import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from procs.core import log
from procs.core.async_agent import AsyncRun
from procs.monitor.feed import loopback

from .config import WebConfig

STATIC = Path(textual_serve.__file__).parent / "static"  # xterm.js, textual.js, the font
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                               autoescape=True)
COOKIE = "b25_web"
PROC = "web"


def session_cookie(token: str) -> str:
    """What the login cookie holds: an HMAC of the token (the token itself never leaves the form)."""
    return hmac.new(token.encode(), b"b25 web session", hashlib.sha256).hexdigest()


class WebServer:
    def __init__(self, cfg: WebConfig, command: list[str], token: str, title: str) -> None:
        self.cfg = cfg
        self.command = " ".join(shlex.quote(c) for c in command)
        self.token = token
        self.title = title
        self.sessions: set[AppService] = set()
        self.downloads = DownloadManager()
        self.started = 0  # sessions ever started
        self.refused = 0  # sessions refused for max_sessions

    @property
    def needs_login(self) -> bool:
        return not loopback(self.cfg.host)

    def allowed(self, request: web.Request) -> bool:
        """Whether this browser may see the page (loopback, or the login cookie off loopback)."""
        if not self.needs_login and loopback(request.remote):
            return True
        given = request.cookies.get(COOKIE, "")
        return bool(self.token) and hmac.compare_digest(given.encode(), session_cookie(self.token).encode())

    def full(self) -> bool:
        return len(self.sessions) >= self.cfg.max_sessions

    def _render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        html = TEMPLATES.get_template(name).render(title=self.title, **context)
        return web.Response(text=html, status=status, content_type="text/html",
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    def _busy(self) -> web.Response:
        self.refused += 1
        n = self.cfg.max_sessions
        return self._render("notice.html", 503, heading="All web sessions are in use",
                            lines=[f"{len(self.sessions)} of {n} browser sessions are open ([web] max_sessions = {n}).",
                                   "Each session is a TUI process on the trading host, so their number is capped.",
                                   "Close one (q in its TUI, or its browser tab) and reload this page, or raise "
                                   "[web] max_sessions."])

    async def index(self, request: web.Request) -> web.Response:
        if not self.allowed(request):
            return self._render("notice.html", 401, heading=self.title, login=True,
                                lines=["This server is reachable beyond this host: give the ops token to open it."])
        if self.full():
            return self._busy()
        scheme = "wss" if request.secure else "ws"
        font = request.query.get("fontsize", "16")
        return self._render("page.html", static="/static", font_size=font if font.isdigit() else "16",
                            websocket_url=f"{scheme}://{request.host}/ws")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = str(form.get("token", ""))
        if not self.token or not hmac.compare_digest(given.encode(), self.token.encode()):
            log.warn("web_login_refused", remote=request.remote)
            return self._render("notice.html", 403, heading=self.title, login=True, error="wrong token",
                                lines=["This server is reachable beyond this host: give the ops token to open it."])
        resp = web.HTTPSeeOther("/")
        resp.set_cookie(COOKIE, session_cookie(self.token), httponly=True, samesite="Strict", path="/")
        raise resp

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.allowed(request):
            raise web.HTTPForbidden(reason="the ops token is needed first (open / and log in)")
        if self.full():
            self.refused += 1
            raise web.HTTPServiceUnavailable(reason=f"all {self.cfg.max_sessions} web sessions are in use")
        ws = web.WebSocketResponse(heartbeat=15)
        await ws.prepare(request)
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        service = AppService(self.command, write_bytes=ws.send_bytes, write_str=ws.send_str, close=ws.close,
                             download_manager=self.downloads)
        self.sessions.add(service)
        self.started += 1
        log.info("web_session_started", remote=request.remote, sessions=len(self.sessions), size=f"{width}x{height}")
        try:
            await service.start(width, height)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                envelope = msg.json()
                kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
                if kind == "stdin":
                    await service.send_bytes(data.encode())
                elif kind == "resize":
                    await service.set_terminal_size(data["width"], data["height"])
                elif kind == "ping":
                    await ws.send_json(["pong", data])
                elif kind == "blur":
                    await service.blur()
                elif kind == "focus":
                    await service.focus()
        except asyncio.CancelledError:
            pass
        finally:
            self.sessions.discard(service)
            await service.stop()
            await ws.close()
            log.info("web_session_ended", remote=request.remote, sessions=len(self.sessions))
        return ws

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.add_routes([web.get("/", self.index), web.post("/login", self.login), web.get("/ws", self.websocket),
                        web.static("/static", STATIC)])
        app.on_shutdown.append(self._close_sessions)
        return app

    async def _close_sessions(self, _app: web.Application) -> None:
        await asyncio.gather(*(s.stop() for s in list(self.sessions)), return_exceptions=True)


def _int(raw: str | None, default: int) -> int:
    try:
        return max(10, min(500, int(raw or "")))
    except ValueError:
        return default


class WebAgent:
    """The web server as an agent of ``procs.core.async_agent`` (status block, heartbeat, clean stop)."""

    name = PROC

    def __init__(self, server: WebServer, runner: web.AppRunner) -> None:
        self.server = server
        self.runner = runner

    async def serve(self, run: AsyncRun) -> None:
        run.running()
        await run.stop.wait()

    def work(self) -> int:
        return self.server.started

    def on_heartbeat(self) -> None:
        pass

    async def on_close(self) -> None:
        await self.runner.cleanup()  # ends every session's TUI
        log.info("web_stopped", sessions_started=self.server.started, sessions_refused=self.server.refused)


async def start(server: WebServer, run: AsyncRun) -> WebAgent:
    """Bind ``[web] host/port`` and start serving; a port that cannot be bound fails the start."""
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, server.cfg.host, server.cfg.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = site._server.sockets[0].getsockname()[1] if site._server else server.cfg.port  # type: ignore[union-attr]
    log.info("listening", host=server.cfg.host, port=port, max_sessions=server.cfg.max_sessions,
             login_required=server.needs_login, url=f"http://{server.cfg.host}:{port}/")
    return WebAgent(server, runner)
