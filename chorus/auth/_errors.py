"""Authentication failures, each with a stable code the HTTP layer and gateway report."""

from __future__ import annotations


class AuthError(Exception):
    """Base class; `code` is the stable error code sent to clients."""

    code = "unauthorized"


class InvalidCredentials(AuthError):
    """Unknown username or wrong password (deliberately not told apart)."""

    code = "invalid_credentials"


class InvalidToken(AuthError):
    """A token is malformed, forged, expired, or its session has ended."""

    code = "invalid_token"


class RefreshReused(AuthError):
    """An already-used refresh token was presented: its whole session is now revoked."""

    code = "refresh_reused"


class UsernameTaken(AuthError):
    code = "username_taken"


class InvalidInput(AuthError):
    """A username, display name or password breaks the documented rules."""

    code = "invalid_input"


class InvalidCode(AuthError):
    """A two-factor code is wrong, already used, or 2FA is not enabled."""

    code = "invalid_code"


class WrongPassword(AuthError):
    """A signed-in user confirming an action gave the wrong password."""

    code = "wrong_password"


class TooManyAttempts(AuthError):
    """Too many two-factor attempts for the user or the challenge; retry after `retry_after`."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
