"""`/api/v1/files`: upload a file (streamed to the spool), see it, delete it (issue #13).

An upload is the raw bytes as the body with their `Content-Type`, the display
name in the query. The body is never held in memory: it is written chunk by
chunk to a spool file while its size and SHA-256 are computed, and refused
413 as soon as it passes `files_max_bytes` (at once from `Content-Length`
when it is sent), the partial spool file deleted. The answer is 202 with the
file `pending`: the pipeline (`chorus.actors.files`) checks it and tells the
uploader's connections when it is `ready` or `rejected`.

Who may see a file: its owner until a message attaches it; then the members
of that message's room. Others get 404, as if it did not exist.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import attrs
import trio
from quart import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_range_header

from chorus import protocol
from chorus.actors.events import file_info
from chorus.actors.files import variant_key
from chorus.files import (
    LocalStorage,
    ObjectNotFound,
    UrlRefused,
    delivery_headers,
    display_name,
    disposition_for,
)
from chorus.metrics import FILE_UPLOAD_BYTES, FILE_UPLOADS
from chorus.persistence import FileState, NewFile, StoredFile, now_ms

from ._body import StreamedBody
from ._errors import ApiError, not_found
from ._input import choice, flag, text
from ._output import FileUrlView
from ._routing import API_PREFIX, Call, Content, Reply, RouteTable, Streamed

table = RouteTable("files")

FILES = f"{API_PREFIX}/files"
MAX_NAME_CHARS = 1024
"""Longest name accepted in the query (it is cut to 255 characters when sanitised)."""
CHUNK_TIMEOUT = 60
"""Seconds an upload may send nothing before it is refused (408)."""
PART_SUFFIX = ".part"
ORIGINAL = "original"
THUMBNAILS = ("320", "1280")
"""The thumbnails' variant names (`chorus.files.process_image`'s default bounds)."""


@attrs.frozen(kw_only=True)
class UploadName:
    name: str = text(
        1,
        MAX_NAME_CHARS,
        "The file's name as the user sees it; sanitised (path, controls and bidi"
        " characters removed, at most 255 characters) and never used as a path.",
    )
    encrypted: bool = flag(
        "The bytes are end-to-end encrypted by the client (docs/e2e.md): stored as they"
        " come, without type check, image processing or virus scan, and attachable only in"
        " encrypted rooms.",
        default=False,
    )


def _refusal(status: int, code: str, message: str) -> ApiError:
    FILE_UPLOADS.labels(code).inc()
    return ApiError(status, code, message)


@table.route(
    "POST",
    FILES,
    summary="Upload a file",
    input=UploadName,
    raw_body=Content(
        "application/octet-stream",
        "The file's bytes; send its real type as Content-Type (it is checked against the"
        " bytes: a mismatch is rejected). application/octet-stream makes no claim.",
    ),
    responses={202: protocol.FileInfo},
    errors={
        408: "The body stopped arriving for 60 seconds (request_timeout).",
        413: "The file is over files_max_bytes (file_too_large), or would take the"
        " caller past files_quota_bytes (quota_exceeded).",
        415: "No Content-Type was sent (unsupported_media_type).",
        429: "The caller already has files_concurrent_uploads uploads in progress on this"
        " node (too_many_uploads).",
    },
)
async def upload_file(call: Call[UploadName]) -> Reply:
    """Stores the body as a new file of the caller's: 202 with it `pending`.

    The file is then checked (type sniffed from the bytes, images verified
    and re-encoded, virus scan) and becomes `ready` or `rejected`, which the
    caller's WebSocket connections are told with a `file` frame. Only a
    `ready` file can be fetched (`GET /files/{file_id}/url`) or attached.
    """
    services = call.services
    files = services.files
    content_type = request.mimetype
    if not content_type:
        raise _refusal(415, "unsupported_media_type", "send the file's type as Content-Type")
    max_bytes = services.live.current.files_max_bytes
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise _refusal(413, "file_too_large", f"files are limited to {max_bytes} bytes")
    await _check_quota(call, declared or 0)
    if not files.uploads.take(call.user_id):
        raise _refusal(
            429, "too_many_uploads", f"at most {files.uploads.limit} uploads at once; retry"
        )
    part = files.spool_dir / f"upload-{secrets.token_hex(12)}{PART_SUFFIX}"
    try:
        size, sha256 = await _spool(part, max_bytes)
        await _check_quota(call, size)
        new = NewFile(
            owner_id=call.user_id,
            name=display_name(call.input.name),
            declared_type=content_type,
            size=size,
            sha256=sha256,
            node=files.node_name,
            created_at=now_ms(),
            encrypted=call.input.encrypted,
        )
        stored = await services.store.create_file(new)
        # Recorded first, renamed after: a crash in between leaves a record without
        # bytes, which the pipeline rejects (`interrupted`) when the node restarts.
        await trio.Path(part).rename(files.spool_dir / stored.id)
    finally:
        files.uploads.give_back(call.user_id)
        with trio.CancelScope(shield=True):  # a dropped client must not leave a .part file
            await trio.Path(part).unlink(missing_ok=True)
    services.pipeline.submit(stored.id)
    FILE_UPLOADS.labels("accepted").inc()
    FILE_UPLOAD_BYTES.inc(size)
    return Reply(202, file_info(stored))


async def _check_quota(call: Call[UploadName], size: int) -> None:
    quota = call.services.settings.files_quota_bytes
    if await call.services.store.bytes_stored(call.user_id) + size > quota:
        raise _refusal(413, "quota_exceeded", f"your files may take at most {quota} bytes")


async def _spool(part: Path, max_bytes: int) -> tuple[int, str]:
    """Write the request body to `part` as it arrives; its size and SHA-256 (hex).

    413 as soon as more than `max_bytes` arrived (the caller deletes `part`);
    408 when nothing arrives for `CHUNK_TIMEOUT` seconds.
    """
    body = request.body
    assert isinstance(body, StreamedBody), "the app's request_class streams bodies"
    body.set_limit(max_bytes)
    digest = hashlib.sha256()
    size = 0
    too_large = f"files are limited to {max_bytes} bytes"
    chunks = aiter(body)
    async with await trio.open_file(part, "xb") as out:
        while True:
            with trio.move_on_after(CHUNK_TIMEOUT) as waited:
                try:
                    chunk = await anext(chunks, None)
                except RequestEntityTooLarge:  # more than a limit under 1 MiB buffered, unread
                    raise _refusal(413, "file_too_large", too_large) from None
            if waited.cancelled_caught:
                raise ApiError(408, "request_timeout", "the upload stopped arriving")
            if chunk is None:
                break
            size += len(chunk)
            if size > max_bytes:
                raise _refusal(413, "file_too_large", too_large)
            digest.update(chunk)
            await out.write(chunk)
    return size, digest.hexdigest()


async def visible_file(call: Call[Any], file_id: str) -> StoredFile:
    """The file, if the caller may see it (its owner before attachment, then the room's
    members; anyone signed in while it is a user's avatar) and it is not deleted; else 404."""
    file = await call.services.store.get_file(file_id)
    if file is None or file.deleted_at is not None:
        raise not_found("no such file")
    if await call.services.store.is_avatar(file_id):
        return file
    if file.room_id is None:
        if file.owner_id != call.user_id:
            raise not_found("no such file")
        return file
    membership = await call.services.store.get_membership(file.room_id, call.user_id)
    if membership is None:
        raise not_found("no such file")
    return file


@table.route(
    "GET",
    f"{FILES}/{{file_id}}",
    summary="See a file",
    responses={200: protocol.FileInfo},
    errors={404: "No such file, deleted, or not visible to the caller."},
)
async def get_file(call: Call[object], file_id: str) -> Reply:
    """The file's metadata and state (its owner's, or, once attached, its room's members')."""
    return Reply(200, file_info(await visible_file(call, file_id)))


@table.route(
    "DELETE",
    f"{FILES}/{{file_id}}",
    summary="Delete a file",
    responses={204: None},
    errors={
        403: "The caller is not the file's owner.",
        404: "No such file, already deleted, or not visible to the caller.",
    },
)
async def delete_file(call: Call[object], file_id: str) -> Reply:
    """Deletes one of the caller's files: it is never delivered again, at once.

    Its bytes are removed from storage later; it stops counting against the quota now.
    """
    file = await visible_file(call, file_id)
    if file.owner_id != call.user_id:
        raise ApiError(403, "forbidden", "only its owner may delete a file")
    await call.services.store.delete_file(file_id, now_ms())
    return Reply(204)


# -- delivery ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UrlQuery:
    variant: str = choice(
        ORIGINAL,
        *THUMBNAILS,
        description="original, or a thumbnail of an image (320, 1280: the bound in pixels).",
        default=ORIGINAL,
    )


@table.route(
    "GET",
    f"{FILES}/{{file_id}}/url",
    summary="Get a download URL for a file",
    input=UrlQuery,
    responses={200: FileUrlView},
    errors={
        404: "No such file, deleted, not visible to the caller, not ready yet (rejected,"
        " or still being checked), or no such thumbnail.",
    },
)
async def get_file_url(call: Call[UrlQuery], file_id: str) -> Reply:
    """A URL that fetches the file for `file_url_ttl` seconds, with no token.

    Only for a `ready` file. Images are shown inline; every other type is a
    download (`Content-Disposition: attachment`). Served by the nodes
    themselves (signed URLs under the `public_url` setting, else the host the
    request came to; deleting the file stops them at once), by S3
    (presigned) or by a CDN (CloudFront signed), as the server is configured.
    """
    file = await visible_file(call, file_id)
    variant = call.input.variant
    content_type = _variant_type(file, variant)
    if file.state is not FileState.READY or content_type is None:
        raise not_found("the file is not ready, or has no such thumbnail")
    services = call.services
    files, ttl = services.files, services.settings.file_url_ttl
    expires_at = int(time.time()) + ttl
    key = variant_key(file.id, variant)
    if files.cdn is not None and files.s3 is not None:
        expiry = datetime.fromtimestamp(expires_at, UTC)
        url = files.cdn.signed_url(files.s3.object_key(key), expires_at=expiry)
    elif files.s3 is not None:
        url = await files.s3.presigned_get(
            key, ttl=ttl, display_name=file.name, content_type=content_type
        )
    else:
        disposition = disposition_for(content_type)
        query = files.url_signer.sign(
            file.id, variant, disposition=disposition, expires_at=expires_at
        )
        url = f"{_public_base(services.settings.public_url)}files/{file.id}/{variant}"
        url += f"?{urlencode(query)}"
    return Reply(200, FileUrlView(url=url, expires_at=expires_at * 1000))


def _public_base(public_url: str) -> str:
    """Where clients reach the nodes, ending in "/": `public_url`, else the address the
    request came to (behind a proxy that one is internal: set `public_url` there)."""
    return public_url.rstrip("/") + "/" if public_url else request.host_url


def _variant_type(file: StoredFile, variant: str) -> str | None:
    """The stored type of a file's `variant`; None if it has no such variant."""
    if variant == ORIGINAL:
        return file.content_type
    return next((v.content_type for v in file.variants if v.name == variant), None)


@attrs.frozen(kw_only=True)
class SignedQuery:
    exp: str = text(1, 20, "Expiry of the URL (Unix seconds), as signed.")
    disp: str = choice("inline", "attachment", description="Content-Disposition, as signed.")
    sig: str = text(1, 128, "The URL's signature.")


@table.route(
    "GET",
    "/files/{file_id}/{variant}",
    summary="Fetch a file by its signed URL",
    input=SignedQuery,
    responses={
        200: Content("application/octet-stream", "The file's bytes, with its own type."),
        206: Content("application/octet-stream", "The requested range of the file's bytes."),
    },
    errors={
        403: "The URL's signature is wrong (changed or forged) or it has expired.",
        404: "No such file or variant, or the file was deleted or is not served here.",
        416: "The Range is outside the file (see Content-Range).",
    },
    auth=False,
)
async def fetch_file(call: Call[SignedQuery], file_id: str, variant: str) -> Reply:
    """The URLs that `GET /api/v1/files/{file_id}/url` issues with local storage.

    The signature and expiry are checked first, then the file: a deleted
    file is never served, whatever URL was issued. `Range: bytes=a-b` gets
    206 (one range); the response is sent with the type checked at upload,
    `X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy.
    """
    files = call.services.files
    query = attrs.asdict(call.input)
    try:
        disposition = files.url_signer.verify(file_id, variant, query, now=time.time())
    except UrlRefused as refused:
        raise ApiError(403, "forbidden", str(refused)) from None
    file = await call.services.store.get_file(file_id)
    storage = files.storage
    if file is None or file.deleted_at is not None or file.state is not FileState.READY:
        raise not_found("no such file")
    content_type = _variant_type(file, variant)
    if content_type is None or not isinstance(storage, LocalStorage):
        raise not_found("no such file")
    key = variant_key(file_id, variant)
    try:
        size = await storage.size(key)
    except ObjectNotFound:
        raise not_found("no such file") from None
    headers = delivery_headers(file.name, content_type, disposition=disposition)
    headers |= {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
    start, stop, status = 0, size, 200
    wanted = parse_range_header(request.headers.get("Range"))
    if wanted is not None:
        bounds = wanted.range_for_length(size) if len(wanted.ranges) == 1 else None
        if bounds is None and len(wanted.ranges) == 1:
            raise ApiError(
                416,
                "range_not_satisfiable",
                "the range is outside the file",
                {"Content-Range": f"bytes */{size}"},
            )
        if bounds is not None:
            (start, stop), status = bounds, 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    return Reply(status, Streamed(_read(storage, key, start, stop), headers))


async def _read(storage: LocalStorage, key: str, start: int, stop: int) -> AsyncIterator[bytes]:
    async with storage.open_range(key, start, stop) as reader:
        async for chunk in reader:
            yield chunk
