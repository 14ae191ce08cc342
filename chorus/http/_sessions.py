"""`/api/v1/auth/sessions` and `/api/v1/auth/password`: a user's own sessions (issue #14)."""

from __future__ import annotations

import attrs
from quart import request

from chorus.auth import PASSWORD_CHARS, Device

from ._input import text
from ._output import RevokedView, SessionsView, session_view
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("sessions")


def current_device() -> Device:
    """The client of the current request, as its session will record it.

    `request.remote_addr` is already the forwarded client address when the
    peer is one of `trusted_proxies` (`chorus.http._forwarded`).
    """
    return Device(
        user_agent=request.headers.get("User-Agent", ""), address=request.remote_addr or ""
    )


@attrs.frozen(kw_only=True)
class ChangePassword:
    """The current password and the new one."""

    old_password: str = text(1, PASSWORD_CHARS[1], "The current password.")
    new_password: str = text(*PASSWORD_CHARS, "The new password.")


@table.route(
    "GET",
    f"{API_PREFIX}/auth/sessions",
    summary="List my live sessions",
    responses={200: SessionsView},
)
async def list_sessions(call: Call[object]) -> Reply:
    """The caller's live sessions, oldest first; `current` marks the one of this request."""
    assert call.principal is not None
    sessions = await call.services.auth.sessions(call.user_id)
    views = [session_view(session, call.principal.session_id) for session in sessions]
    return Reply(200, SessionsView(sessions=views))


@table.route(
    "DELETE",
    f"{API_PREFIX}/auth/sessions/{{session_id}}",
    summary="End one of my sessions",
    responses={204: None},
    errors={404: "No live session with this id is yours (not_found)."},
)
async def revoke_session(call: Call[object], session_id: str) -> Reply:
    """Ends the session: its tokens stop working and its WebSockets close (4002) on every
    node. It may be the current session (then this is a logout)."""
    assert call.principal is not None
    await call.services.auth.revoke(call.principal, session_id)
    return Reply(204)


@table.route(
    "POST",
    f"{API_PREFIX}/auth/sessions/revoke-others",
    summary="End all my other sessions",
    responses={200: RevokedView},
)
async def revoke_other_sessions(call: Call[object]) -> Reply:
    """Ends every live session of the caller except the current one (their WebSockets
    close with 4002 on every node)."""
    assert call.principal is not None
    revoked = await call.services.auth.revoke_others(call.principal)
    return Reply(200, RevokedView(revoked_sessions=revoked))


@table.route(
    "POST",
    f"{API_PREFIX}/auth/password",
    summary="Change my password",
    input=ChangePassword,
    responses={200: RevokedView},
    errors={
        400: "The new password breaks the account rules (invalid_input).",
        403: "The old password is wrong (wrong_password).",
    },
)
async def change_password(call: Call[ChangePassword]) -> Reply:
    """Replaces the password and ends every other session of the caller (the current one
    stays); the answer says how many ended."""
    assert call.principal is not None
    body = call.input
    revoked = await call.services.auth.change_password(
        call.principal, body.old_password, body.new_password
    )
    return Reply(200, RevokedView(revoked_sessions=revoked))
