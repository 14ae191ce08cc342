"""`JwksCache` against a real JWKS endpoint on loopback: what it keeps, when it fetches."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from chorus.auth import InvalidToken, JwksCache, ProviderUnavailable
from tests.auth.provider import new_key, open_provider


class Clock:
    """The cache's clock, moved by hand: no test waits for real time to pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(clock: Clock, **overrides: Any) -> JwksCache:
    settings: dict[str, Any] = {"min_refresh_interval": 30.0, "ttl": 3600.0, "clock": clock}
    return JwksCache(**(settings | overrides))


async def test_keys_are_fetched_once_and_then_served_from_the_cache() -> None:
    clock = Clock()
    with open_provider(new_key("k1"), new_key("k2", "EdDSA")) as provider:
        keys = cache(clock)
        first = await keys.key(provider.config(), "k1")
        assert first.algorithm_name == "RS256"
        assert (await keys.key(provider.config(), "k2")).algorithm_name == "EdDSA"
        assert await keys.key(provider.config(), "k1") is first
        assert provider.jwks_fetches == 1


async def test_unknown_kids_refetch_at_most_once_per_interval() -> None:
    clock = Clock()
    with open_provider(new_key("k1")) as provider:
        keys = cache(clock)
        await keys.key(provider.config(), "k1")
        for kid in ("x1", "x2", "x3"):
            with pytest.raises(InvalidToken):
                await keys.key(provider.config(), kid)
        assert provider.jwks_fetches == 1  # within 30 s of the first fetch
        provider.keys.append(new_key("k2"))
        clock.now += 30
        assert (await keys.key(provider.config(), "k2")).algorithm_name == "RS256"
        assert provider.jwks_fetches == 2


async def test_concurrent_lookups_of_a_new_kid_fetch_once() -> None:
    clock = Clock()
    with open_provider(new_key("k1")) as provider:
        keys = cache(clock, min_refresh_interval=0.0)
        found = []

        async def look() -> None:
            found.append(await keys.key(provider.config(), "k1"))

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(look)
        assert len(found) == 10
        assert provider.jwks_fetches == 1


async def test_keys_expire_after_the_ttl_but_stay_usable_while_the_provider_is_down() -> None:
    clock = Clock()
    with open_provider(new_key("k1")) as provider:
        config = provider.config()
        keys = cache(clock)
        key = await keys.key(config, "k1")
        clock.now += 3600
        await keys.key(config, "k1")
        assert provider.jwks_fetches == 2  # stale: fetched again
    clock.now += 3600
    assert (await keys.key(config, "k1")).key is not None  # the provider is gone: kept
    assert (await keys.key(config, "k1")).algorithm_name == key.algorithm_name
    with pytest.raises(InvalidToken):
        await keys.key(config, "never-seen")  # refetch tried moments ago: not again


async def test_an_unreachable_provider_without_cached_keys_is_unavailable() -> None:
    with open_provider(new_key("k1")) as provider:
        config = provider.config()
    with pytest.raises(ProviderUnavailable):
        await cache(Clock()).key(config, "k1")


async def test_the_cache_is_bounded() -> None:
    clock = Clock()
    with open_provider(new_key("k1"), new_key("k2"), new_key("k3")) as provider:
        keys = cache(clock, min_refresh_interval=0.0, max_keys=2)
        await keys.key(provider.config(), "k3")
        await keys.key(provider.config(), "k2")
        assert provider.jwks_fetches == 1
        # k1, the least recently used, did not fit: asking for it fetches again...
        await keys.key(provider.config(), "k1")
        assert provider.jwks_fetches == 2
        # ... and the key asked for is never the one a fetch pushes out.
        await keys.key(provider.config(), "k1")
        assert provider.jwks_fetches == 2


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_unfit_keys_in_the_document_are_ignored() -> None:
    clock = Clock()
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak = RSAAlgorithm.to_jwk(short.public_key(), as_dict=True) | {"kid": "short-rsa"}
    good = new_key("k1")
    with open_provider(good) as provider:
        provider.extra_jwks = [
            {"kty": "oct", "kid": "hmac", "k": _b64(b"s" * 32), "alg": "HS256"},
            weak,
            good.jwk() | {"kid": "encryption", "use": "enc"},
            new_key("p384").jwk() | {"kid": "private", "d": "AAAA"},
            new_key("es", "ES256").jwk() | {"kid": "es-not-allowed"},
            {"kid": "garbage", "kty": "RSA", "n": "!", "e": "AQAB"},
            {"kid": "no-kty"},
        ]
        keys = cache(clock, min_refresh_interval=0.0)
        config = provider.config(algorithms=("RS256",))
        await keys.key(config, "k1")
        for kid in ("hmac", "short-rsa", "encryption", "private", "es-not-allowed", "garbage"):
            with pytest.raises(InvalidToken):
                await keys.key(config, kid)


async def test_an_oversized_document_is_refused() -> None:
    with open_provider(new_key("k1")) as provider:
        provider.extra_jwks = [
            {"kid": f"pad{n}", "kty": "none", "x": "y" * 1000} for n in range(70)
        ]
        with pytest.raises(ProviderUnavailable):
            await cache(Clock()).key(provider.config(), "k1")
