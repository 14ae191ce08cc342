"""The published schema and the server agree: schemathesis fuzzes every operation.

A real node (SQLite in a temporary folder, loopback ports) runs in a thread
of its own, with a registered user, a room and a message of theirs, so that
authenticated operations get past 401 and the room's and message's routes
past 404 (`logout` gets a session of its own each time). schemathesis (its
pytest integration: one test per operation) fuzzes the OpenAPI document the
app builds, which `test_the_fuzzed_schema_is_the_served_one` checks is the
node's `/openapi.json`: `EXAMPLES` schema-valid requests per operation plus
its boundary ("coverage") cases, derandomized with a fixed seed. It fails on
a 5xx, on a response the schema does not describe (status, content type,
headers, body) and on a schema-valid request refused with a 4xx other than
a state the schema cannot know (401, 403, 404, 409, 410, 429), except the
`DOCUMENTED_REFUSALS` (rules only a description can state), matched by code
and message.

The examples are fixed for a given code base and test selection; Hypothesis
also draws constants from the imported project modules, so running more
test modules can draw other (equally valid) examples. A failure is always a
real disagreement.

The test is synchronous (schemathesis sends with `requests`), so pytest-trio
leaves it alone; the node's trio loop runs in its thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import requests
import schemathesis
import trio
from schemathesis import Case, Response
from schemathesis.checks import (
    CheckFunction,
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chorus.config import Settings
from chorus.http import all_routes
from chorus.http._openapi import openapi_document
from chorus.text import VISIBLE_RULE
from tests.fixtures import open_test_node
from tests.http.conftest import PASSWORD

EXAMPLES = 20
"""Generated requests per operation (and per generation phase)."""
SEED = 20261205
STARTUP_TIMEOUT = 60.0
ACCEPTED_STATES = ["2xx", "401", "403", "404", "409", "410", "429"]
"""What a schema-valid request may get: success, or a state the schema cannot know."""

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,  # last: `DOCUMENTED_REFUSALS` are exempt from it
]

DOCUMENTED_REFUSALS = {
    "register": ("invalid_input", f"display_name: {VISIBLE_RULE}"),
    # Optional in the schema for cookie mode, where a header (not in the body) says so.
    "refresh": ("missing_field", "refresh_token: required field is missing"),
    "create_room": ("invalid_value", f"name: {VISIBLE_RULE}"),
    "open_direct_room": (
        "invalid_value",
        f"user_ids: a group has at most {Settings().max_group_size} users, you included",
    ),
    # The fuzzed room is a plain one: an envelope there is refused (its flag is room state).
    "post_message": ("invalid_value", "encrypted: this room is not encrypted"),
    "edit_message": ("invalid_value", "encrypted: this room is not encrypted"),
    # A signature is checked against the device's own key: only a device can make one.
    "register_device": ("bad_signature", "the signature of the device keys does not verify"),
}
"""The rules the schema states in a description only (JSON Schema cannot): per operation,
the one 400 error (code and message) that a schema-valid request may get. The node runs
with the default settings."""

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": EXAMPLES,
            "deterministic": True,
            "mode": "positive",
        },
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_STATES}},
    }
)
DOCUMENT = openapi_document(all_routes())
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@attrs.frozen(kw_only=True)
class LiveNode:
    """A running node's base URL and what the fuzzer's requests use on it."""

    url: str
    username: str
    access_token: str
    room_id: str
    message_id: str


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """A node serving HTTP in a thread until the module's tests are done."""
    handoff: queue.Queue[tuple[LiveNode, trio.lowlevel.TrioToken, trio.Event] | BaseException]
    handoff = queue.Queue()
    data_dir = tmp_path_factory.mktemp("fuzz-node")

    def run() -> None:
        try:
            trio.run(_serve, data_dir, handoff)
        except BaseException as exc:
            handoff.put(exc)

    thread = threading.Thread(target=run, name="fuzzed-node")
    thread.start()
    started = handoff.get(timeout=STARTUP_TIMEOUT)
    if isinstance(started, BaseException):
        raise started
    live, token, stop = started
    try:
        yield live
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout=STARTUP_TIMEOUT)
        assert not thread.is_alive()
        assert handoff.empty(), handoff.get()  # the node stopped without an error


async def _serve(
    data_dir: Path,
    handoff: queue.Queue[tuple[LiveNode, trio.lowlevel.TrioToken, trio.Event] | BaseException],
) -> None:
    # Many register and login attempts are the point here: no 429 (a state) hides a 400.
    async with open_test_node(data_dir, role="api", auth_attempts_per_minute=1_000_000) as (
        _node,
        addresses,
    ):
        assert addresses.http is not None
        host, port = addresses.http
        url = f"http://{host}:{port}"
        async with httpx.AsyncClient(base_url=f"{url}/api/v1") as http:
            account = {"username": "fuzzer", "password": PASSWORD}
            registered = await http.post("/auth/register", json=account)
            assert registered.status_code == 201, registered.text
            token = registered.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            room = await http.post("/rooms", json={"name": "fuzz", "kind": "public"}, headers=auth)
            assert room.status_code == 201, room.text
            room_id = room.json()["id"]
            body = {"body": "hello", "client_id": "seed"}
            posted = await http.post(f"/rooms/{room_id}/messages", json=body, headers=auth)
            assert posted.status_code == 201, posted.text
        live = LiveNode(
            url=url,
            username="fuzzer",
            access_token=token,
            room_id=room_id,
            message_id=posted.json()["message"]["id"],
        )
        stop = trio.Event()
        handoff.put((live, trio.lowlevel.current_trio_token(), stop))
        await stop.wait()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def test_the_fuzzed_schema_is_the_served_one(
    live_node: LiveNode, session: requests.Session
) -> None:
    served = session.get(f"{live_node.url}/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@schema.parametrize()
def test_schema_and_server_agree(
    case: Case[Any], live_node: LiveNode, session: requests.Session
) -> None:
    # The seeded room and message, so that their routes are exercised past 404.
    parameters = {"room_id": live_node.room_id, "message_id": live_node.message_id}
    for name, value in parameters.items():
        if case.path_parameters is not None and name in case.path_parameters:
            case.path_parameters[name] = value
    headers = {}
    if case.operation.definition.raw.get("security"):
        headers["Authorization"] = f"Bearer {_token_for(case, live_node, session)}"
    response = case.call(base_url=live_node.url, session=session, headers=headers)
    checks = CHECKS[:-1] if _documented_refusal(case, response) else CHECKS
    case.validate_response(response, headers=headers, checks=checks)


def _documented_refusal(case: Case[Any], response: Response) -> bool:
    """Whether `response` is exactly the refusal documented for the operation, if any."""
    expected = DOCUMENTED_REFUSALS.get(case.operation.definition.raw["operationId"])
    if expected is None or response.status_code != 400:
        return False
    error = response.json()["error"]
    return (error["code"], error["message"]) == expected


def _token_for(case: Case[Any], live_node: LiveNode, session: requests.Session) -> str:
    """The shared access token, or a fresh session's for an operation that ends its session."""
    if case.operation.definition.raw["operationId"] != "logout":
        return live_node.access_token
    credentials: dict[str, Any] = {"username": live_node.username, "password": PASSWORD}
    response = session.post(f"{live_node.url}/api/v1/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
