"""Input validation and the error shape: every failure is JSON `{"error": {code, message}}`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from chorus.actors import ActorDead, AskTimeout
from chorus.http import MAX_BODY_BYTES
from chorus.persistence import StoreUnavailable
from tests.http.conftest import Account, Server, assert_error, open_server, published_rule
from tests.pgserver import PgServer


async def create(server: Server, user: Account, **kwargs: Any) -> Any:
    return await server.post("/api/v1/rooms", user, **kwargs)


async def test_unknown_missing_and_mistyped_fields_are_named(server: Server, ada: Account) -> None:
    unknown = await create(server, ada, json={"name": "a", "kind": "public", "topic": "x"})
    assert "topic" in assert_error(unknown, 400, "extra_field")
    missing = await create(server, ada, json={"name": "a"})
    assert "kind" in assert_error(missing, 400, "missing_field")
    wrong = await create(server, ada, json={"name": 5, "kind": "public"})
    assert "name" in assert_error(wrong, 400, "wrong_type")
    null = await create(server, ada, json={"name": None, "kind": "public"})
    assert_error(null, 400, "wrong_type")
    choice = await create(server, ada, json={"name": "a", "kind": "direct"})
    assert "kind" in assert_error(choice, 400, "invalid_value")


async def test_lengths_are_checked_at_the_boundary(server: Server, ada: Account) -> None:
    too_long = await create(server, ada, json={"name": "n" * 101, "kind": "public"})
    assert "name" in assert_error(too_long, 400, "invalid_value")
    empty = await create(server, ada, json={"name": "", "kind": "public"})
    assert_error(empty, 400, "invalid_value")
    longest = await create(server, ada, json={"name": "ü" * 100, "kind": "public"})
    assert longest.status_code == 201


async def test_malformed_json_and_non_objects_are_refused(server: Server, ada: Account) -> None:
    json_headers = {"Content-Type": "application/json"}
    broken = await create(server, ada, content=b'{"name": ', headers=json_headers)
    assert_error(broken, 400, "invalid_json")
    not_utf8 = await create(server, ada, content=b'{"name": "\xff"}', headers=json_headers)
    assert_error(not_utf8, 400, "invalid_json")
    array = await create(server, ada, json=["name", "kind"])
    assert_error(array, 400, "not_an_object")
    empty = await create(server, ada, content=b"", headers=json_headers)
    assert_error(empty, 400, "missing_field")


async def test_a_body_that_is_not_json_gets_415(server: Server, ada: Account) -> None:
    form = await create(server, ada, data={"name": "a", "kind": "public"})
    assert_error(form, 415, "unsupported_media_type")


async def test_a_body_without_a_content_type_gets_415(server: Server, ada: Account) -> None:
    # docs/api.md said 415, but a JSON body without Content-Type was accepted (issue 12).
    unlabelled = await create(server, ada, content=b'{"name": "a", "kind": "public"}')
    assert "content-type" not in unlabelled.request.headers
    assert_error(unlabelled, 415, "unsupported_media_type")
    # No body at all needs no Content-Type.
    assert (await server.post("/api/v1/auth/logout", ada)).status_code == 204


async def test_bodies_over_64_kib_get_413(server: Server, ada: Account) -> None:
    body = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'", "kind": "public"}'
    declared = await create(server, ada, content=body, headers={"Content-Type": "application/json"})
    assert_error(declared, 413, "too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    # Without Content-Length (chunked) the limit is applied while reading.
    chunked = await create(
        server, ada, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(chunked, 413, "too_large")


async def test_query_parameters_are_validated_too(server: Server, ada: Account) -> None:
    url = "/api/v1/rooms/public"
    assert_error(await server.get(url, ada, params={"limit": 0}), 400, "invalid_value")
    assert_error(await server.get(url, ada, params={"limit": 101}), 400, "invalid_value")
    assert_error(await server.get(url, ada, params={"limit": "ten"}), 400, "wrong_type")
    assert_error(await server.get(url, ada, params={"limit": "-1"}), 400, "wrong_type")
    assert_error(await server.get(url, ada, params={"page": 2}), 400, "extra_field")
    assert_error(await server.get(url + "?limit=1&limit=2", ada), 400, "invalid_value")
    post_with_query = await server.post("/api/v1/rooms?kind=public", ada, json={})
    assert_error(post_with_query, 400, "extra_field")


async def test_unknown_routes_and_methods_answer_json(server: Server, ada: Account) -> None:
    assert_error(await server.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await server.get("/nothing-here"), 404, "not_found")  # `/` is the web client
    wrong_method = await server.call("PUT", "/api/v1/rooms", ada)
    assert_error(wrong_method, 405, "method_not_allowed")
    assert set(wrong_method.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert_error(await server.call("OPTIONS", "/api/v1/rooms"), 405, "method_not_allowed")


async def test_overlong_path_ids_name_nothing(server: Server, ada: Account) -> None:
    response = await server.get("/api/v1/rooms/" + "r" * 65, ada)
    assert_error(response, 404, "not_found")


async def test_a_path_id_holding_nul_names_nothing_on_postgresql(
    tmp_path: Path, pg_server: PgServer
) -> None:
    # PostgreSQL text cannot hold NUL: the lookup failed, and answered 500 (issue 12).
    _, database_url = await pg_server.new_database()
    async with open_server(tmp_path, database_url=database_url) as server:
        ada = await server.register("ada")
        room = await server.create_room(ada)
        for path in (
            "/api/v1/users/u_%00",
            "/api/v1/users/by-name/ada%00",
            f"/api/v1/rooms/{room}/messages/m_%00",
            "/api/v1/rooms/r_%00/messages",
        ):
            assert_error(await server.get(path, ada), 404, "not_found")
        accepts = await published_rule(server, "GET", "/api/v1/users/{user_id}", "user_id")
        assert not accepts("u_\x00")
        assert accepts("u_x")


async def test_a_trailing_slash_is_not_redirected(server: Server, ada: Account) -> None:
    response = await server.get("/api/v1/rooms/", ada)
    assert response.status_code == 200


def fail_with(error: Exception) -> Any:
    async def fail(*_args: object, **_kwargs: object) -> NoReturn:
        raise error

    return fail


async def test_a_bug_answers_500_internal_without_details(
    server: Server, ada: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.services.store, "get_user", fail_with(RuntimeError("secret")))
    response = await server.get("/api/v1/users/me", ada)
    message = assert_error(response, 500, "internal")
    assert "secret" not in response.text
    assert "RuntimeError" not in message


async def test_an_unavailable_store_answers_503(
    server: Server, ada: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.services.store, "rooms_of", fail_with(StoreUnavailable("locked")))
    response = await server.get("/api/v1/rooms", ada)
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("error", [ActorDead("gone"), AskTimeout("slow")])
async def test_a_dead_or_slow_room_actor_answers_503(
    server: Server, ada: Account, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    room = await server.create_room(ada)
    monkeypatch.setattr(server.services.rooms, "ask", fail_with(error))
    response = await server.post(
        f"/api/v1/rooms/{room}/messages", ada, json={"body": "hi", "client_id": "c1"}
    )
    assert_error(response, 503, "unavailable")
