"""The monitor's route table: every route it serves, declared once, and the OpenAPI document
built from that same table (GET /api/openapi.json), so a route cannot be served undescribed.

A ``Route`` names its method, path, handler, parameters, request body (a msgspec Struct, whose
JSON Schema msgspec writes) and every status it can answer. A state-changing route
(``changes_state=True``) is wrapped by ``make_app`` (procs.monitor.ops): the ops token is checked,
the body decoded (a bad field is 400 naming it), and the call is written to the audit trail with
its operator and reason (procs.monitor.audit). Another module adds its routes with
``RouteTable.add`` before the app is built; ``tests/monitor/test_openapi.py`` compares the routes
aiohttp serves with the document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

JSON = "application/json"
Handler = Callable[..., Awaitable[web.StreamResponse]]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what was wrong, in words"},
                   "field": {"type": "string", "description": "the request field at fault (400), '' if none"}},
}
# answers every route can give besides its own
COMMON_RESPONSES = {400: "a bad parameter or body: `field` names it, `error` says why",
                    404: "no such route", 405: "the path exists for other methods",
                    413: "the request body is over 64 KiB"}
AUTH_RESPONSES = {401: "no `Authorization: Bearer <token>` header",
                  403: "a wrong token, or no ops token configured (state-changing calls are refused)"}


@dataclass(frozen=True)
class Param:
    """One query or path parameter."""

    name: str
    schema: dict[str, Any]
    description: str
    location: str = "query"  # "query" or "path"
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, DELETE
    path: str  # aiohttp syntax: /api/orders/{client_order_id}
    handler: Handler  # (request) -> response; (request, body, who) when changes_state
    summary: str
    responses: dict[int, str]  # status -> when it is answered (the common ones are added)
    tag: str = "read"
    params: tuple[Param, ...] = ()
    body: type | None = None  # a msgspec Struct: the JSON request body
    changes_state: bool = False  # needs the ops token; audited with operator and reason
    content_type: str = JSON  # of the 2xx answers
    description: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.path


@dataclass
class RouteTable:
    """Every route of the monitor, in the order they were added."""

    routes: list[Route] = field(default_factory=list)

    def add(self, *routes: Route) -> None:
        for r in routes:
            if any(o.key == r.key for o in self.routes):
                raise ValueError(f"route declared twice: {r.method} {r.path}")
            self.routes.append(r)

    def find(self, method: str, path: str) -> Route:
        for r in self.routes:
            if r.key == (method.upper(), path):
                return r
        raise KeyError(f"{method} {path}")

    def openapi(self, title: str, version: str, description: str = "") -> dict[str, Any]:
        """The OpenAPI 3.1 document of every route."""
        bodies = sorted({r.body for r in self.routes if r.body is not None}, key=lambda t: t.__name__)
        _, components = msgspec.json.schema_components(bodies, ref_template="#/components/schemas/{name}")
        components["Error"] = ERROR_SCHEMA
        paths: dict[str, dict[str, Any]] = {}
        for r in self.routes:
            paths.setdefault(r.path, {})[r.method.lower()] = _operation(r)
        return {"openapi": "3.1.0",
                "info": {"title": title, "version": version, "description": description},
                "paths": paths,
                "components": {"schemas": components,
                               "securitySchemes": {"opsToken": {"type": "http", "scheme": "bearer",
                                                                "description": "the ops token ([monitor] token_file "
                                                                               "or B25_MONITOR_TOKEN)"}}}}


def _operation(r: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": _operation_id(r), "summary": r.summary, "tags": [r.tag]}
    if r.description:
        op["description"] = r.description
    params = [{"name": p.name, "in": p.location, "required": p.required or p.location == "path",
               "description": p.description, "schema": p.schema} for p in r.params]
    if params:
        op["parameters"] = params
    if r.body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": {
            "$ref": f"#/components/schemas/{r.body.__name__}"}}}}
    if r.changes_state:
        op["security"] = [{"opsToken": []}]
    statuses = {**COMMON_RESPONSES, **(AUTH_RESPONSES if r.changes_state else {}), **r.responses}
    responses: dict[str, Any] = {}
    for status, why in sorted(statuses.items()):
        if status < 300 and r.content_type != JSON:
            responses[str(status)] = {"description": why, "content": {r.content_type: {"schema": {"type": "string"}}}}
        elif status < 300:
            responses[str(status)] = {"description": why, "content": {JSON: {"schema": {"type": "object"}}}}
        elif status == 101:
            responses[str(status)] = {"description": why}
        else:
            responses[str(status)] = {"description": why,
                                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    return op


def _operation_id(r: Route) -> str:
    words = [w.strip("{}") for w in r.path.strip("/").replace(".", "_").split("/") if w]
    return "_".join([r.method.lower(), *words])


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every route ``app`` answers (aiohttp's implicit HEAD of a GET left out)."""
    out = set()
    for res in app.router.resources():
        info = res.get_info()
        path = info.get("path") or info.get("formatter")
        for route in res:
            if route.method != "HEAD":
                out.add((route.method, path))
    return out


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
