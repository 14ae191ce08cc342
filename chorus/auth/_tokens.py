"""Access tokens (short-lived signed JWTs) and refresh tokens (random, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets

import attrs
import jwt

from ._errors import InvalidToken

_ALGORITHM = "HS256"
_KEY_BYTES = 32
_CHALLENGE = "2fa-challenge"


@attrs.frozen(kw_only=True)
class AccessClaims:
    """Who an access token speaks for."""

    user_id: str
    session_id: str
    expires_at: int
    """Seconds since the epoch."""


class TokenSigner:
    """Issues and verifies HS256 access tokens with one node-wide secret key."""

    def __init__(self, key: bytes, *, access_ttl: int) -> None:
        if len(key) < _KEY_BYTES:
            raise ValueError(f"the token signing key must have at least {_KEY_BYTES} bytes")
        self._key = key
        self.access_ttl = access_ttl

    def issue(self, user_id: str, session_id: str, now: int) -> str:
        """A token for `user_id` in `session_id`, valid `access_ttl` seconds from `now`."""
        claims = {"sub": user_id, "sid": session_id, "iat": now, "exp": now + self.access_ttl}
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str, now: int) -> AccessClaims:
        """The token's claims; raises `InvalidToken` if forged, malformed or expired at `now`."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["sub", "sid", "exp"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise InvalidToken("invalid access token") from None
        user_id, session_id, expires_at = claims.get("sub"), claims.get("sid"), claims.get("exp")
        # A typed token (a login challenge) is never an access token.
        if not (isinstance(user_id, str) and isinstance(session_id, str)) or "typ" in claims:
            raise InvalidToken("invalid access token")
        if not isinstance(expires_at, int) or expires_at <= now:
            raise InvalidToken("access token expired")
        return AccessClaims(user_id=user_id, session_id=session_id, expires_at=expires_at)

    def issue_challenge(self, user_id: str, now: int, ttl: int) -> tuple[str, str]:
        """A login challenge token for `user_id`, valid `ttl` seconds, and its id.

        It proves the password was right and nothing else: it is refused as
        an access token, and only `verify_challenge` accepts it.
        """
        challenge_id = secrets.token_urlsafe(16)
        claims = {"sub": user_id, "jti": challenge_id, "typ": _CHALLENGE, "iat": now}
        claims["exp"] = now + ttl
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM), challenge_id

    def verify_challenge(self, token: str, now: int) -> tuple[str, str]:
        """The user id and challenge id of a challenge token; raises `InvalidToken` if it is
        forged, malformed, expired at `now`, or not a challenge."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["sub", "jti", "typ", "exp"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise InvalidToken("invalid challenge token") from None
        user_id, challenge_id, expires_at = claims["sub"], claims["jti"], claims["exp"]
        if claims["typ"] != _CHALLENGE or not isinstance(user_id, str):
            raise InvalidToken("invalid challenge token")
        if not isinstance(challenge_id, str) or not isinstance(expires_at, int):
            raise InvalidToken("invalid challenge token")
        if expires_at <= now:
            raise InvalidToken("the challenge expired: log in again")
        return user_id, challenge_id


def new_refresh_token() -> str:
    """A fresh refresh token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """What the store keeps instead of the token (SHA-256 is enough for 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_signing_key() -> bytes:
    """A fresh random token signing key of the recommended length."""
    return secrets.token_bytes(_KEY_BYTES)
