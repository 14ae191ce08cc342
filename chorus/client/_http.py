"""`HttpApi`: the Chorus HTTP API from trio, with typed results and automatic token refresh."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

import chorus
from chorus import protocol
from chorus.protocol import FileInfo, Message

from ._files import (
    NO_CLAIM,
    FileSource,
    Progress,
    Upload,
    Variant,
    download_path,
    download_to,
    open_upload,
    wait_checked,
)
from ._models import (
    Edit,
    Invitation,
    MessageDetail,
    Notification,
    Room,
    SearchHit,
    Session,
    SessionInfo,
    TwoFactorEnrolment,
    TwoFactorState,
    Unread,
    User,
    parse,
)


class ApiError(Exception):
    """The server answered with an error: `status` (HTTP), `code` (stable) and `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


USER_AGENT = f"chorus-sdk/{chorus.__version__}"
ENCRYPTED_NAME = "attachment"
"""The name every end-to-end encrypted file is uploaded under (it reveals nothing)."""


class TwoFactorRequired(Exception):
    """The password was right but the account has 2FA: call `HttpApi.complete_login`
    with `challenge_token` and a code within `expires_in` seconds."""

    def __init__(self, challenge_token: str, expires_in: int) -> None:
        super().__init__("a two-factor code is required")
        self.challenge_token = challenge_token
        self.expires_in = expires_in


KEEPALIVE_EXPIRY = 2.0
"""Seconds an idle pooled connection is reused for: well under a node's default
`http_idle_timeout` (5 s), so a request is never written onto a connection the server
is closing at that moment (which fails as "Server disconnected without sending a
response", and httpx retries no request that was already sent)."""


class HttpApi:
    """A client of one Chorus server's `/api/v1`.

    After `register` or `login` every call is authenticated; when the access
    token has expired the session is refreshed once and the call repeated.
    """

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, user_agent: str = USER_AGENT
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/api/v1",
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
            # What the owner sees for this client's sessions (GET /auth/sessions).
            headers={"User-Agent": user_agent},
        )
        self.session: Session | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> HttpApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def user(self) -> User:
        if self.session is None:
            raise RuntimeError("log in first")
        return self.session.user

    # -- accounts -------------------------------------------------------------------------

    async def register(
        self, username: str, password: str, display_name: str | None = None
    ) -> Session:
        body: dict[str, Any] = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        return self._keep(await self._call("POST", "/auth/register", body, auth=False))

    async def login(self, username: str, password: str, code: str | None = None) -> Session:
        """Open a session; raises `TwoFactorRequired` if the account has 2FA and no `code`
        (a TOTP or recovery code) was given, `ApiError` for wrong credentials or code."""
        body = {"username": username, "password": password}
        response = await self._send("POST", "/auth/login", body, None, auth=False)
        if response.status_code >= 400:
            raise _api_error(response)
        data = response.json()
        if response.status_code != 202:
            return self._keep(data)
        if code is None:
            raise TwoFactorRequired(data["challenge_token"], data["expires_in"])
        return await self.complete_login(data["challenge_token"], code)

    async def complete_login(self, challenge_token: str, code: str) -> Session:
        """The second login step: a TOTP code or a recovery code for a `TwoFactorRequired`."""
        body = {"challenge_token": challenge_token, "code": code}
        return self._keep(await self._call("POST", "/auth/login/2fa", body, auth=False))

    async def refresh(self) -> Session:
        """Rotate the refresh token (raises `ApiError` if the session has ended)."""
        if self.session is None:
            raise RuntimeError("log in first")
        body = {"refresh_token": self.session.refresh_token}
        return self._keep(await self._call("POST", "/auth/refresh", body, auth=False))

    async def logout(self) -> None:
        await self._call("POST", "/auth/logout")
        self.session = None

    # -- two-factor authentication and sessions -----------------------------------------

    async def two_factor(self) -> TwoFactorState:
        return parse(TwoFactorState, await self._call("GET", "/auth/2fa"))

    async def enrol_two_factor(self, password: str) -> TwoFactorEnrolment:
        """A new TOTP secret; 2FA is on only once `confirm_two_factor` gets a code of it."""
        data = await self._call("POST", "/auth/2fa/enrol", {"password": password})
        return parse(TwoFactorEnrolment, data)

    async def confirm_two_factor(
        self, code: str, *, revoke_other_sessions: bool = False
    ) -> tuple[list[str], int]:
        """Turn 2FA on; the recovery codes (shown once) and how many other sessions ended."""
        body = {"code": code, "revoke_other_sessions": revoke_other_sessions}
        data = await self._call("POST", "/auth/2fa/confirm", body)
        return [str(c) for c in data["recovery_codes"]], int(data["revoked_sessions"])

    async def disable_two_factor(self, password: str, code: str) -> None:
        await self._call("POST", "/auth/2fa/disable", {"password": password, "code": code})

    async def sessions(self) -> list[SessionInfo]:
        """The caller's live sessions, oldest first (`current` marks this client's)."""
        data = await self._call("GET", "/auth/sessions")
        return [parse(SessionInfo, item) for item in data["sessions"]]

    async def revoke_session(self, session_id: str) -> None:
        """End one of the caller's sessions (this client's own too: then it is logged out)."""
        await self._call("DELETE", f"/auth/sessions/{quote(session_id, safe='')}")
        if self.session is not None and self.session.session_id == session_id:
            self.session = None

    async def revoke_other_sessions(self) -> int:
        """End every other session of the caller; how many ended."""
        return int((await self._call("POST", "/auth/sessions/revoke-others"))["revoked_sessions"])

    async def change_password(self, old_password: str, new_password: str) -> int:
        """Change the password; every other session ends (how many are returned)."""
        body = {"old_password": old_password, "new_password": new_password}
        return int((await self._call("POST", "/auth/password", body))["revoked_sessions"])

    async def me(self) -> User:
        return parse(User, await self._call("GET", "/users/me"))

    async def get_user(self, user_id: str) -> User:
        return parse(User, await self._call("GET", f"/users/{user_id}"))

    async def user_by_name(self, username: str) -> User:
        """The user with this username (any letter case); `ApiError` 404 if there is none."""
        return parse(User, await self._call("GET", f"/users/by-name/{quote(username, safe='')}"))

    async def set_display_name(self, display_name: str) -> User:
        """Change your display name; your account as it now is."""
        return parse(User, await self._call("PATCH", "/users/me", {"display_name": display_name}))

    async def set_avatar(self, file_id: str) -> FileInfo:
        """Make one of your ready image files your avatar (shown to everyone signed in)."""
        data = await self._call("PUT", "/users/me/avatar", {"file_id": file_id})
        return parse(FileInfo, data["avatar"])

    async def remove_avatar(self) -> None:
        await self._call("DELETE", "/users/me/avatar")

    async def profile(self, user_id: str) -> tuple[User, FileInfo | None]:
        """A user and their avatar (None without one)."""
        data = await self._call("GET", f"/users/{user_id}/profile")
        avatar = None if data["avatar"] is None else parse(FileInfo, data["avatar"])
        return parse(User, data["user"]), avatar

    # -- rooms ----------------------------------------------------------------------------

    async def create_room(self, name: str, kind: str = "public") -> Room:
        return parse(Room, await self._call("POST", "/rooms", {"name": name, "kind": kind}))

    async def my_rooms(self) -> list[Room]:
        data = await self._call("GET", "/rooms")
        return [parse(Room, room) for room in data["rooms"]]

    async def public_rooms(self, limit: int = 50, after: str | None = None) -> list[Room]:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        data = await self._call("GET", "/rooms/public", params=params)
        return [parse(Room, room) for room in data["rooms"]]

    async def get_room(self, room_id: str) -> dict[str, Any]:
        """The room with its members (roles and presence), as the server sends it."""
        result: dict[str, Any] = await self._call("GET", f"/rooms/{room_id}")
        return result

    async def join_room(self, room_id: str) -> None:
        await self._call("POST", f"/rooms/{room_id}/join")

    async def invite(self, room_id: str, user_id: str) -> None:
        """Add the user to the room directly (no invitation to accept): see `create_invite`."""
        await self._call("POST", f"/rooms/{room_id}/members", {"user_id": user_id})

    # -- invitations to private rooms ----------------------------------------------------

    async def create_invite(self, room_id: str, user_id: str) -> dict[str, Any]:
        """Invite the user to a private room: pending until they accept. The invitation:
        `room_id`, `user_id`, `invited_by`, `created_at`."""
        made: dict[str, Any] = await self._call(
            "POST", f"/rooms/{room_id}/invites", {"user_id": user_id}
        )
        return made

    async def room_invites(self, room_id: str) -> list[dict[str, Any]]:
        """The room's pending invitations (as `create_invite` returns them), oldest first."""
        found: list[dict[str, Any]] = (await self._call("GET", f"/rooms/{room_id}/invites"))[
            "invites"
        ]
        return found

    async def revoke_invite(self, room_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/rooms/{room_id}/invites/{user_id}")

    async def my_invites(self) -> list[Invitation]:
        """The caller's pending invitations, oldest first."""
        data = await self._call("GET", "/me/invites")
        return [
            Invitation(
                room=parse(Room, i["room"]), invited_by=i["invited_by"], created_at=i["created_at"]
            )
            for i in data["invites"]
        ]

    async def accept_invite(self, room_id: str) -> Room:
        """Become a member of the room the caller is invited to."""
        return parse(Room, await self._call("POST", f"/me/invites/{room_id}/accept"))

    async def decline_invite(self, room_id: str) -> None:
        await self._call("POST", f"/me/invites/{room_id}/decline")

    async def remove_member(self, room_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/rooms/{room_id}/members/{user_id}")

    # -- moderation (who may: docs/permissions.md) -----------------------------------

    async def ban(self, room_id: str, user_id: str, reason: str = "") -> None:
        """Ban a user from the room: their membership ends, they cannot come back."""
        await self._call("POST", f"/rooms/{room_id}/bans", {"user_id": user_id, "reason": reason})

    async def unban(self, room_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/rooms/{room_id}/bans/{user_id}")

    async def bans(self, room_id: str) -> list[dict[str, Any]]:
        """The room's bans: `user_id`, `banned_by`, `reason`, `banned_at`."""
        bans: list[dict[str, Any]] = (await self._call("GET", f"/rooms/{room_id}/bans"))["bans"]
        return bans

    async def mute(self, room_id: str, user_id: str, minutes: int | None = None) -> None:
        """Make a member read-only in the room, for `minutes` or until unmuted."""
        body = {} if minutes is None else {"minutes": minutes}
        await self._call("PUT", f"/rooms/{room_id}/mutes/{user_id}", body)

    async def unmute(self, room_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/rooms/{room_id}/mutes/{user_id}")

    async def lock(self, room_id: str, locked: bool = True) -> None:
        """Lock (only moderators post) or unlock the room."""
        await self._call("PUT", f"/rooms/{room_id}/lock", {"locked": locked})

    async def set_role(self, room_id: str, user_id: str, role: str) -> None:
        """Make a member a `moderator`, or a moderator a `member`."""
        await self._call("PUT", f"/rooms/{room_id}/members/{user_id}/role", {"role": role})

    async def transfer(self, room_id: str, user_id: str) -> None:
        """Give the room to another member (you become a moderator)."""
        await self._call("PUT", f"/rooms/{room_id}/owner", {"user_id": user_id})

    async def block(self, user_id: str) -> None:
        """Refuse direct messages from the user."""
        await self._call("PUT", f"/users/me/blocks/{user_id}")

    async def unblock(self, user_id: str) -> None:
        await self._call("DELETE", f"/users/me/blocks/{user_id}")

    async def blocked(self) -> list[str]:
        user_ids: list[str] = (await self._call("GET", "/users/me/blocks"))["user_ids"]
        return user_ids

    # -- the admin API (server admins only) ----------------------------------------

    async def admin_users(
        self, *, role: str | None = None, after: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """A page of users with their server roles: `users` and `next_after`."""
        params: dict[str, Any] = {"limit": limit}
        params |= {k: v for k, v in (("role", role), ("after", after)) if v is not None}
        page: dict[str, Any] = await self._call("GET", "/admin/users", params=params)
        return page

    async def admin_set_role(self, user_id: str, role: str) -> None:
        """Set a user's server role: `admin`, `moderator` or `member`."""
        await self._call("PUT", f"/admin/users/{user_id}/role", {"role": role})

    async def admin_revoke_sessions(self, user_id: str) -> int:
        """End every session of the user; how many ended."""
        data = await self._call("POST", f"/admin/users/{user_id}/revoke-sessions")
        return int(data["revoked_sessions"])

    async def admin_deactivate(self, user_id: str) -> int:
        """Stop the user signing in and end their sessions; how many ended."""
        data = await self._call("POST", f"/admin/users/{user_id}/deactivate")
        return int(data["revoked_sessions"])

    async def admin_reactivate(self, user_id: str) -> None:
        await self._call("POST", f"/admin/users/{user_id}/reactivate")

    async def admin_reset_two_factor(self, user_id: str) -> None:
        await self._call("POST", f"/admin/users/{user_id}/reset-2fa")

    async def admin_rooms(self, *, after: str | None = None, limit: int = 50) -> dict[str, Any]:
        """A page of public and private rooms: `rooms` and `next_after`."""
        params: dict[str, Any] = {"limit": limit} | ({} if after is None else {"after": after})
        page: dict[str, Any] = await self._call("GET", "/admin/rooms", params=params)
        return page

    async def admin_delete_room(self, room_id: str) -> None:
        """Delete a room and everything in it."""
        await self._call("DELETE", f"/admin/rooms/{room_id}")

    async def admin_transfer_room(self, room_id: str, user_id: str) -> None:
        await self._call("PUT", f"/admin/rooms/{room_id}/owner", {"user_id": user_id})

    async def admin_settings(self) -> dict[str, dict[str, Any]]:
        """The run-time server settings by name: `value`, `default`, `source`, bounds..."""
        data = await self._call("GET", "/admin/settings")
        return {setting["name"]: setting for setting in data["settings"]}

    async def admin_update_settings(self, **changes: Any) -> dict[str, dict[str, Any]]:
        """Change run-time server settings (None: back to the configured default); the
        settings after the change, by name."""
        data = await self._call("PATCH", "/admin/settings", changes)
        return {setting["name"]: setting for setting in data["settings"]}

    async def direct_room(self, user_id: str, *, encrypted: bool = False) -> Room:
        """The direct room with `user_id`; with `encrypted`, their end-to-end encrypted
        one (docs/e2e.md): another room than the plain one, encrypted for good."""
        body: dict[str, Any] = {"user_id": user_id}
        if encrypted:
            body["encrypted"] = True
        return parse(Room, await self._call("POST", "/dms", body))

    async def group_room(self, user_ids: list[str], *, encrypted: bool = False) -> Room:
        """The direct conversation of the caller and these users (the same set: the same room)."""
        body: dict[str, Any] = {"user_ids": user_ids}
        if encrypted:
            body["encrypted"] = True
        return parse(Room, await self._call("POST", "/dms", body))

    async def unread(self) -> dict[str, Unread]:
        """Unread messages and mentions per room the caller is in."""
        data = await self._call("GET", "/unread")
        return {entry["room"]: parse(Unread, entry) for entry in data["rooms"]}

    # -- messages -------------------------------------------------------------------------

    async def history(
        self,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        if after is not None:
            params["after"] = after
        events = await self.events(room_id, before=before, after=after, limit=limit)
        return [event.message for event in events if isinstance(event, protocol.MessageEvent)]

    async def events(
        self,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[RoomEvent]:
        """A page of the room's events (messages, edits, deletes, reactions) in seq order."""
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        if after is not None:
            params["after"] = after
        data = await self._call("GET", f"/rooms/{room_id}/messages", params=params)
        return [_room_event(item) for item in data["events"]]

    async def post(
        self, room_id: str, body: str, client_id: str, *, attachments: Sequence[str] = ()
    ) -> Message:
        """Post over HTTP (same storage, order and idempotency as the gateway).

        `attachments`: ids of your `ready` files, not attached yet (`body` may
        then be "").
        """
        fields: dict[str, Any] = {"body": body, "client_id": client_id}
        if attachments:
            fields["attachments"] = list(attachments)
        data = await self._call("POST", f"/rooms/{room_id}/messages", fields)
        return parse(Message, data["message"])

    async def thread(self, room_id: str, message_id: str, *, limit: int = 50) -> list[Message]:
        """The first `limit` replies in the thread rooted at `message_id`."""
        path = f"/rooms/{room_id}/messages/{message_id}/thread"
        data = await self._call("GET", path, params={"limit": limit})
        return [parse(Message, message) for message in data["messages"]]

    async def message(self, room_id: str, message_id: str) -> MessageDetail:
        """One message with its reaction counts and thread summary."""
        return parse(MessageDetail, await self._call("GET", _message_path(room_id, message_id)))

    async def reactors(self, room_id: str, message_id: str, emoji: str) -> list[str]:
        """Ids of the users who reacted to the message with `emoji`."""
        path = f"{_message_path(room_id, message_id)}/reactions/{quote(emoji, safe='')}"
        return list((await self._call("GET", path))["users"])

    async def edit_history(self, room_id: str, message_id: str) -> list[Edit]:
        """The message's earlier texts, oldest first."""
        data = await self._call("GET", f"{_message_path(room_id, message_id)}/history")
        return [parse(Edit, edit) for edit in data["edits"]]

    async def followed_threads(self, *, limit: int = 20) -> list[MessageDetail]:
        """Roots of the threads the caller started or replied to, newest activity first."""
        data = await self._call("GET", "/threads", params={"limit": limit})
        return [parse(MessageDetail, thread) for thread in data["threads"]]

    async def set_notify(self, room_id: str, level: str) -> None:
        """Which messages of the room notify the caller: all, mentions or none."""
        await self._call("PUT", f"/rooms/{room_id}/notify", {"level": level})

    async def search(
        self, query: str, *, room_id: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """Messages of the caller's rooms matching `query`, newest first."""
        params: dict[str, Any] = {"q": query, "limit": limit}
        if room_id is not None:
            params["room"] = room_id
        data = await self._call("GET", "/search", params=params)
        return [parse(SearchHit, hit) for hit in data["hits"]]

    async def notifications(self, *, limit: int = 20) -> list[Notification]:
        """The caller's latest notifications, newest first."""
        data = await self._call("GET", "/notifications", params={"limit": limit})
        return [parse(Notification, item) for item in data["notifications"]]

    async def mark_notifications_read(self) -> None:
        await self._call("POST", "/notifications/read", {"all": True})

    # -- files --------------------------------------------------------------------------

    async def upload_file(
        self,
        source: FileSource,
        *,
        name: str | None = None,
        content_type: str = NO_CLAIM,
        progress: Progress | None = None,
    ) -> FileInfo:
        """Upload a file (a path or a binary file object), streamed; the file, `pending`.

        The bytes are read and sent `CHUNK_BYTES` at a time, never held
        whole; `progress(sent, total)` is called after each chunk. `name`
        (default: the file's own) is only shown to people. `content_type`
        is a claim the server checks against the bytes (the default claims
        nothing). Wait for the server's check with `wait_for_file` (or
        `RealtimeClient.wait_for_file`). Raises `ApiError`: 413
        `file_too_large` or `quota_exceeded`, 429 `too_many_uploads`, 415;
        and `OSError` when a path cannot be read.
        """
        async with open_upload(source, name) as upload:
            return await self.send_upload(upload, content_type=content_type, progress=progress)

    async def send_upload(
        self, upload: Upload, *, content_type: str = NO_CLAIM, progress: Progress | None = None
    ) -> FileInfo:
        """Send an opened upload (see `upload_file`); the file, `pending`.

        An upload with a cipher goes as it encrypts it, declared end-to-end
        encrypted (`?encrypted=true`) under the name `ENCRYPTED_NAME`: its
        real name travels in the message (`chorus.client.e2e`).
        """
        response = await self._upload(upload, content_type, progress)
        if response.status_code == 401 and self.session is not None and await upload.rewind():
            await self.refresh()
            response = await self._upload(upload, content_type, progress)
        if response.status_code >= 400:
            raise _api_error(response)
        return parse(FileInfo, response.json())

    async def file(self, file_id: str) -> FileInfo:
        """One of your files (or one attached in a room of yours): its state and metadata."""
        return parse(FileInfo, await self._call("GET", f"/files/{file_id}"))

    async def delete_file(self, file_id: str) -> None:
        """Delete one of your files: it is never delivered again."""
        await self._call("DELETE", f"/files/{file_id}")

    async def wait_for_file(self, file_id: str, *, timeout: float = 120.0) -> FileInfo:
        """The file once the server has checked it, polling its state (with backoff).

        Returns it `ready`; raises `FileRejected` (with the `reason`) if it was
        refused, `TimeoutError` if still unchecked after `timeout` seconds.
        With a connection open, `RealtimeClient.wait_for_file` hears it sooner.
        """
        return await wait_checked(lambda: self.file(file_id), timeout=timeout)

    async def file_url(self, file_id: str, variant: Variant = "original") -> str:
        """A URL fetching the ready file (or a thumbnail) without a token, for a few minutes.

        `ApiError` 404 if the file is not ready or has no such thumbnail.
        """
        data = await self._call("GET", f"/files/{file_id}/url", params={"variant": variant})
        return str(data["url"])

    async def download_file(
        self,
        file_id: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        variant: Variant = "original",
        progress: Progress | None = None,
    ) -> Path:
        """Download a ready file (or a thumbnail) to `dest`, streamed; the path written.

        `dest` is a file path, or a directory to write the file under its own
        name (default: the current directory). `progress(received, total)` is
        called after each chunk. The file appears complete or not at all.
        """
        file = await self.file(file_id)
        target = await download_path(dest, file.name, file.id)
        url = await self.file_url(file_id, variant)
        # The URL carries its own authorisation: no token goes to storage or a CDN.
        async with self._http.stream("GET", url) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _api_error(response)
            return await download_to(response, target, progress)

    # -- end-to-end encryption keys (docs/e2e.md; chorus.client.e2e drives these) -------

    async def put_device(self, device_id: str, keys: dict[str, Any]) -> dict[str, Any]:
        """Register this session's device with its signed identity keys; the device object."""
        data = await self._call("PUT", f"/devices/{quote(device_id, safe='')}", keys)
        return dict(data["device"])

    async def my_devices(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/devices"))["devices"])

    async def delete_device(self, device_id: str) -> None:
        await self._call("DELETE", f"/devices/{quote(device_id, safe='')}")

    async def query_devices(self, user_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The key directory's devices of each user (unverified: the server could lie)."""
        data = await self._call("POST", "/keys/query", {"user_ids": list(user_ids)})
        return {user: list(devices) for user, devices in data["devices"].items()}

    async def upload_keys(
        self,
        device_id: str,
        one_time_keys: Sequence[dict[str, Any]],
        fallback_key: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """Publish signed one-time keys (and a fallback key); the unclaimed count and
        whether a fallback key is held."""
        body: dict[str, Any] = {"one_time_keys": list(one_time_keys)}
        if fallback_key is not None:
            body["fallback_key"] = fallback_key
        data = await self._call("POST", f"/devices/{quote(device_id, safe='')}/keys", body)
        return int(data["one_time_key_count"]), bool(data["fallback_key"])

    async def key_counts(self, device_id: str) -> tuple[int, bool]:
        data = await self._call("GET", f"/devices/{quote(device_id, safe='')}/keys")
        return int(data["one_time_key_count"]), bool(data["fallback_key"])

    async def claim_keys(self, devices: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """One one-time (or fallback) key for each (user, device) that has one."""
        body = {"devices": [{"user_id": u, "device_id": d} for u, d in devices]}
        return list((await self._call("POST", "/keys/claim", body))["keys"])

    async def send_to_device(
        self, sender_device: str, messages: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Queue Olm envelopes for devices; the recipients that are not live devices."""
        body = {"sender_device": sender_device, "messages": list(messages)}
        return list((await self._call("POST", "/to-device", body))["undeliverable"])

    async def fetch_to_device(self, device_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The device's queued to-device messages, oldest first (acknowledge them after)."""
        path = f"/devices/{quote(device_id, safe='')}/to-device"
        return list((await self._call("GET", path, params={"limit": limit}))["messages"])

    async def ack_to_device(self, device_id: str, ids: Sequence[str]) -> int:
        path = f"/devices/{quote(device_id, safe='')}/to-device/ack"
        return int((await self._call("POST", path, {"ids": list(ids)}))["deleted"])

    async def gateway_urls(self) -> list[str]:
        data = await self._call("GET", "/gateway", auth=False)
        return list(data["urls"])

    # -- plumbing -------------------------------------------------------------------------

    def _keep(self, data: Any) -> Session:
        self.session = parse(Session, data)
        return self.session

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        response = await self._send(method, path, body, params, auth)
        if response.status_code == 401 and auth and self.session is not None:
            await self.refresh()
            response = await self._send(method, path, body, params, auth)
        if response.status_code >= 400:
            raise _api_error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def _upload(
        self, upload: Upload, content_type: str, progress: Progress | None
    ) -> httpx.Response:
        if self.session is None:
            raise RuntimeError("log in first")
        headers = {
            "authorization": f"Bearer {self.session.access_token}",
            "content-type": content_type,
        }
        if upload.size is not None:  # lets the server refuse a file too large at once
            headers["content-length"] = str(upload.size)
        else:
            headers["transfer-encoding"] = "chunked"
        params = {"name": upload.name}
        if upload.cipher is not None:  # a name would tell what the file is
            params = {"name": ENCRYPTED_NAME, "encrypted": "true"}
        request = self._http.build_request("POST", "/files", params=params, headers=headers)
        request.stream = upload.body(progress)
        return await self._http.send(request)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, Any] | None,
        auth: bool,
    ) -> httpx.Response:
        headers = {}
        if auth:
            if self.session is None:
                raise RuntimeError("log in first")
            headers["authorization"] = f"Bearer {self.session.access_token}"
        return await self._http.request(method, path, json=body, params=params, headers=headers)


def _api_error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "http_error", response.text[:200])


RoomEvent = (
    protocol.MessageEvent | protocol.EditedEvent | protocol.DeletedEvent | protocol.ReactionEvent
)
"""A sequenced room event, as the gateway sends it and the history returns it."""


def _room_event(item: dict[str, Any]) -> RoomEvent:
    frame = protocol.decode_server_frame(orjson.dumps(item))
    if not isinstance(
        frame,
        protocol.MessageEvent
        | protocol.EditedEvent
        | protocol.DeletedEvent
        | protocol.ReactionEvent,
    ):
        raise ApiError(502, "bad_response", f"not a room event: {type(frame).TYPE}")
    return frame


def _message_path(room_id: str, message_id: str) -> str:
    return f"/rooms/{room_id}/messages/{message_id}"
