"""The monitor's route table and its OpenAPI document: every served route is described, and a
route another module registers is served and described too (no process: the app is built here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from procs.monitor.config import MonitorConfig
from procs.monitor.ops import OPENAPI, ROUTES, CommandBody, Monitor, make_app
from procs.monitor.routes import Route, RouteTable, documented_routes, served_routes
from procs.monitor.shmview import InstanceView


@pytest.fixture
def monitor(instance: str, tmp_path) -> Iterator[Monitor]:
    view = InstanceView(instance)
    yield Monitor(MonitorConfig(required=["risk"], audit_dir=str(tmp_path)), view, ["BTCUSDT", "ETHUSDT"], "t")
    view.close()


class ReloadConfigBody(CommandBody):
    process: str


async def reload_config(_r: web.Request, _body: ReloadConfigBody, _who: object) -> web.Response:
    return web.json_response({"sent": "x"}, status=202)


async def config_versions(_r: web.Request) -> web.Response:
    return web.json_response({"versions": []})


def test_openapi_when_built_then_documents_exactly_the_served_routes(monitor):
    app = make_app(monitor)
    doc = app[OPENAPI]
    assert served_routes(app) == documented_routes(doc)
    assert {("GET", "/api/openapi.json"), ("POST", "/api/orders"), ("DELETE", "/api/orders/{client_order_id}"),
            ("GET", "/api/strategies"), ("GET", "/health/live"), ("GET", "/health/ready"),
            ("GET", "/health"), ("GET", "/api/account"), ("GET", "/api/config"), ("GET", "/api/config/versions"),
            ("POST", "/api/config/reload"), ("POST", "/api/config/rollback")} <= documented_routes(doc)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_openapi_when_a_route_changes_state_then_it_names_the_token_and_its_refusals(monitor):
    table: RouteTable = make_app(monitor)[ROUTES]
    doc = table.openapi("t", "1")
    for r in table.routes:
        op = doc["paths"][r.path][r.method.lower()]
        if r.changes_state:
            assert op["security"] == [{"opsToken": []}] and {"401", "403"} <= set(op["responses"]), r.path
        else:
            assert "security" not in op and "401" not in op["responses"], r.path
        assert "400" in op["responses"]
    body = doc["components"]["schemas"]["OrderBody"]
    assert {"symbol", "side", "qty"} <= set(body["required"])
    assert {"operator", "reason"} <= set(body["properties"])
    assert body["properties"]["reason"]["maxLength"] == 500


def test_openapi_when_another_module_adds_routes_then_they_are_served_described_and_guarded(monitor):
    extra = [Route("GET", "/api/example/versions", config_versions, "an example module's read", {200: "versions"}),
             Route("POST", "/api/example/reload", reload_config, "an example module's write", {202: "sent"},
                   body=ReloadConfigBody, changes_state=True, tag="command")]
    app = make_app(monitor, extra)
    doc = app[OPENAPI]
    assert served_routes(app) == documented_routes(doc)
    assert doc["paths"]["/api/example/reload"]["post"]["security"] == [{"opsToken": []}]
    assert "ReloadConfigBody" in doc["components"]["schemas"]
    # the symbol enum is the deployment's
    assert doc["components"]["schemas"]["OrderBody"]["properties"]["symbol"]["enum"] == ["BTCUSDT", "ETHUSDT"]
    json_doc = msgspec.json.encode(doc)
    assert msgspec.json.decode(json_doc) == doc  # plain JSON all the way

    async def calls() -> list[tuple[int, dict]]:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            out = []
            for headers in ({}, {"Authorization": "Bearer t"}):
                r = await client.post("/api/example/reload", json={"process": "risk", "operator": "carol",
                                                                   "reason": "new limits"}, headers=headers)
                out.append((r.status, await r.json()))
            r = await client.get("/api/audit")
            out.append((r.status, await r.json()))
            return out

    refused, sent, audit = asyncio.run(calls())
    assert refused[0] == 401 and sent == (202, {"sent": "x"})
    [rec] = audit[1]["records"]
    assert (rec["action"], rec["operator"], rec["reason"], rec["args"], rec["status"]) == (
        "POST /api/example/reload", "carol", "new limits", {"process": "risk"}, 202)


def test_route_table_when_a_route_is_declared_twice_then_refuses():
    table = RouteTable()
    table.add(Route("GET", "/x", config_versions, "x", {200: "x"}))
    with pytest.raises(ValueError, match="declared twice: GET /x"):
        table.add(Route("GET", "/x", config_versions, "x again", {200: "x"}))
