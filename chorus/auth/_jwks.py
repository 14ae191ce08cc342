"""`JwksCache`: the public keys of identity providers, fetched from their JWKS URLs."""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import httpx
import jwt
import structlog
import trio
from cryptography.hazmat.primitives.asymmetric import rsa

from chorus.config import IdentityProvider

from ._errors import InvalidToken

_log = structlog.get_logger("chorus.auth")

FETCH_TIMEOUT = 5.0
"""Seconds one JWKS fetch may take (connect, send and read together)."""
MAX_JWKS_BYTES = 64 * 1024
"""Largest JWKS document read; real ones hold a few keys (about 1.5 KiB each for RSA)."""
MAX_KEYS_PER_ISSUER = 16
"""Keys kept from one document; the rest are ignored (rotation needs two or three)."""
MAX_KID_CHARS = 256
_MIN_RSA_BITS = 2048


class ProviderUnavailable(Exception):
    """A provider's keys cannot be fetched now, and no cached key can decide: retry later."""


class JwksCache:
    """Keys by `(issuer, kid)`, each issuer's fetched from its JWKS URL only.

    Guarantees:

    - A key comes only from the configured `keys_url` of the token's issuer:
      nothing a token says (`jku`, `x5u`, `jwk`...) is ever fetched or used.
    - Only keys for the provider's allowed asymmetric algorithms are kept
      (`PyJWK` binds each key to one algorithm, so a token cannot pick
      another one for it); RSA keys shorter than 2048 bits are ignored.
    - An unknown kid fetches the document again at most once per
      `min_refresh_interval` seconds per issuer (failed fetches included),
      so made-up kids cannot turn the node into a flood of requests.
    - A fetch replaces all of the issuer's keys: a key the provider removed
      is refused from then on. Keys older than `ttl` are fetched again on use.
    - At most `max_keys` keys are kept in all (least recently used go first),
      and one issuer's fetches run one at a time.
    """

    def __init__(
        self,
        *,
        min_refresh_interval: float,
        ttl: float,
        max_keys: int = 256,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._min_refresh = min_refresh_interval
        self._ttl = ttl
        self._max_keys = max_keys
        self._clock = clock
        self._keys: OrderedDict[tuple[str, str], jwt.PyJWK] = OrderedDict()
        self._fetched_at: dict[str, float] = {}
        self._attempted_at: dict[str, float] = {}
        self._locks: dict[str, trio.Lock] = {}

    async def key(self, provider: IdentityProvider, kid: str) -> jwt.PyJWK:
        """The key `kid` of `provider`; raises `InvalidToken` or `ProviderUnavailable`.

        `InvalidToken` when the provider does not publish `kid` (after a
        refresh, unless one happened less than `min_refresh_interval` ago);
        `ProviderUnavailable` when the document is needed and cannot be fetched.
        """
        issuer = provider.issuer
        if not 0 < len(kid) <= MAX_KID_CHARS:
            raise InvalidToken("invalid key id")
        if (found := self._fresh(issuer, kid)) is not None:
            return found
        async with self._locks.setdefault(issuer, trio.Lock()):
            # Another task may have fetched the document while this one waited.
            if (found := self._fresh(issuer, kid)) is not None:
                return found
            stale = self._keys.get((issuer, kid))
            last = self._attempted_at.get(issuer)
            if last is not None and self._clock() - last < self._min_refresh:
                # Fetched (or tried) moments ago: a kid it lacked is unknown, and a
                # failed fetch is not retried for every token.
                if stale is not None:
                    return stale
                raise InvalidToken("unknown key id")
            try:
                await self._refresh(provider)
            except ProviderUnavailable:
                if stale is not None:
                    # The provider is down but did publish this key: keep signing users
                    # in with it rather than fail everyone until the provider is back.
                    return stale
                raise
            found = self._keys.get((issuer, kid))
            if found is not None:
                self._keys.move_to_end((issuer, kid))
            # Evicted after the lookup, so the key asked for is never the one dropped.
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        if found is None:
            raise InvalidToken("unknown key id")
        return found

    def _fresh(self, issuer: str, kid: str) -> jwt.PyJWK | None:
        found = self._keys.get((issuer, kid))
        fetched = self._fetched_at.get(issuer)
        if found is None or fetched is None or self._clock() - fetched >= self._ttl:
            return None
        self._keys.move_to_end((issuer, kid))
        return found

    async def _refresh(self, provider: IdentityProvider) -> None:
        issuer = provider.issuer
        self._attempted_at[issuer] = self._clock()
        document = await _fetch(provider.keys_url)
        keys = _parse(document, provider)
        for cached in [cached for cached in self._keys if cached[0] == issuer]:
            del self._keys[cached]
        for kid, key in keys.items():
            self._keys[(issuer, kid)] = key
        self._fetched_at[issuer] = self._clock()
        _log.info("auth.jwks_fetched", issuer=issuer, kids=sorted(keys))


async def _fetch(url: str) -> object:
    """The JSON document at `url`; raises `ProviderUnavailable` for any failure."""
    try:
        async with (
            _deadline(FETCH_TIMEOUT),
            httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} answered {response.status_code}")
            body, size = bytearray(), 0
            # Read to the end (bounded by the deadline), keeping only the first bytes:
            # leaving httpx's byte iterator early leaks it to the garbage collector.
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size <= MAX_JWKS_BYTES:
                    body += chunk
            if size > MAX_JWKS_BYTES:
                raise ProviderUnavailable(f"{url} sent more than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)
    except (httpx.HTTPError, ValueError) as exc:
        _log.warning("auth.jwks_unavailable", url=url, error=str(exc))
        raise ProviderUnavailable(f"cannot fetch the keys at {url}") from None
    except ProviderUnavailable as exc:
        _log.warning("auth.jwks_unavailable", url=url, error=str(exc))
        raise


@contextlib.asynccontextmanager
async def _deadline(seconds: float) -> AsyncIterator[None]:
    """httpx's timeouts bound each read; this bounds the whole fetch."""
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise ProviderUnavailable(f"no answer within {seconds} s") from None


def _parse(document: object, provider: IdentityProvider) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by kid (entries in doubt are skipped)."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ProviderUnavailable(f"{provider.keys_url} is not a JWKS document")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if len(keys) == MAX_KEYS_PER_ISSUER:
            break
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        # Private material ("d") in a public document is a provider's mistake: not ours to use.
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS or "d" in entry:
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP") or kid in keys:
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if key.algorithm_name not in provider.algorithms:
            continue
        if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < _MIN_RSA_BITS:
            continue
        keys[kid] = key
    return keys
