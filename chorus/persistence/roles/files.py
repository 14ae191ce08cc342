"""Uploaded files: their rows through the pipeline, attaching them to messages, housekeeping.

A file's bytes live in the file storage; the store keeps what is known about
them and enforces the pipeline's state machine (`FILE_MOVES`), recording
every transition in `file_transitions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
import orjson

from .._errors import FileNotReady, Forbidden, NotFound
from .._model import (
    FILE_MOVES,
    FileChecks,
    FileState,
    FileVariant,
    Message,
    NewFile,
    StoredFile,
    new_id,
)
from .._rows import Row, bare
from .._sql import Engine, Tx, execute, fetch, fetch_one, fetch_value

FILE = (
    "f.id, f.owner_id, f.name, f.declared_type, f.content_type, f.size, f.sha256, f.state,"
    " f.reason, f.scan, f.width, f.height, f.variants, f.node, f.room_id, f.message_id,"
    " f.position, f.created_at, f.updated_at, f.deleted_at, f.encrypted"
)


class Files(Protocol):
    """Uploaded files and their pipeline states."""

    async def create_file(self, new: NewFile) -> StoredFile:
        """Record an upload as PENDING; `NotFound` if its owner does not exist."""
        ...

    async def get_file(self, file_id: str) -> StoredFile | None:
        """The file's row (deleted ones included: see `deleted_at`), or None."""
        ...

    async def move_file(
        self,
        file_id: str,
        state: FileState,
        now: int,
        *,
        reason: str | None = None,
        checks: FileChecks | None = None,
    ) -> StoredFile:
        """Move the file to `state`, recording the transition; returns the updated row.

        Only the moves in `FILE_MOVES` are allowed (`ValueError` otherwise, and
        for a file already moved past `state` by someone else: moves never
        go back). READY needs `checks` (what the pipeline found), REJECTED a
        `reason`. `NotFound` for an unknown file.
        """
        ...

    async def file_transitions(self, file_id: str) -> list[tuple[int, str, str | None]]:
        """The file's recorded transitions, oldest first: (at, state, reason); the states
        are `FileState` values and `deleted`."""
        ...

    async def bytes_stored(self, owner_id: str) -> int:
        """What counts against the owner's quota: sizes of their files not deleted nor rejected."""
        ...

    async def delete_file(self, file_id: str, now: int) -> StoredFile:
        """Mark the file deleted (delivery stops; housekeeping removes its bytes later).

        Idempotent: an already deleted file keeps its first `deleted_at`.
        `NotFound` for an unknown file. Callers check who may delete it.
        """
        ...

    async def unfinished_files(self, node: str) -> list[StoredFile]:
        """Files spooled by `node` still PENDING or SCANNING (not deleted), oldest first."""
        ...

    async def unattached_files(self, created_before: int, limit: int) -> list[StoredFile]:
        """Files never attached to a message, uploaded before `created_before`, not deleted."""
        ...

    async def expire_unattached(self, file_id: str, now: int) -> StoredFile | None:
        """Mark a file never attached deleted, recording a `deleted` transition (`unattached`).

        None, and nothing changed, if the file is unknown, attached meanwhile or
        already deleted: housekeeping on two nodes expires each file once, and a
        file attached between the sweep's query and this call is kept.
        """
        ...

    async def deleted_files(self, deleted_before: int, limit: int) -> list[StoredFile]:
        """Files deleted before `deleted_before` (their bytes may now be removed), oldest first."""
        ...

    async def remove_file(self, file_id: str) -> bool:
        """Forget the file's row and transitions (after its bytes are gone); False if unknown."""
        ...


class FilesOnSql(Engine):
    """`Files` for every engine."""

    async def create_file(self, new: NewFile) -> StoredFile:
        """See `Files.create_file`."""
        return await self._write(lambda: create_file(new))

    async def get_file(self, file_id: str) -> StoredFile | None:
        """See `Files.get_file`."""
        return await self._read(lambda: find_file(file_id))

    async def move_file(
        self,
        file_id: str,
        state: FileState,
        now: int,
        *,
        reason: str | None = None,
        checks: FileChecks | None = None,
    ) -> StoredFile:
        """See `Files.move_file`."""
        if state is FileState.READY and checks is None:
            raise ValueError("a file becomes ready only with the checks it passed")
        if state is FileState.REJECTED and not reason:
            raise ValueError("a file is rejected only with a reason")
        return await self._write(lambda: move_file(file_id, state, now, reason, checks))

    async def file_transitions(self, file_id: str) -> list[tuple[int, str, str | None]]:
        """See `Files.file_transitions`."""
        return await self._read(lambda: file_transitions(file_id))

    async def bytes_stored(self, owner_id: str) -> int:
        """See `Files.bytes_stored`."""
        return await self._read(lambda: bytes_stored(owner_id))

    async def delete_file(self, file_id: str, now: int) -> StoredFile:
        """See `Files.delete_file`."""
        return await self._write(lambda: delete_file(file_id, now))

    async def unfinished_files(self, node: str) -> list[StoredFile]:
        """See `Files.unfinished_files`."""
        return await self._read(lambda: unfinished_files(node))

    async def unattached_files(self, created_before: int, limit: int) -> list[StoredFile]:
        """See `Files.unattached_files`."""
        return await self._read(lambda: unattached_files(created_before, limit))

    async def expire_unattached(self, file_id: str, now: int) -> StoredFile | None:
        """See `Files.expire_unattached`."""
        return await self._write(lambda: expire_unattached(file_id, now))

    async def deleted_files(self, deleted_before: int, limit: int) -> list[StoredFile]:
        """See `Files.deleted_files`."""
        return await self._read(lambda: deleted_files(deleted_before, limit))

    async def remove_file(self, file_id: str) -> bool:
        """See `Files.remove_file`."""
        return await self._write(lambda: remove_file(file_id))


def stored_file(row: Row) -> StoredFile:
    """A `StoredFile` from the columns of `FILE`."""
    return StoredFile(
        id=row[0],
        owner_id=row[1],
        name=row[2],
        declared_type=row[3],
        content_type=row[4],
        size=row[5],
        sha256=row[6],
        state=FileState(row[7]),
        reason=row[8],
        scan=row[9],
        width=row[10],
        height=row[11],
        variants=tuple(FileVariant(**variant) for variant in orjson.loads(row[12])),
        node=row[13],
        room_id=row[14],
        message_id=row[15],
        position=row[16],
        created_at=row[17],
        updated_at=row[18],
        deleted_at=row[19],
        encrypted=bool(row[20]),
    )


def find_file(file_id: str) -> Tx[StoredFile | None]:
    row = yield from fetch_one(f"SELECT {FILE} FROM files f WHERE f.id = $1", file_id)
    return None if row is None else stored_file(row)


def _found(file: StoredFile | None, file_id: str) -> StoredFile:
    if file is None:
        raise NotFound(f"no file {file_id!r}")
    return file


def create_file(new: NewFile) -> Tx[StoredFile]:
    file_id = new_id("f")
    owner = yield from fetch_one("SELECT 1 FROM users WHERE id = $1", new.owner_id)
    if owner is None:
        raise NotFound(f"no user {new.owner_id!r}")
    yield from execute(
        "INSERT INTO files (id, owner_id, name, declared_type, size, sha256, state, node,"
        " created_at, updated_at, encrypted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
        file_id,
        new.owner_id,
        new.name,
        new.declared_type,
        new.size,
        new.sha256,
        FileState.PENDING.value,
        new.node,
        new.created_at,
        new.encrypted,
    )
    yield from _record(file_id, FileState.PENDING, new.created_at, None)
    return _found((yield from find_file(file_id)), file_id)


def _record(file_id: str, state: FileState, now: int, reason: str | None) -> Tx[None]:
    yield from execute(
        "INSERT INTO file_transitions (file_id, at, state, reason) VALUES ($1, $2, $3, $4)",
        file_id,
        now,
        state.value,
        reason,
    )


def move_file(
    file_id: str, state: FileState, now: int, reason: str | None, checks: FileChecks | None
) -> Tx[StoredFile]:
    row = yield from fetch_one("SELECT state FROM files WHERE id = $1 FOR NO KEY UPDATE", file_id)
    if row is None:
        raise NotFound(f"no file {file_id!r}")
    current = FileState(row[0])
    if (current, state) not in FILE_MOVES:
        raise ValueError(f"file {file_id!r} cannot move from {current.value} to {state.value}")
    if checks is None:
        yield from execute(
            "UPDATE files SET state = $2, reason = $3, updated_at = $4 WHERE id = $1",
            file_id,
            state.value,
            reason,
            now,
        )
    else:
        variants = [
            {
                "name": v.name,
                "width": v.width,
                "height": v.height,
                "size": v.size,
                "content_type": v.content_type,
            }
            for v in checks.variants
        ]
        yield from execute(
            "UPDATE files SET state = $2, reason = $3, updated_at = $4, content_type = $5,"
            " scan = $6, width = $7, height = $8, variants = $9 WHERE id = $1",
            file_id,
            state.value,
            reason,
            now,
            checks.content_type,
            checks.scan,
            checks.width,
            checks.height,
            orjson.dumps(variants).decode(),
        )
    yield from _record(file_id, state, now, reason)
    return _found((yield from find_file(file_id)), file_id)


def file_transitions(file_id: str) -> Tx[list[tuple[int, str, str | None]]]:
    rows = yield from fetch(
        "SELECT at, state, reason FROM file_transitions WHERE file_id = $1 ORDER BY at", file_id
    )
    return [(row[0], row[1], row[2]) for row in rows]


def bytes_stored(owner_id: str) -> Tx[int]:
    total = yield from fetch_value(
        "SELECT COALESCE(SUM(size), 0) FROM files"
        " WHERE owner_id = $1 AND deleted_at IS NULL AND state <> $2",
        owner_id,
        FileState.REJECTED.value,
    )
    return int(total)


def delete_file(file_id: str, now: int) -> Tx[StoredFile]:
    yield from execute(
        "UPDATE files SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
        file_id,
        now,
    )
    return _found((yield from find_file(file_id)), file_id)


def _files_where(condition: str, *args: object) -> Tx[list[StoredFile]]:
    """The files matching `condition` (its `$n` are `args`), in the order it ends with."""
    rows = yield from fetch(f"SELECT {FILE} FROM files f WHERE {condition}", *args)
    return [stored_file(row) for row in rows]


def unfinished_files(node: str) -> Tx[list[StoredFile]]:
    return _files_where(
        "f.node = $1 AND f.state IN ($2, $3) AND f.deleted_at IS NULL ORDER BY f.id",
        node,
        FileState.PENDING.value,
        FileState.SCANNING.value,
    )


def unattached_files(created_before: int, limit: int) -> Tx[list[StoredFile]]:
    return _files_where(
        "f.message_id IS NULL AND f.created_at < $1 AND f.deleted_at IS NULL"
        " ORDER BY f.created_at LIMIT $2",
        created_before,
        limit,
    )


DELETED = "deleted"
"""The `file_transitions` state of a file's deletion (not a `FileState`: the row keeps its
state, `deleted_at` says it is gone)."""
UNATTACHED = "unattached"
"""Reason of the deletion of an upload never attached within `files_unattached_ttl`."""


def expire_unattached(file_id: str, now: int) -> Tx[StoredFile | None]:
    row = yield from fetch_one(
        "UPDATE files SET deleted_at = $2, updated_at = $2"
        f" WHERE id = $1 AND message_id IS NULL AND deleted_at IS NULL RETURNING {bare(FILE)}",
        file_id,
        now,
    )
    if row is None:
        return None
    yield from execute(
        "INSERT INTO file_transitions (file_id, at, state, reason) VALUES ($1, $2, $3, $4)",
        file_id,
        now,
        DELETED,
        UNATTACHED,
    )
    return stored_file(row)


def deleted_files(deleted_before: int, limit: int) -> Tx[list[StoredFile]]:
    return _files_where(
        "f.deleted_at IS NOT NULL AND f.deleted_at < $1 ORDER BY f.deleted_at LIMIT $2",
        deleted_before,
        limit,
    )


def remove_file(file_id: str) -> Tx[bool]:
    rows = yield from fetch("DELETE FROM files WHERE id = $1 RETURNING 1", file_id)
    return bool(rows)


def attach_files(
    room_id: str, message_id: str, sender_id: str, file_ids: Sequence[str], now: int
) -> Tx[tuple[StoredFile, ...]]:
    """Attach files to a message being appended, in the append's transaction.

    Each must belong to the sender, be READY, not deleted, and not attached
    yet; otherwise `Forbidden` saying which file and why (`FileNotReady` when
    it is still being checked), which rolls the append back.
    """
    attached = []
    for position, file_id in enumerate(file_ids):
        row = yield from fetch_one(
            "UPDATE files SET room_id = $2, message_id = $3, position = $4, updated_at = $5"
            " WHERE id = $1 AND owner_id = $6 AND state = $7 AND message_id IS NULL"
            f" AND deleted_at IS NULL RETURNING {bare(FILE)}",
            file_id,
            room_id,
            message_id,
            position,
            now,
            sender_id,
            FileState.READY.value,
        )
        if row is None:
            file = yield from find_file(file_id)
            raise attach_refusal(file_id, sender_id, file)
        attached.append(stored_file(row))
    return tuple(attached)


def attach_refusal(file_id: str, sender_id: str, file: StoredFile | None) -> Forbidden:
    """Why `sender_id` cannot attach the file `file_id` (whose row is `file`, if any).

    Another user's file is refused like a missing one: a refusal never tells
    whether someone else's file exists.
    """
    cannot = f"file {file_id!r} cannot be attached"
    if file is None or file.owner_id != sender_id:
        return Forbidden(f"{cannot}: it is not a file you uploaded")
    if file.deleted_at is not None:
        return Forbidden(f"{cannot}: it was deleted")
    if file.message_id is not None:
        return Forbidden(f"{cannot}: it is attached to a message already")
    if file.state is FileState.REJECTED:
        return Forbidden(f"{cannot}: it was rejected ({file.reason})")
    return FileNotReady(
        f"file {file_id!r} is not ready yet ({file.state.value}):"
        " send again once its file frame says ready"
    )


def delete_files_of_message(message_id: str, now: int) -> Tx[None]:
    """Mark the files attached to a message deleted (with the message, in its transaction)."""
    yield from execute(
        "UPDATE files SET deleted_at = $2, updated_at = $2"
        " WHERE message_id = $1 AND deleted_at IS NULL",
        message_id,
        now,
    )


def with_attachments(events: list[Message]) -> Tx[list[Message]]:
    """`events` with the files attached to each (not deleted), in order: one query for all."""
    if not events:
        return events
    rows = yield from fetch(
        f"SELECT {FILE} FROM files f WHERE f.message_id = ANY($1) AND f.deleted_at IS NULL"
        " ORDER BY f.message_id, f.position",
        [event.id for event in events],
    )
    if not rows:
        return events
    attached: dict[str, list[StoredFile]] = {}
    for row in rows:
        file = stored_file(row)
        attached.setdefault(file.message_id or "", []).append(file)
    return [
        attrs.evolve(event, attachments=tuple(attached[event.id]))
        if event.id in attached
        else event
        for event in events
    ]
