"""Sign-in with a token of an external identity provider (Clerk, any OIDC provider)."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import jwt

from chorus.config import IdentityProvider
from chorus.persistence import Conflict, Store, User
from chorus.text import name_problem

from ._audit import AuditAction
from ._errors import InvalidToken
from ._jwks import JwksCache
from ._service import DISPLAY_NAME_CHARS, USERNAME_CHARS, AuthService, Tokens

LEEWAY: Final = 30
"""Seconds of clock skew allowed between the provider and this node (`exp`, `nbf`, `iat`)."""
MAX_SUBJECT_CHARS: Final = 255
# Headers that point at or carry a key: a token never chooses its own key.
_KEY_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
_NOT_USERNAME = re.compile(r"[^a-z0-9_.-]+")
_USERNAME_TRIES: Final = 8


@attrs.frozen(kw_only=True)
class ExternalClaims:
    """What a verified provider token says about its user."""

    provider: IdentityProvider
    subject: str
    username: str
    """A valid username made from the claims (it may be taken: see `ExternalSignIn`)."""
    display_name: str
    email: str | None
    """The e-mail, only when the provider says it is verified."""


class ProviderTokens:
    """Verifies tokens of the configured providers.

    A token is accepted only when all of these hold: its unverified `iss`
    is exactly a configured issuer; its header names an algorithm that
    provider allows (RS256, ES256, EdDSA at most: never `none` or HMAC),
    carries no key or key URL (`jku`, `x5u`, `jwk`, `x5c`) and a `kid` the
    issuer's own JWKS publishes for that very algorithm; the signature
    checks; `exp` and `iat` are present and, like `nbf` when present,
    hold within `LEEWAY` seconds; `aud` is one of the provider's
    `audiences` and `azp` one of its `authorized_parties` (for each list
    configured); `sub` is a non-empty string.
    """

    def __init__(self, providers: Sequence[IdentityProvider], keys: JwksCache) -> None:
        self._providers = {provider.issuer: provider for provider in providers}
        self._keys = keys

    def provider_of(self, token: str) -> IdentityProvider | None:
        """The configured provider the token claims to come from (nothing verified yet)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        issuer = claims.get("iss")
        return self._providers.get(issuer) if isinstance(issuer, str) else None

    async def verify(self, token: str) -> ExternalClaims:
        """The claims of a valid token; raises `InvalidToken` (or `ProviderUnavailable`)."""
        provider = self.provider_of(token)
        if provider is None:
            raise InvalidToken("not a token of a configured identity provider")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed provider token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in provider.algorithms:
            raise InvalidToken("provider token signed with an algorithm that is not allowed")
        if _KEY_HEADERS & header.keys():
            raise InvalidToken("provider tokens may not name or carry their keys")
        if not isinstance(kid, str):
            raise InvalidToken("provider token without a key id")
        key = await self._keys.key(provider, kid)
        if key.algorithm_name != algorithm:
            raise InvalidToken("the key id does not match the token's algorithm")
        claims = self._decode(token, key, provider)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise InvalidToken("provider token without a valid subject")
        if provider.authorized_parties and claims.get("azp") not in provider.authorized_parties:
            raise InvalidToken("provider token for another party (azp)")
        return _external_claims(provider, subject, claims)

    def _decode(self, token: str, key: jwt.PyJWK, provider: IdentityProvider) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=list(provider.audiences) or None,
                issuer=provider.issuer,
                leeway=LEEWAY,
                options={
                    "require": ["iss", "sub", "exp", "iat"],
                    "verify_aud": bool(provider.audiences),
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("provider token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("provider token not valid yet") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid provider token") from None


class ExternalSignIn:
    """Signs users in with provider tokens: a local user per `(issuer, sub)`, local sessions.

    The first sign-in of a subject creates its user (no password; a username
    and display name made from the claims, made unique); later ones find that
    user. Users are never matched by e-mail unless the provider is configured
    with `link_by_email`, and then only through a verified e-mail of an
    identity of a provider that allows it too. Each sign-in opens a session
    exactly as a password login does, so refresh, logout and revocation
    work the same. Sign-ins, refused tokens and users created are audited
    (the issuer and subject, never the token).
    """

    def __init__(
        self,
        store: Store,
        auth: AuthService,
        tokens: ProviderTokens,
        providers: Sequence[IdentityProvider],
        *,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._auth = auth
        self._tokens = tokens
        self._linking = tuple(p.issuer for p in providers if p.link_by_email)
        self._clock = clock

    def recognises(self, token: str) -> bool:
        """Whether `token` claims to come from a configured provider (then `sign_in` decides)."""
        return self._tokens.provider_of(token) is not None

    async def sign_in(self, token: str) -> Tokens:
        """A new session of the token's user; raises `InvalidToken` or `ProviderUnavailable`,
        and `InvalidCredentials` for a deactivated account (see `AuthService.open_session`)."""
        try:
            claims = await self._tokens.verify(token)
        except InvalidToken as exc:
            provider = self._tokens.provider_of(token)
            await self._auth.audit.record(
                AuditAction.LOGIN_FAILED,
                None,
                "" if provider is None else provider.issuer,
                details={"method": "provider", "reason": str(exc)},
            )
            raise
        user, created = await self._user_of(claims)
        issuer = claims.provider.issuer
        if created:
            await self._auth.audit.record(
                AuditAction.ACCOUNT_CREATED,
                user.id,
                user.id,
                details={"issuer": issuer, "subject": claims.subject},
            )
        return await self._auth.open_session(
            user, method="provider", details={"issuer": issuer, "subject": claims.subject}
        )

    async def _user_of(self, claims: ExternalClaims) -> tuple[User, bool]:
        """The subject's user, and whether this sign-in created it."""
        issuer, subject = claims.provider.issuer, claims.subject
        email = claims.email if claims.provider.link_by_email else None
        username = claims.username
        for _ in range(_USERNAME_TRIES):
            # Looked up again on each turn: a concurrent first sign-in may have won.
            if (found := await self._store.get_external_user(issuer, subject)) is not None:
                return found, False
            try:
                if email is not None and (
                    linked := await self._store.find_user_by_external_email(email, self._linking)
                ):
                    linked = await self._store.link_external_identity(
                        issuer, subject, linked.id, email, self._clock()
                    )
                    return linked, False
                created = await self._store.create_external_user(
                    issuer, subject, username, claims.display_name, email, self._clock()
                )
                return created, True
            except Conflict:
                username = _with_suffix(claims.username)
        raise Conflict("could not find a free username for this identity; retry")


def _external_claims(
    provider: IdentityProvider, subject: str, claims: dict[str, Any]
) -> ExternalClaims:
    def text(name: str) -> str | None:
        value = claims.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    email = text("email") if claims.get("email_verified") is True else None
    username = _username(
        text("preferred_username")
        or text("username")
        or text("nickname")
        or (email.split("@", 1)[0] if email else None)
        or text("name")
    )
    full_name = " ".join(part for part in (text("given_name"), text("family_name")) if part)
    display_name = _display_name(text("name") or full_name or username, username)
    return ExternalClaims(
        provider=provider,
        subject=subject,
        username=username,
        display_name=display_name,
        email=None if email is None else email.lower(),
    )


def _username(hint: str | None) -> str:
    """A valid username from a claim: ASCII letters, digits, '_', '.', '-', lower-case."""
    low, high = USERNAME_CHARS
    ascii_only = unicodedata.normalize("NFKD", hint or "").encode("ascii", "ignore").decode()
    name = _NOT_USERNAME.sub("_", ascii_only.lower()).strip("_.-")
    # Room for the "-1a2b" a taken name gets.
    name = name[: high - 5].rstrip("_.-")
    return name if len(name) >= low else f"user{name}"[: high - 5].ljust(low, "0")


def _with_suffix(username: str) -> str:
    return f"{username}-{secrets.token_hex(2)}"


def _display_name(hint: str, username: str) -> str:
    """`hint` cut to the longest display name, or the username if it breaks the name rules."""
    name = hint[: DISPLAY_NAME_CHARS[1]].strip()
    return username if not name or name_problem(name) is not None else name
