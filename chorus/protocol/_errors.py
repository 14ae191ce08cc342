"""Error codes (in `error` frames), close codes (on the WebSocket) and `ProtocolError`."""

from __future__ import annotations

import enum
import re


class ErrorCode(enum.StrEnum):
    """The `code` of an `error` frame. The wire strings are stable within `chorus.v1`.

    The first group is raised by the codec (`ProtocolError.code`): the frame
    could not be decoded. The second group is used by the server for frames
    that decoded fine but cannot be honoured.
    """

    INVALID_JSON = "invalid_json"
    """The frame is not a JSON document."""
    INVALID_UTF8 = "invalid_utf8"
    """The frame is not valid UTF-8 (or, given as `str`, holds lone surrogates)."""
    TOO_LARGE = "too_large"
    """The frame is longer than `MAX_FRAME_BYTES` bytes of UTF-8."""
    TOO_DEEP = "too_deep"
    """Arrays and objects nest deeper than `MAX_DEPTH` levels."""
    NOT_AN_OBJECT = "not_an_object"
    """The JSON document is not an object."""
    UNKNOWN_TYPE = "unknown_type"
    """The `type` tag names no frame of this direction (client to server, or back)."""
    MISSING_FIELD = "missing_field"
    """A required field (or `type` itself) is absent."""
    EXTRA_FIELD = "extra_field"
    """The frame has a field its type does not define."""
    WRONG_TYPE = "wrong_type"
    """A field has the wrong JSON type; nothing is coerced (`true` is not an integer)."""
    INVALID_VALUE = "invalid_value"
    """A field has the right JSON type but breaks a limit: length, range, allowed values."""

    UNAUTHENTICATED = "unauthenticated"
    """A frame other than `hello` arrived before authentication (the server then closes 4006)."""
    INVALID_TOKEN = "invalid_token"
    """The `hello` token is malformed, expired or revoked (the server then closes 4000)."""
    FORBIDDEN = "forbidden"
    """The user may not do this, e.g. join a room they are not a member of."""
    NOT_FOUND = "not_found"
    """The room (or other named object, e.g. the message to edit) does not exist."""
    CLIENT_ID_REUSED = "client_id_reused"
    """The `client_id` was already used by this user in another room; nothing was stored."""
    GONE = "gone"
    """The message was deleted: it cannot be edited, deleted again, reacted or replied to."""
    FILE_NOT_READY = "file_not_ready"
    """A file to attach is still being checked; send again once its `file` frame says ready."""
    NOT_JOINED = "not_joined"
    """The frame names a room this connection has not joined."""
    ENCRYPTION_REQUIRED = "encryption_required"
    """The room is end-to-end encrypted: send `encrypted` with an empty `body`; reactions
    travel inside encrypted messages there (docs/e2e.md). Nothing was stored."""
    RATE_LIMITED = "rate_limited"
    """Too many frames; retry later. Repeated abuse closes the connection with 4005."""
    UNAVAILABLE = "unavailable"
    """Storage is briefly unavailable: retry later (a `send` with the same `client_id`)."""
    INTERNAL = "internal"
    """A server bug. A `send` may or may not be stored: retry it with the same `client_id`."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses; 4000-4999 are Chorus's own (RFC 6455 §7.4.2)."""

    NORMAL = 1000
    """The connection did its job (e.g. the client closed it)."""
    GOING_AWAY = 1001
    """The server is shutting down: reconnect, possibly to another node."""
    PROTOCOL_ERROR = 1002
    """The peer broke RFC 6455 (WebSocket framing), not the Chorus protocol."""
    UNSUPPORTED_DATA = 1003
    """A binary message arrived; Chorus speaks text messages only."""
    INVALID_PAYLOAD = 1007
    """A text message was not valid UTF-8."""
    POLICY_VIOLATION = 1008
    """Generic policy violation, when no more specific code applies."""
    MESSAGE_TOO_BIG = 1009
    """A message exceeded `MAX_FRAME_BYTES`."""
    INTERNAL_ERROR = 1011
    """The server hit an unexpected condition; reconnect and resume."""

    AUTH_FAILED = 4000
    """The `hello` token was invalid or expired: get a fresh token before reconnecting."""
    AUTH_TIMEOUT = 4001
    """No `hello` arrived within 10 seconds of the upgrade."""
    SESSION_REVOKED = 4002
    """The session was ended (logout, revoked); do not reconnect with the same token."""
    HEARTBEAT_TIMEOUT = 4003
    """Nothing arrived from the client for about two heartbeat intervals."""
    SLOW_CONSUMER = 4004
    """The client read too slowly and its outbound buffer overflowed; resume to recover."""
    RATE_LIMITED = 4005
    """The client kept exceeding rate limits after `rate_limited` errors."""
    UNAUTHENTICATED = 4006
    """A frame other than `hello` arrived before authentication."""
    RECONNECT = 4007
    """This node is draining: reconnect after the delay in the close reason, and resume."""


RECONNECT_HINT = "retry_after_ms="
"""Starts the delay hint in the reason of a 4007 `RECONNECT` close (see `reconnect_reason`)."""
MAX_RECONNECT_DELAY_MS = 60_000
"""The longest delay (milliseconds) a client honours from a hint, whatever the reason says."""
_HINT = re.compile(re.escape(RECONNECT_HINT) + r"(\d{1,9})")


def reconnect_reason(delay_ms: int) -> str:
    """The close reason of a 4007 `RECONNECT`: `draining; retry_after_ms=<delay_ms>`."""
    return f"draining; {RECONNECT_HINT}{delay_ms}"


def reconnect_delay(reason: str) -> float | None:
    """Seconds to wait before reconnecting that a 4007 close reason asks for, else None.

    Capped at `MAX_RECONNECT_DELAY_MS`, so a broken or hostile server cannot park
    its clients for long.
    """
    found = _HINT.search(reason)
    if found is None:
        return None
    return min(int(found.group(1)), MAX_RECONNECT_DELAY_MS) / 1000


class ProtocolError(Exception):
    """A frame could not be decoded.

    `code` is one of the decoding `ErrorCode`s, `message` is a short English
    explanation that names the offending field (at most `MAX_TEXT_CHARS`
    characters, so it fits an `error` frame), and `ref` is the frame's `ref`
    when the input was a JSON object with a valid `ref` member (so the server
    can correlate its `error` reply), else None.
    """

    def __init__(self, code: ErrorCode, message: str, *, ref: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref
