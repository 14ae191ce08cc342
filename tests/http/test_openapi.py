"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import re
from typing import Any

from chorus.http import API_PREFIX, all_routes, create_app
from tests.http.conftest import Account, Server, assert_error

IMPLICIT = {"HEAD", "OPTIONS"}
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/login/2fa"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/exchange"),  # the provider token in the body is the credential
    ("get", "/api/v1/gateway"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/files/{file_id}/{variant}"),  # the signed URL is the credential
}


async def document(server: Server) -> dict[str, Any]:
    response = await server.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item}


async def test_every_app_route_is_documented_and_vice_versa(server: Server) -> None:
    app = create_app(server.services)
    served = set()
    for rule in app.url_map.iter_rules():
        # `<segment("public"):room_id>` is the template's `{room_id}`.
        path = re.sub(r"<(?:[^:>]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        served |= {(method.lower(), path) for method in (rule.methods or set()) - IMPLICIT}
    assert served == operations(await document(server))
    assert len(served) == len(all_routes())


async def test_the_document_is_openapi_3_1_with_bearer_security(server: Server) -> None:
    doc = await document(server)
    assert doc["openapi"] == "3.1.0"
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path in operations(doc):
        operation = doc["paths"][path][method]
        expected: list[dict[str, list[str]]] = [] if (method, path) in PUBLIC else [{"bearer": []}]
        assert operation["security"] == expected, (method, path)
        assert "default" in operation["responses"]
        if expected:
            assert "401" in operation["responses"]
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in path
    assert {path for _, path in operations(doc) if not path.startswith(API_PREFIX)} == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/files/{file_id}/{variant}",
    }


def refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(item) for item in node))
    return set()


async def test_every_reference_resolves_and_bodies_are_closed(server: Server) -> None:
    doc = await document(server)
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    register = doc["paths"]["/api/v1/auth/register"]["post"]
    body = schemas[register["requestBody"]["content"]["application/json"]["schema"]["$ref"][21:]]
    assert body["additionalProperties"] is False
    assert body["required"] == ["username", "password"]
    assert body["properties"]["display_name"]["type"] == ["string", "null"]
    assert set(register["responses"]) == {
        "201",
        "400",
        "403",
        "409",
        "413",
        "415",
        "429",
        "503",
        "default",
    }
    history = doc["paths"]["/api/v1/rooms/{room_id}/messages"]["get"]
    limit = next(p for p in history["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}
    message = schemas["Message"]
    assert set(message["required"]) == {
        "id",
        "room",
        "seq",
        "sender",
        "body",
        "client_id",
        "created_at",
        "edited_at",
    }


async def test_room_events_are_described_by_the_protocol_schemas(server: Server) -> None:
    doc = await document(server)
    schemas = doc["components"]["schemas"]
    history = doc["paths"]["/api/v1/rooms/{room_id}/messages"]["get"]
    page = history["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    events = schemas[page.removeprefix("#/components/schemas/")]["properties"]["events"]
    assert events["items"]["anyOf"] == [
        {"$ref": f"#/components/schemas/{name}"}
        for name in ("MessageEvent", "EditedEvent", "DeletedEvent", "ReactionEvent")
    ]
    assert schemas["ReactionEvent"]["properties"]["type"] == {"const": "reaction"}
    assert schemas["MessageDetail"]["properties"]["reactions"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    # A reaction is written with its client_id in the query string, and no body.
    react = doc["paths"]["/api/v1/rooms/{room_id}/messages/{message_id}/reactions/{emoji}"]["put"]
    assert "requestBody" not in react
    assert [p["name"] for p in react["parameters"] if p["in"] == "query"] == ["client_id"]
    assert "410" in react["responses"]
    assert "415" not in react["responses"]


async def test_allow_lists_exactly_the_methods_of_each_documented_path(
    server: Server, ada: Account
) -> None:
    # /rooms/public answered Allow: GET, HEAD, PATCH: the PATCH of /rooms/{room_id} (issue 12).
    for path, item in (await document(server))["paths"].items():
        methods = {method.upper() for method in item}
        methods |= {"HEAD"} if "GET" in methods else set()
        response = await server.call("OPTIONS", re.sub(r"{[a-z_]+}", "x", path), ada)
        assert_error(response, 405, "method_not_allowed")
        assert set(response.headers["allow"].split(", ")) == methods, path
