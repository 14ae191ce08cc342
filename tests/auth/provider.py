"""A stand-in identity provider (as Clerk is): keys made here, its JWKS served on loopback.

`open_provider()` starts a real HTTP server on a free loopback port, in a
thread, that serves `/.well-known/jwks.json` from the keys the test put there
and counts every request it gets; `Provider.token(...)` signs tokens with
those keys. A second provider is just a second server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from chorus.config import IdentityProvider

JWKS_PATH = "/.well-known/jwks.json"
AUDIENCE = "chorus-test"
APP_ORIGIN = "https://app.example.com"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@attrs.define
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    def jwk(self) -> dict[str, Any]:
        """The public JWK, as a provider publishes it."""
        match self.private.public_key():
            case rsa.RSAPublicKey() as public:
                data = RSAAlgorithm.to_jwk(public, as_dict=True)
            case ec.EllipticCurvePublicKey() as public:
                data = ECAlgorithm.to_jwk(public, as_dict=True)
            case public:
                data = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def new_key(kid: str, algorithm: str = "RS256") -> SigningKey:
    match algorithm:
        case "RS256":
            private: PrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        case "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        case _:
            private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid=kid, algorithm=algorithm, private=private)


@attrs.define
class Provider:
    """The provider's state: the keys its JWKS lists, and the requests it got."""

    url: str
    keys: list[SigningKey]
    extra_jwks: list[dict[str, Any]] = attrs.field(factory=list)
    """Raw entries served after the keys' own (odd keys a provider might publish)."""
    requests: list[str] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_fetches(self) -> int:
        with self.lock:
            return self.requests.count(JWKS_PATH)

    def config(self, **overrides: Any) -> IdentityProvider:
        """Its `identity_providers` entry: audience and azp both checked by default."""
        given: dict[str, Any] = {
            "issuer": self.issuer,
            "audiences": (AUDIENCE,),
            "authorized_parties": (APP_ORIGIN,),
        }
        return IdentityProvider(**(given | overrides))

    def claims(self, sub: str = "user_2abc", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": AUDIENCE,
            "azp": APP_ORIGIN,
            "iat": now,
            "nbf": now,
            "exp": now + 60,
        }
        # None removes a claim: `aud=None` is a token without an audience.
        return {name: value for name, value in (claims | extra).items() if value is not None}

    def token(
        self,
        sub: str = "user_2abc",
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed by `key` (the first published key by default)."""
        key = key or self.keys[0]
        return jwt.encode(
            self.claims(sub, **claims),
            key.private,
            algorithm=key.algorithm,
            headers={"kid": key.kid} | (headers or {}),
        )


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def do_GET(self) -> None:
        with self.provider.lock:
            self.provider.requests.append(self.path)
            keys = [key.jwk() for key in self.provider.keys] + self.provider.extra_jwks
        if self.path != JWKS_PATH:
            self.send_error(404)
            return
        body = json.dumps({"keys": keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def open_provider(*keys: SigningKey) -> Iterator[Provider]:
    """A provider serving `keys` (change `provider.keys` to rotate) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    provider = Provider(url=f"http://{host!s}:{port}", keys=list(keys))
    server.RequestHandlerClass = type("Handler", (_Handler,), {"provider": provider})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
