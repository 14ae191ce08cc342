"""Sign-in with provider tokens over HTTP and in `hello`, and the JWT attack matrix (issue #14).

A real node (SQLite, HTTP API and gateway on free loopback ports) trusts two
stand-in providers (`tests/auth/provider.py`): A signs with RS256, B with
ES256. Every forged or unfit token must be refused with 401 `invalid_token`
(close 4000 in `hello`) and must create no user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from trio_websocket import ConnectionClosed

from chorus import protocol
from chorus.node import load_signing_key
from chorus.protocol import CloseCode, ErrorCode
from chorus.services import Services
from tests.auth.provider import APP_ORIGIN, AUDIENCE, Provider, new_key, open_provider
from tests.fixtures import open_test_node
from tests.wsclient import ws_connect

EXCHANGE = "/api/v1/auth/exchange"


@attrs.define
class Node:
    services: Services
    http: httpx.AsyncClient
    gateway_port: int

    async def exchange(self, token: str) -> httpx.Response:
        return await self.http.post(EXCHANGE, json={"token": token})

    async def hello(self, token: str) -> protocol.ServerFrame:
        """The first frame the gateway answers `hello` with (after it, the connection closes)."""
        async with ws_connect(self.gateway_port) as ws:
            await ws.send_message(protocol.encode(protocol.Hello(token=token)).decode())
            return protocol.decode_server_frame(await ws.get_message())

    async def me(self, access_token: str) -> httpx.Response:
        return await self.http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"}
        )


@pytest.fixture(scope="module")
def provider_a() -> Iterator[Provider]:
    with open_provider(new_key("a1", "RS256")) as provider:
        yield provider


@pytest.fixture(scope="module")
def provider_b() -> Iterator[Provider]:
    with open_provider(new_key("b1", "ES256")) as provider:
        yield provider


@pytest.fixture(scope="module")
def attacker() -> Iterator[Provider]:
    """A server no setting names: tokens point at it (`jku`, `x5u`); it must never be asked."""
    with open_provider(new_key("evil", "RS256")) as provider:
        yield provider


@asynccontextmanager
async def open_oidc_node(data_dir: Path, *providers: Any, **overrides: Any) -> AsyncIterator[Node]:
    settings = {"identity_providers": providers, "jwks_min_refresh_interval": 0.0} | overrides
    async with open_test_node(data_dir, **settings) as (node, addresses):
        assert addresses.http is not None
        assert addresses.gateway is not None
        host, port = addresses.http
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            yield Node(node.services, http, addresses.gateway[1])


@pytest.fixture
async def node(tmp_path: Path, provider_a: Provider, provider_b: Provider) -> AsyncIterator[Node]:
    async with open_oidc_node(tmp_path, provider_a.config(), provider_b.config()) as node:
        yield node


# -- signing in ------------------------------------------------------------------------


async def test_first_sign_in_creates_the_user_and_the_next_finds_it(
    node: Node, provider_a: Provider
) -> None:
    token = provider_a.token("user_ada", preferred_username="Ada.L", name="Ada Lovelace")
    first = await node.exchange(token)
    assert first.status_code == 200, first.text
    user = first.json()["user"]
    assert (user["username"], user["display_name"]) == ("ada.l", "Ada Lovelace")
    second = await node.exchange(provider_a.token("user_ada", preferred_username="other"))
    assert second.status_code == 200, second.text
    assert second.json()["user"] == user
    assert second.json()["session_id"] != first.json()["session_id"]
    store = node.services.store
    assert await store.get_external_user(provider_a.issuer, "user_ada") is not None
    assert await store.get_credentials("ada.l") is None  # no password to guess


async def test_the_session_is_a_chorus_session_refresh_and_logout_work_the_same(
    node: Node, provider_a: Provider
) -> None:
    tokens = (await node.exchange(provider_a.token("user_ada"))).json()
    assert (await node.me(tokens["access_token"])).status_code == 200
    refreshed = await node.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    logout = await node.http.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {access}"}
    )
    assert logout.status_code == 204
    assert (await node.me(access)).status_code == 401


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_each_allowed_algorithm_signs_in(tmp_path: Path, algorithm: str) -> None:
    with open_provider(new_key("k1", algorithm)) as provider:
        async with open_oidc_node(tmp_path, provider.config()) as node:
            response = await node.exchange(provider.token("sub-1", preferred_username="eve"))
            assert response.status_code == 200, response.text


async def test_names_from_claims_are_made_valid_and_unique_and_never_merged(
    node: Node, provider_a: Provider, provider_b: Provider
) -> None:
    register = {"username": "grace", "password": "correct horse battery staple"}
    local = (await node.http.post("/api/v1/auth/register", json=register)).json()["user"]
    users = []
    for provider, sub in ((provider_a, "s1"), (provider_a, "s2"), (provider_b, "s1")):
        token = provider.token(
            sub,
            preferred_username="Grace Hopper!",
            email="grace@example.com",
            email_verified=True,
        )
        response = await node.exchange(token)
        assert response.status_code == 200, response.text
        users.append(response.json()["user"])
    assert users[0]["username"] == "grace_hopper"
    assert len({user["id"] for user in [local, *users]}) == 4  # same name, same e-mail: 4 users
    for user in users[1:]:
        assert user["username"].startswith("grace_hopper-")
    # Nothing usable in the claims: still a valid username.
    bare = await node.exchange(provider_a.token("s3", name="\u202e\u0000"))
    assert bare.status_code == 200, bare.text
    assert bare.json()["user"]["username"].startswith("user")
    assert bare.json()["user"]["display_name"] == bare.json()["user"]["username"]


async def test_link_by_email_joins_verified_emails_of_providers_that_allow_it(
    tmp_path: Path, provider_a: Provider, provider_b: Provider
) -> None:
    configs = (provider_a.config(link_by_email=True), provider_b.config(link_by_email=True))
    async with open_oidc_node(tmp_path, *configs) as node:
        email: dict[str, Any] = {"email": "Ada@Example.com", "email_verified": True}
        first = (await node.exchange(provider_a.token("a-ada", **email))).json()["user"]
        same = (await node.exchange(provider_b.token("b-ada", **email))).json()["user"]
        assert same == first
        unverified: dict[str, Any] = {"email": "ada@example.com", "email_verified": False}
        other = (await node.exchange(provider_b.token("b-other", **unverified))).json()["user"]
        assert other["id"] != first["id"]


async def test_hello_with_a_provider_token_signs_in(node: Node, provider_a: Provider) -> None:
    ready = await node.hello(provider_a.token("user_ada", preferred_username="ada"))
    assert isinstance(ready, protocol.Ready), ready
    user = await node.services.store.get_external_user(provider_a.issuer, "user_ada")
    assert user is not None
    assert ready.user_id == user.id
    session = await node.services.store.get_session(ready.session_id)
    assert session is not None
    assert session.user_id == user.id
    again = await node.hello(provider_a.token("user_ada"))
    assert isinstance(again, protocol.Ready)
    assert again.user_id == user.id


async def test_a_deactivated_user_cannot_sign_in_with_a_provider_token_over_http_or_hello(
    node: Node, provider_a: Provider
) -> None:
    tokens = (await node.exchange(provider_a.token("user_ada"))).json()
    ended = await node.services.auth.deactivate(tokens["user"]["id"], actor_id=None)
    assert ended == 1
    refused = await node.exchange(provider_a.token("user_ada"))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_credentials"
    answer = await node.hello(provider_a.token("user_ada"))
    assert isinstance(answer, protocol.ErrorReply), answer
    await node.services.auth.reactivate(tokens["user"]["id"], actor_id=None)
    assert (await node.exchange(provider_a.token("user_ada"))).status_code == 200


async def test_hello_with_a_chorus_token_still_works(node: Node, provider_a: Provider) -> None:
    tokens = (await node.exchange(provider_a.token("user_ada"))).json()
    ready = await node.hello(tokens["access_token"])
    assert isinstance(ready, protocol.Ready)
    assert ready.session_id == tokens["session_id"]


async def test_provider_sign_ins_count_against_the_address_over_http_and_hello(
    tmp_path: Path, provider_a: Provider
) -> None:
    async with open_oidc_node(tmp_path, provider_a.config(), auth_attempts_per_minute=3) as node:
        token = provider_a.token("user_ada")
        assert (await node.exchange(token)).status_code == 200
        assert isinstance(await node.hello(token), protocol.Ready)
        assert (await node.exchange(token)).status_code == 200
        # The address's three attempts are spent: both ways in are refused now.
        assert (await node.exchange(token)).status_code == 429
        async with ws_connect(node.gateway_port) as ws:
            await ws.send_message(protocol.encode(protocol.Hello(token=token)).decode())
            error = protocol.decode_server_frame(await ws.get_message())
            assert isinstance(error, protocol.ErrorReply)
            assert error.code == ErrorCode.RATE_LIMITED
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason is not None
            assert closed.value.reason.code == CloseCode.RATE_LIMITED
        # Chorus tokens are not sign-ins: they still get in.
        user = await node.services.store.get_external_user(provider_a.issuer, "user_ada")
        assert user is not None
        session = await node.services.auth.open_session(user)
        assert isinstance(await node.hello(session.access_token), protocol.Ready)


async def test_a_rotated_key_is_fetched_and_a_removed_one_refused(
    node: Node, provider_a: Provider
) -> None:
    old, new = provider_a.keys[0], new_key("a2", "RS256")
    assert (await node.exchange(provider_a.token("user_ada", key=old))).status_code == 200
    fetches = provider_a.jwks_fetches
    provider_a.keys = [new]
    try:
        # Cached: the old key still works until the provider's keys are fetched again.
        assert (await node.exchange(provider_a.token("user_ada", key=old))).status_code == 200
        assert provider_a.jwks_fetches == fetches
        # An unknown kid fetches them: the new key is picked up...
        assert (await node.exchange(provider_a.token("user_ada", key=new))).status_code == 200
        assert provider_a.jwks_fetches == fetches + 1
        # ... and the removed one is refused from then on.
        refused = await node.exchange(provider_a.token("user_ada", key=old))
        assert refused.status_code == 401
    finally:
        provider_a.keys = [old]


async def test_unknown_kids_fetch_the_keys_at_most_once_per_interval(
    tmp_path: Path, provider_a: Provider
) -> None:
    async with open_oidc_node(
        tmp_path, provider_a.config(), jwks_min_refresh_interval=3600.0
    ) as node:
        assert (await node.exchange(provider_a.token("user_ada"))).status_code == 200
        fetches = provider_a.jwks_fetches
        stranger = new_key("made-up-0", "RS256")
        for n in range(20):
            stranger.kid = f"made-up-{n}"
            response = await node.exchange(provider_a.token("user_ada", key=stranger))
            assert response.status_code in (401, 429), response.text
        assert provider_a.jwks_fetches == fetches


async def test_a_provider_that_cannot_be_reached_is_503_not_401(tmp_path: Path) -> None:
    with open_provider(new_key("k1")) as provider:
        config = provider.config()
    # The server is gone now: nothing listens on its port.
    async with open_oidc_node(tmp_path, config) as node:
        response = await node.exchange(provider.token("sub-1"))
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert await node.services.store.get_external_user(provider.issuer, "sub-1") is None


async def test_a_provider_that_cannot_be_reached_in_hello_is_unavailable(tmp_path: Path) -> None:
    with open_provider(new_key("k1")) as provider:
        config = provider.config()
    async with open_oidc_node(tmp_path, config) as node, ws_connect(node.gateway_port) as ws:
        await ws.send_message(protocol.encode(protocol.Hello(token=provider.token("s"))).decode())
        error = protocol.decode_server_frame(await ws.get_message())
        assert isinstance(error, protocol.ErrorReply)
        assert error.code == ErrorCode.UNAVAILABLE
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason is not None
        assert closed.value.reason.code == CloseCode.GOING_AWAY


async def test_without_providers_the_exchange_refuses_every_token(
    tmp_path: Path, provider_a: Provider
) -> None:
    async with open_oidc_node(tmp_path) as node:
        response = await node.exchange(provider_a.token("user_ada"))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_token"


# -- the attack matrix -------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made by hand: PyJWT refuses to use a PEM public key as an HMAC secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64(json.dumps(claims | changes).encode())}.{signature}"


@attrs.frozen
class Keys:
    a: Provider
    b: Provider
    attacker: Provider


SUB = "mallory"


def _public_pem(provider: Provider) -> bytes:
    public = provider.keys[0].private.public_key()
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


ATTACKS: dict[str, Callable[[Keys], str]] = {
    "alg none": lambda k: unsigned({"alg": "none", "kid": "a1"}, k.a.claims(SUB)),
    "alg None, capitalised": lambda k: unsigned({"alg": "None", "kid": "a1"}, k.a.claims(SUB)),
    "HS256 signed with the provider's public key": lambda k: hand_signed(
        {"alg": "HS256", "typ": "JWT", "kid": "a1"}, k.a.claims(SUB), _public_pem(k.a)
    ),
    "unknown kid": lambda k: k.a.token(SUB, headers={"kid": "a9"}),
    "kid with a path": lambda k: k.a.token(SUB, headers={"kid": "../../../../etc/passwd"}),
    "kid with SQL": lambda k: k.a.token(SUB, headers={"kid": "a1' OR '1'='1' --"}),
    "no kid": lambda k: jwt.encode(k.a.claims(SUB), k.a.keys[0].private, algorithm="RS256"),
    "jku to another server": lambda k: k.attacker.token(
        SUB, iss=k.a.issuer, headers={"jku": k.attacker.url + "/.well-known/jwks.json"}
    ),
    "x5u to another server": lambda k: k.attacker.token(
        SUB, iss=k.a.issuer, headers={"x5u": k.attacker.url + "/cert.pem"}
    ),
    "jku on an otherwise valid token": lambda k: k.a.token(
        SUB, headers={"jku": k.attacker.url + "/.well-known/jwks.json"}
    ),
    "embedded jwk": lambda k: k.attacker.token(
        SUB, iss=k.a.issuer, headers={"jwk": k.attacker.keys[0].jwk()}
    ),
    "signed by another key under the provider's kid": lambda k: k.attacker.token(
        SUB, iss=k.a.issuer, headers={"kid": "a1"}
    ),
    "ES256 header on the provider's RS256 kid": lambda k: k.b.token(
        SUB, iss=k.a.issuer, headers={"kid": "a1"}
    ),
    "expired": lambda k: k.a.token(
        SUB, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200, nbf=None
    ),
    "not yet valid (nbf)": lambda k: k.a.token(SUB, nbf=int(time.time()) + 3600),
    "issued in the future (iat)": lambda k: k.a.token(SUB, iat=int(time.time()) + 3600),
    "no exp": lambda k: jwt.encode(
        {c: v for c, v in k.a.claims(SUB).items() if c != "exp"},
        k.a.keys[0].private,
        algorithm="RS256",
        headers={"kid": "a1"},
    ),
    "wrong issuer": lambda k: k.a.token(SUB, iss="https://evil.example.com"),
    "issuer with a trailing slash": lambda k: k.a.token(SUB, iss=k.a.issuer + "/"),
    "wrong audience": lambda k: k.a.token(SUB, aud="another-app"),
    "no audience": lambda k: k.a.token(SUB, aud=None),
    "wrong azp": lambda k: k.a.token(SUB, azp="https://evil.example.com"),
    "no azp": lambda k: k.a.token(SUB, azp=None),
    "tampered payload": lambda k: tampered(k.a.token("someone-else"), sub=SUB),
    "issuer A's token under a kid only issuer B has": lambda k: k.b.token(SUB, iss=k.a.issuer),
    "issuer B's claims under issuer A's kid": lambda k: k.a.token(SUB, iss=k.b.issuer),
    "empty subject": lambda k: k.a.token(""),
    "not a JWT": lambda k: "not-a-token",
}


@pytest.mark.parametrize("transport", ["http", "hello"])
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_every_attack_on_the_provider_path_is_refused_and_creates_no_user(
    node: Node,
    provider_a: Provider,
    provider_b: Provider,
    attacker: Provider,
    attack: str,
    transport: str,
) -> None:
    token = ATTACKS[attack](Keys(provider_a, provider_b, attacker))
    if transport == "http":
        response = await node.exchange(token)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_token"
    else:
        error = await node.hello(token)
        assert isinstance(error, protocol.ErrorReply), error
        assert error.code == ErrorCode.INVALID_TOKEN
    store = node.services.store
    for issuer in (provider_a.issuer, provider_b.issuer, attacker.issuer):
        assert await store.get_external_user(issuer, SUB) is None
    assert await store.get_user_by_username(SUB) is None
    assert attacker.requests == []  # never fetched, whatever the token points at


async def test_a_refused_hello_closes_with_4000(node: Node, provider_a: Provider) -> None:
    async with ws_connect(node.gateway_port) as ws:
        hello = protocol.Hello(token=provider_a.token(SUB, aud="another-app"))
        await ws.send_message(protocol.encode(hello).decode())
        error = protocol.decode_server_frame(await ws.get_message())
        assert isinstance(error, protocol.ErrorReply)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason is not None
        assert closed.value.reason.code == CloseCode.AUTH_FAILED


# The local access tokens (HS256 with the node's secret), attacked the same way.

LocalAttack = Callable[[Keys, bytes, dict[str, Any]], str]


LOCAL_ATTACKS: dict[str, LocalAttack] = {
    "alg none": lambda k, key, good: unsigned({"alg": "none", "typ": "JWT"}, good),
    "HS256 signed with the provider's public key": lambda k, key, good: hand_signed(
        {"alg": "HS256", "typ": "JWT"}, good, _public_pem(k.a)
    ),
    "RS256 signed by a provider, without its issuer": lambda k, key, good: jwt.encode(
        good, k.a.keys[0].private, algorithm="RS256", headers={"kid": "a1"}
    ),
    "unknown kid, forged": lambda k, key, good: jwt.encode(
        good, b"x" * 32, algorithm="HS256", headers={"kid": "nope"}
    ),
    "kid with a path, forged": lambda k, key, good: jwt.encode(
        good, b"x" * 32, algorithm="HS256", headers={"kid": "../../../etc/passwd"}
    ),
    "kid with SQL, forged": lambda k, key, good: jwt.encode(
        good, b"x" * 32, algorithm="HS256", headers={"kid": "' OR 1=1 --"}
    ),
    "jku to another server": lambda k, key, good: k.attacker.token(
        good["sub"],
        iss=None,
        aud=None,
        azp=None,
        sid=good["sid"],
        headers={"jku": k.attacker.url + "/.well-known/jwks.json"},
    ),
    "x5u to another server": lambda k, key, good: k.attacker.token(
        good["sub"],
        iss=None,
        aud=None,
        azp=None,
        sid=good["sid"],
        headers={"x5u": k.attacker.url + "/cert.pem"},
    ),
    "expired": lambda k, key, good: jwt.encode(
        good | {"exp": int(time.time()) - 1, "iat": int(time.time()) - 900},
        key,
        algorithm="HS256",
    ),
    "not yet valid (nbf)": lambda k, key, good: jwt.encode(
        good | {"nbf": int(time.time()) + 3600}, key, algorithm="HS256"
    ),
    "issued in the future (iat)": lambda k, key, good: jwt.encode(
        good | {"iat": int(time.time()) + 3600}, key, algorithm="HS256"
    ),
    "an audience (ours have none)": lambda k, key, good: jwt.encode(
        good | {"aud": AUDIENCE}, key, algorithm="HS256"
    ),
    "tampered payload": lambda k, key, good: tampered(
        jwt.encode(good, key, algorithm="HS256"), sub="u_someoneelse"
    ),
    "another user's session": lambda k, key, good: jwt.encode(
        good | {"sub": "u_someoneelse"}, key, algorithm="HS256"
    ),
    "signed with another key": lambda k, key, good: jwt.encode(good, b"y" * 32, algorithm="HS256"),
}


@pytest.mark.parametrize("attack", list(LOCAL_ATTACKS))
async def test_every_attack_on_local_access_tokens_is_refused(
    node: Node,
    provider_a: Provider,
    provider_b: Provider,
    attacker: Provider,
    attack: str,
) -> None:
    register = {"username": "ada", "password": "correct horse battery staple"}
    tokens = (await node.http.post("/api/v1/auth/register", json=register)).json()
    good = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert (await node.me(tokens["access_token"])).status_code == 200  # the control
    key = await load_signing_key(node.services.store)
    forged = LOCAL_ATTACKS[attack](Keys(provider_a, provider_b, attacker), key, good)
    response = await node.me(forged)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"
    error = await node.hello(forged)
    assert isinstance(error, protocol.ErrorReply)
    assert error.code == ErrorCode.INVALID_TOKEN
    assert attacker.requests == []
    assert await node.services.store.get_external_user(provider_a.issuer, good["sub"]) is None


def test_the_matrix_tokens_are_what_they_claim() -> None:
    # A refused token proves nothing if it was broken for another reason: the
    # provider helpers sign valid tokens, and `tampered` keeps the signature.
    with open_provider(new_key("t1")) as provider:
        token = provider.token("x")
        claims = jwt.decode(
            token,
            provider.keys[0].private.public_key(),
            algorithms=["RS256"],
            audience=AUDIENCE,
        )
        assert claims["azp"] == APP_ORIGIN
        assert tampered(token, sub="y").rsplit(".", 1)[1] == token.rsplit(".", 1)[1]


async def test_provider_sign_ins_and_refusals_are_audited_without_the_token(
    node: Node, provider_a: Provider
) -> None:
    from chorus.auth import event_json
    from chorus.persistence import AuditQuery

    token = provider_a.token("user_ada", preferred_username="ada")
    expired = provider_a.token("user_ada", exp=int(time.time()) - 3600)
    assert (await node.exchange(token)).status_code == 200
    assert (await node.exchange(token)).status_code == 200
    assert (await node.exchange(expired)).status_code == 401
    events = (await node.services.store.list_audit(AuditQuery()))[::-1]
    assert [e.action for e in events] == ["account.created", "login", "login", "login.failed"]
    created, first, _, refused = events
    assert created.details == {"issuer": provider_a.issuer, "subject": "user_ada"}
    assert first.details == {
        "method": "provider",
        "issuer": provider_a.issuer,
        "subject": "user_ada",
    }
    assert first.address == "127.0.0.1"
    assert (refused.actor_id, refused.target) == (None, provider_a.issuer)
    stored = json.dumps([event_json(e) for e in events])
    assert token not in stored
    assert expired not in stored
    # A sign-in in the WebSocket `hello` is recorded with the connection's address.
    assert isinstance(await node.hello(token), protocol.Ready)
    latest = (await node.services.store.list_audit(AuditQuery(limit=1)))[0]
    assert (latest.action, latest.actor_id, latest.address) == (
        "login",
        first.actor_id,
        "127.0.0.1",
    )
