"""The ops API's config routes (``procs.core.versions``, ``procs.core.rollout``).

GET  /api/config                 the deployment file as applied (secrets masked), its version, and
                                 per running process the version it runs
GET  /api/config/versions        every stored version: seq, time, sha256, source, operator, reason, applied by
POST /api/config/reload   {"reason": "...", "operator": "", "restart": false}
                                 the file as it is now into service: reloaded where the process can,
                                 restart-only changes named (restarted through supervisorctl only with restart)
POST /api/config/rollback {"seq": N, "reason": "...", "operator": "", "restart": false}
                                 version N written over the file, then as reload

Both POSTs are state-changing routes of the route table (procs.monitor.routes): the ops token,
the body (400 naming the field) and the audit record come from ``make_app``; they record the
operator and reason with the version too, answer 400 with every problem of an invalid config
(nothing changes then), and otherwise 200 with what each process did (``complete`` is false while
a restart is pending).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from procs.core import log
from procs.core.config import ConfigError, parse
from procs.core.rollout import apply
from procs.core.status import read_status
from procs.core.versions import VersionStore, sha256, store_for

from .routes import Handler, Route

SECRET_WORDS = ("secret", "password", "token", "api_key")


class ConfigChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: str
    operator: str = ""
    restart: bool = False

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("a reason is required: reason=''")


class Rollback(ConfigChange):
    seq: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seq < 1:
            raise ValueError(f"seq must be >= 1: seq={self.seq}")


def masked(doc: Any, key: str = "") -> Any:
    """``doc`` with every secret-looking value replaced by ``***`` (never sent over the API)."""
    if isinstance(doc, dict):
        return {k: masked(v, k) for k, v in doc.items()}
    if isinstance(doc, list):
        return [masked(v, key) for v in doc]
    if any(w in key for w in SECRET_WORDS) and not key.endswith(("_env", "_file")) and doc:
        return "***"
    return doc


def config_routes(config_path: str | None, instance: str, bad_request: type[Exception],
                  supervisorctl: list[str] | None = None) -> list[Route]:
    """The four routes, for ``make_app`` to add; ``bad_request(reason, field)`` is its 400."""
    from procs.core import services
    from procs.tools.config_cli import version_row

    path = Path(config_path) if config_path else None
    BadRequest = bad_request  # noqa: N806 - the class the app's error middleware answers 400 for

    versions = store_for(config_path, instance)  # where the file said at start: a broken file cannot hide it

    def store() -> VersionStore:
        return versions

    def need_file() -> Path:
        if path is None:
            raise web.HTTPConflict(reason="the monitor runs on defaults (no --config): there is no file to version")
        return path

    async def current(_r: web.Request) -> web.Response:
        p = need_file()
        data = p.read_bytes()
        v = store().by_hash(sha256(data))
        running = {}
        for s in services.SERVICES:
            st = None if s.external else read_status(instance, s.name)
            if st is not None:
                rv = store().by_hash(st["config_hash"])
                running[s.name] = {"config_hash": st["config_hash"], "seq": rv.seq if rv else None,
                                   "state": st["state"], "alive": st["alive"]}
        return web.json_response({"path": str(p), "sha256": sha256(data), "seq": v.seq if v else None,
                                  "config": masked(parse(data, str(p))), "running": running})

    async def list_versions(_r: web.Request) -> web.Response:
        return web.json_response({"versions": [version_row(v) for v in store().versions()]})

    def guarded(run: Callable[[Any, str], Any]) -> Handler:
        async def handler(_request: web.Request, body: ConfigChange, who: Any) -> web.Response:
            operator = who.operator
            try:
                done = await asyncio.get_running_loop().run_in_executor(None, run, body, operator)
            except ConfigError as exc:
                return web.json_response({"error": "invalid config: nothing was changed",
                                          "problems": str(exc).splitlines()}, status=400)
            log.info("config_applied", operator=operator, reason=body.reason, seq=done.seq,
                     complete=done.complete)
            return web.json_response(done.as_dict())
        return handler

    def reload(body: ConfigChange, operator: str) -> Any:
        p = need_file()
        return apply(p, instance, p.read_bytes(), store(), event="reload", source="ops_api", operator=operator,
                     reason=body.reason, restart=body.restart, supervisorctl=supervisorctl)

    def rollback(body: Rollback, operator: str) -> Any:
        p = need_file()
        try:
            data = store().data(body.seq)
        except KeyError as exc:
            raise BadRequest(str(exc.args[0]), "seq") from None
        return apply(p, instance, data, store(), event="rollback", source="ops_api", operator=operator,
                     reason=f"rollback to {body.seq}: {body.reason}", restart=body.restart, supervisorctl=supervisorctl)

    no_file = {409: "the monitor runs on defaults (no --config): there is no file"}
    applied = {200: "what each process did (`complete` false while a restart is pending)",
               400: "a bad body (`field` names it), or an invalid config: `problems` lists them, nothing changed",
               **no_file}
    return [Route("GET", "/api/config", current, "the deployment file as applied (secrets masked), its version, and "
                  "the version each running process runs", {200: "the config", **no_file}, tag="config"),
            Route("GET", "/api/config/versions", list_versions, "every stored config version",
                  {200: "versions: seq, time, sha256, source, operator, reason"}, tag="config"),
            Route("POST", "/api/config/reload", guarded(reload), "the file as it is now into service", applied,
                  tag="config", body=ConfigChange, changes_state=True),
            Route("POST", "/api/config/rollback", guarded(rollback), "version `seq` written over the file, then "
                  "reloaded", applied, tag="config", body=Rollback, changes_state=True)]
