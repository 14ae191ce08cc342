"""`/api/v1/users/*`: the caller's account and other users' public profiles.

Any signed-in user may read any profile, by id or by username (to start a
conversation with someone whose name they know).
"""

from __future__ import annotations

from ._errors import not_found
from ._output import UserView, user_view
from ._routing import API_PREFIX, Call, Reply, RouteTable

table = RouteTable("users")


@table.route("GET", f"{API_PREFIX}/users/me", summary="The caller", responses={200: UserView})
async def get_me(call: Call[object]) -> Reply:
    """The caller's own account."""
    user = await call.services.store.get_user(call.user_id)
    if user is None:
        raise not_found("the account no longer exists")
    return Reply(200, user_view(user))


@table.route(
    "GET",
    f"{API_PREFIX}/users/{{user_id}}",
    summary="A user",
    responses={200: UserView},
    errors={404: "No such user."},
)
async def get_user(call: Call[object], user_id: str) -> Reply:
    """Any user's public profile."""
    user = await call.services.store.get_user(user_id)
    if user is None:
        raise not_found(f"no user {user_id}")
    return Reply(200, user_view(user))


@table.route(
    "GET",
    f"{API_PREFIX}/users/by-name/{{username}}",
    summary="A user by username",
    responses={200: UserView},
    errors={404: "No user has this username."},
)
async def get_user_by_name(call: Call[object], username: str) -> Reply:
    """Any user's public profile, found by username in any letter case."""
    user = await call.services.store.get_user_by_username(username)
    if user is None:
        raise not_found(f"no user named {username!r}")
    return Reply(200, user_view(user))
