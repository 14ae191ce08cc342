"""`/api/v1/users/*`: the caller's account and other users' public profiles.

Any signed-in user may read any profile, by id or by username (to start a
conversation with someone whose name they know), and its avatar. Users
change their own display name and avatar (one of their ready image files).
"""

from __future__ import annotations

import attrs

from chorus.actors.events import file_info
from chorus.auth import DISPLAY_NAME_CHARS
from chorus.persistence import FileState
from chorus.protocol import MAX_ID_CHARS, ErrorCode
from chorus.services import Services
from chorus.text import NAME_PATTERN, name_problem

from ._errors import bad_request, not_found
from ._input import text
from ._output import ProfileView, UserView, user_view
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


@attrs.frozen(kw_only=True)
class ProfileChange:
    display_name: str = text(
        *DISPLAY_NAME_CHARS,
        "Shown to other users. Trimmed; the rules of registration's display_name (a name of"
        " only invisible characters is refused with 400 `invalid_value`).",
        pattern=NAME_PATTERN,
    )


@attrs.frozen(kw_only=True)
class AvatarChoice:
    file_id: str = text(1, MAX_ID_CHARS, "One of the caller's files: a ready image.")


async def profile_view(services: Services, user_id: str) -> ProfileView:
    user = await services.store.get_user(user_id)
    if user is None:
        raise not_found(f"no user {user_id}")
    avatar_id = await services.store.avatar_of(user_id)
    avatar = None if avatar_id is None else await services.store.get_file(avatar_id)
    if avatar is None or avatar.deleted_at is not None:
        return ProfileView(user=user_view(user), avatar=None)
    return ProfileView(user=user_view(user), avatar=file_info(avatar))


@table.route(
    "PATCH",
    f"{API_PREFIX}/users/me",
    summary="Change the caller's display name",
    input=ProfileChange,
    responses={200: UserView},
)
async def update_me(call: Call[ProfileChange]) -> Reply:
    """The caller's account with its new display name."""
    name = call.input.display_name.strip()
    if (problem := name_problem(name)) is not None:
        raise bad_request(ErrorCode.INVALID_VALUE, f"display_name: {problem}")
    return Reply(200, user_view(await call.services.store.set_display_name(call.user_id, name)))


@table.route(
    "PUT",
    f"{API_PREFIX}/users/me/avatar",
    summary="Set the caller's avatar",
    input=AvatarChoice,
    responses={200: ProfileView},
    errors={
        400: "Not a ready image (`invalid_value`).",
        404: "No such file of the caller's.",
    },
)
async def set_avatar(call: Call[AvatarChoice]) -> Reply:
    """One of the caller's ready image files becomes their avatar, visible to anyone
    signed in (`GET /files/{id}` and its URLs) while it is."""
    store = call.services.store
    file = await store.get_file(call.input.file_id)
    if file is None or file.deleted_at is not None or file.owner_id != call.user_id:
        raise not_found("no such file of yours")
    if file.state is not FileState.READY or not (file.content_type or "").startswith("image/"):
        raise bad_request(ErrorCode.INVALID_VALUE, "file_id: an avatar is a ready image")
    await store.set_avatar(call.user_id, file.id)
    return Reply(200, await profile_view(call.services, call.user_id))


@table.route(
    "DELETE",
    f"{API_PREFIX}/users/me/avatar",
    summary="Remove the caller's avatar",
    responses={204: None},
)
async def remove_avatar(call: Call[object]) -> Reply:
    """The caller has no avatar (the file stays theirs, visible to them only again)."""
    await call.services.store.set_avatar(call.user_id, None)
    return Reply(204)


@table.route(
    "GET",
    f"{API_PREFIX}/users/{{user_id}}/profile",
    summary="A user's profile",
    responses={200: ProfileView},
    errors={404: "No such user."},
)
async def get_profile(call: Call[object], user_id: str) -> Reply:
    """The user and their avatar (a file, null without one)."""
    return Reply(200, await profile_view(call.services, user_id))
