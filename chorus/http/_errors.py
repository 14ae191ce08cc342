"""`ApiError` and the one mapping from any exception to a status and a stable error code.

Every error the API sends is `{"error": {"code": ..., "message": ...}}`; the
codes shared with the WebSocket protocol (`invalid_json`, `forbidden`,
`unavailable`...) keep the protocol's spelling (`chorus.protocol.ErrorCode`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from chorus.actors import ActorDead, AskTimeout
from chorus.actors.room import ClientIdReused, EncryptionRequired
from chorus.auth import (
    AuthError,
    InvalidCode,
    InvalidInput,
    ProviderUnavailable,
    TooManyAttempts,
    UsernameTaken,
    WrongPassword,
)
from chorus.persistence import (
    Conflict,
    FileNotReady,
    Forbidden,
    Gone,
    NotFound,
    StoreUnavailable,
)
from chorus.protocol import MAX_TEXT_CHARS, ErrorCode
from chorus.supervisors import SupervisorError

UNAVAILABLE_RETRY_AFTER = "1"
"""Seconds a client should wait before retrying a 503 (sent as `Retry-After`)."""


@attrs.frozen(kw_only=True)
class ErrorCodeDoc:
    """One documented error code: its status and when it is sent."""

    code: str
    status: int
    meaning: str


ERROR_CODES: tuple[ErrorCodeDoc, ...] = (
    ErrorCodeDoc(code="invalid_json", status=400, meaning="The body is not valid JSON."),
    ErrorCodeDoc(code="not_an_object", status=400, meaning="The JSON body is not an object."),
    ErrorCodeDoc(code="missing_field", status=400, meaning="A required field is absent."),
    ErrorCodeDoc(
        code="extra_field", status=400, meaning="A body field or query parameter is unknown."
    ),
    ErrorCodeDoc(
        code="wrong_type", status=400, meaning="A field has the wrong JSON type (nothing coerced)."
    ),
    ErrorCodeDoc(
        code="invalid_value",
        status=400,
        meaning="A field breaks a limit (length, range, choice), or a query parameter is repeated.",
    ),
    ErrorCodeDoc(
        code="invalid_input",
        status=400,
        meaning="A username, password or display name breaks the account rules.",
    ),
    ErrorCodeDoc(
        code="invalid_code",
        status=400,
        meaning="A two-factor code is wrong, already used (a TOTP code is accepted once, and"
        " none of an earlier time step after it; a recovery code once), or 2FA is off.",
    ),
    ErrorCodeDoc(code="bad_request", status=400, meaning="The HTTP request itself is malformed."),
    ErrorCodeDoc(
        code="encryption_required",
        status=400,
        meaning="The room is end-to-end encrypted: post `encrypted` with an empty `body`;"
        " reactions travel inside encrypted messages there (docs/e2e.md). Nothing was stored.",
    ),
    ErrorCodeDoc(
        code="bad_signature",
        status=400,
        meaning="A device's signature of its keys (or of a one-time key) does not verify.",
    ),
    ErrorCodeDoc(code="unauthenticated", status=401, meaning="No bearer token was sent."),
    ErrorCodeDoc(
        code="invalid_token",
        status=401,
        meaning="The access, refresh or identity provider token is malformed, forged, expired"
        " or not for this server, or its session ended.",
    ),
    ErrorCodeDoc(
        code="invalid_credentials", status=401, meaning="Unknown username or wrong password."
    ),
    ErrorCodeDoc(
        code="refresh_reused",
        status=401,
        meaning="An already-used refresh token was presented; its session is now revoked.",
    ),
    ErrorCodeDoc(code="forbidden", status=403, meaning="The caller may not do this."),
    ErrorCodeDoc(
        code="registration_closed",
        status=403,
        meaning="Sign-up is closed: an admin set `registration_open` to false.",
    ),
    ErrorCodeDoc(
        code="wrong_password",
        status=403,
        meaning="The password given to confirm an account change (2FA, password) is wrong.",
    ),
    ErrorCodeDoc(
        code="not_found", status=404, meaning="No such route, room, user, member or message."
    ),
    ErrorCodeDoc(
        code="method_not_allowed", status=405, meaning="The path exists; see the Allow header."
    ),
    ErrorCodeDoc(
        code="request_timeout", status=408, meaning="The body did not arrive within 60 seconds."
    ),
    ErrorCodeDoc(code="username_taken", status=409, meaning="The username is taken."),
    ErrorCodeDoc(
        code="client_id_reused",
        status=409,
        meaning="The client_id was already used by you in another room; nothing was stored.",
    ),
    ErrorCodeDoc(code="conflict", status=409, meaning="The write conflicts with stored data."),
    ErrorCodeDoc(
        code="device_exists",
        status=409,
        meaning="The device id is live in another session with other keys.",
    ),
    ErrorCodeDoc(
        code="file_not_ready",
        status=409,
        meaning="A file in `attachments` is still being checked; nothing was stored. Post"
        " again (same client_id) once the file is ready.",
    ),
    ErrorCodeDoc(
        code="gone",
        status=410,
        meaning="The message was deleted: it cannot be edited, deleted again, reacted or "
        "replied to.",
    ),
    ErrorCodeDoc(code="too_large", status=413, meaning="The request body is over 64 KiB."),
    ErrorCodeDoc(
        code="file_too_large",
        status=413,
        meaning="An upload is over files_max_bytes (refused from its Content-Length, or as it"
        " streams).",
    ),
    ErrorCodeDoc(
        code="quota_exceeded",
        status=413,
        meaning="An upload would take your files past files_quota_bytes.",
    ),
    ErrorCodeDoc(
        code="range_not_satisfiable",
        status=416,
        meaning="A file's Range is outside it; Content-Range gives its size.",
    ),
    ErrorCodeDoc(
        code="unsupported_media_type",
        status=415,
        meaning="A request body was sent with a Content-Type other than JSON (an upload:"
        " without a Content-Type).",
    ),
    ErrorCodeDoc(
        code="rate_limited",
        status=429,
        meaning="Too many register, login, exchange or failed refresh attempts from this"
        " address (auth_attempts_per_minute, 30 by default), or two-factor codes for this"
        " user or login challenge (two_factor_attempts_per_minute, 5), or key claims or"
        " to-device sends of one user (10 a second each); wait Retry-After seconds.",
    ),
    ErrorCodeDoc(
        code="queue_full",
        status=429,
        meaning="A recipient device has 1000 to-device messages waiting; nothing was stored.",
    ),
    ErrorCodeDoc(
        code="too_many_uploads",
        status=429,
        meaning="You already have files_concurrent_uploads uploads in progress on this node.",
    ),
    ErrorCodeDoc(code="internal", status=500, meaning="A server bug; it has been logged."),
    ErrorCodeDoc(
        code="unavailable",
        status=503,
        meaning="Storage, the room or an identity provider's keys are briefly unavailable;"
        " retry (posts with the same client_id are safe to retry).",
    ),
)


class ApiError(Exception):
    """An error response: HTTP `status`, stable `code`, human `message`, extra `headers`."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message[:MAX_TEXT_CHARS]
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(code: ErrorCode | str, message: str) -> ApiError:
    return ApiError(400, str(code), message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, ErrorCode.FORBIDDEN, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, ErrorCode.NOT_FOUND, message)


def unauthorized(code: str, message: str) -> ApiError:
    # RFC 6750 §3: a 401 names the scheme the client should use.
    return ApiError(401, code, message, {"WWW-Authenticate": 'Bearer realm="chorus"'})


def unavailable(message: str) -> ApiError:
    return ApiError(503, ErrorCode.UNAVAILABLE, message, {"Retry-After": UNAVAILABLE_RETRY_AFTER})


def error_for(exc: BaseException) -> ApiError | None:
    """The response for a known exception; None for anything else (a bug: answer 500)."""
    match exc:
        case ApiError():
            return exc
        case InvalidInput() | InvalidCode():
            return ApiError(400, exc.code, str(exc))
        case WrongPassword():
            return ApiError(403, exc.code, str(exc))
        case TooManyAttempts():
            retry_after = str(max(1, round(exc.retry_after)))
            return ApiError(429, ErrorCode.RATE_LIMITED, str(exc), {"Retry-After": retry_after})
        case UsernameTaken():
            return ApiError(409, exc.code, str(exc))
        case AuthError():
            return unauthorized(exc.code, str(exc))
        case StoreUnavailable():
            return unavailable("storage is unavailable; retry")
        case ProviderUnavailable():
            return unavailable("the identity provider's keys cannot be fetched now; retry")
        case ActorDead() | AskTimeout() | SupervisorError():
            return unavailable("the room is busy or restarting; retry")
        case NotFound():
            return not_found(str(exc))
        case FileNotReady():
            return ApiError(409, ErrorCode.FILE_NOT_READY, str(exc))
        case Forbidden():
            return forbidden(str(exc))
        case Gone():
            return ApiError(410, ErrorCode.GONE, str(exc))
        case Conflict():
            return ApiError(409, "conflict", str(exc))
        case ClientIdReused():
            return ApiError(409, ErrorCode.CLIENT_ID_REUSED, str(exc))
        case EncryptionRequired():
            return ApiError(400, ErrorCode.ENCRYPTION_REQUIRED, str(exc))
        case HTTPException():
            return _from_http_exception(exc)
    return None


def internal_error() -> ApiError:
    return ApiError(500, ErrorCode.INTERNAL, "internal server error")


def _from_http_exception(exc: HTTPException) -> ApiError:
    """Werkzeug's errors (routing, 405, 413...) in our shape, never its HTML page."""
    status = exc.code or 500
    if status == 413:
        return ApiError(413, ErrorCode.TOO_LARGE, "the request body is larger than allowed")
    if status == 404:
        return not_found("no such resource")
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(exc.valid_methods or ())
        return ApiError(405, "method_not_allowed", "method not allowed here", {"Allow": allowed})
    if status >= 500:
        return internal_error()
    # CamelCase class name to snake_case code: RequestTimeout -> request_timeout.
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return ApiError(status, code, exc.description or code.replace("_", " "))
