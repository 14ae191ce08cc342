"""Store contract: uploaded files through the pipeline, attached to messages (any backend)."""

from __future__ import annotations

import re

import pytest

from chorus.persistence import (
    FILE_MOVES,
    FileChecks,
    FileNotReady,
    FileState,
    FileVariant,
    Forbidden,
    NewFile,
    NewMessage,
    NotFound,
    Standing,
    Store,
    StoredFile,
    User,
)
from tests.persistence.helpers import T0, make_room, make_user

CHECKED = FileChecks(
    content_type="image/png",
    scan="clean",
    width=640,
    height=480,
    variants=(FileVariant(name="320", width=320, height=240, size=900, content_type="image/png"),),
)


async def upload(store: Store, owner: User, *, size: int = 1000, at: int = T0) -> StoredFile:
    new = NewFile(
        owner_id=owner.id,
        name="cat.png",
        declared_type="image/png",
        size=size,
        sha256="ab" * 32,
        node="node-1",
        created_at=at,
    )
    return await store.create_file(new)


async def ready(store: Store, owner: User, *, size: int = 1000) -> StoredFile:
    file = await upload(store, owner, size=size)
    await store.move_file(file.id, FileState.SCANNING, T0 + 1)
    return await store.move_file(file.id, FileState.READY, T0 + 2, checks=CHECKED)


def with_files(sender: User, client_id: str, *file_ids: str) -> NewMessage:
    return NewMessage(
        sender_id=sender.id, body="look", client_id=client_id, created_at=T0, attachments=file_ids
    )


async def test_an_upload_starts_pending_and_becomes_ready_with_what_the_checks_found(
    store: Store,
) -> None:
    ada = await make_user(store, "ada")
    file = await upload(store, ada)
    assert file.id.startswith("f_")
    assert (file.state, file.owner_id, file.name, file.size) == (
        FileState.PENDING,
        ada.id,
        "cat.png",
        1000,
    )
    assert (file.content_type, file.scan, file.variants, file.message_id) == (None, None, (), None)
    scanning = await store.move_file(file.id, FileState.SCANNING, T0 + 1)
    assert scanning.state is FileState.SCANNING
    done = await store.move_file(file.id, FileState.READY, T0 + 2, checks=CHECKED)
    assert (done.state, done.content_type, done.scan) == (FileState.READY, "image/png", "clean")
    assert (done.width, done.height, done.variants) == (640, 480, CHECKED.variants)
    assert done.updated_at == T0 + 2
    assert await store.get_file(file.id) == done


async def test_only_the_pipelines_moves_are_allowed_and_never_backwards(store: Store) -> None:
    ada = await make_user(store, "ada")
    states = list(FileState)
    for source in states:
        for target in states:
            file = await upload(store, ada)
            if source is FileState.SCANNING or source is FileState.READY:
                await store.move_file(file.id, FileState.SCANNING, T0)
            if source is FileState.READY:
                await store.move_file(file.id, FileState.READY, T0, checks=CHECKED)
            if source is FileState.REJECTED:
                await store.move_file(file.id, FileState.REJECTED, T0, reason="infected")
            move = store.move_file(file.id, target, T0 + 5, reason="infected", checks=CHECKED)
            if (source, target) in FILE_MOVES:
                assert (await move).state is target
            else:
                with pytest.raises(ValueError, match="cannot move"):
                    await move


async def test_a_rejection_needs_a_reason_and_ready_needs_the_checks(store: Store) -> None:
    ada = await make_user(store, "ada")
    file = await upload(store, ada)
    with pytest.raises(ValueError, match="reason"):
        await store.move_file(file.id, FileState.REJECTED, T0)
    await store.move_file(file.id, FileState.SCANNING, T0)
    with pytest.raises(ValueError, match="checks"):
        await store.move_file(file.id, FileState.READY, T0)
    rejected = await store.move_file(file.id, FileState.REJECTED, T0, reason="infected")
    assert (rejected.state, rejected.reason) == (FileState.REJECTED, "infected")


async def test_unknown_files_and_owners_are_not_found(store: Store) -> None:
    ada = await make_user(store, "ada")
    assert await store.get_file("f_nothing") is None
    with pytest.raises(NotFound):
        await store.move_file("f_nothing", FileState.SCANNING, T0)
    with pytest.raises(NotFound):
        await store.delete_file("f_nothing", T0)
    with pytest.raises(NotFound):
        await store.create_file(
            NewFile(
                owner_id="u_nobody",
                name="x",
                declared_type="text/plain",
                size=1,
                sha256="00",
                node="n",
                created_at=T0,
            )
        )
    assert not await store.remove_file("f_nothing")
    assert await store.bytes_stored(ada.id) == 0


async def test_the_quota_counts_files_neither_deleted_nor_rejected(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    await ready(store, ada, size=100)
    pending = await upload(store, ada, size=20)
    rejected = await upload(store, ada, size=4000)
    await store.move_file(rejected.id, FileState.REJECTED, T0, reason="type_not_allowed")
    deleted = await ready(store, ada, size=5000)
    await store.delete_file(deleted.id, T0 + 9)
    await upload(store, bob, size=7)
    assert await store.bytes_stored(ada.id) == 100 + pending.size


async def test_a_message_attaches_ready_files_of_its_sender_in_order(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    first, second = await ready(store, ada), await ready(store, ada)
    [appended] = await store.append_messages(room.id, [with_files(ada, "c1", second.id, first.id)])
    attached = appended.message.attachments
    assert [f.id for f in attached] == [second.id, first.id]
    assert [(f.room_id, f.message_id, f.position) for f in attached] == [
        (room.id, appended.message.id, 0),
        (room.id, appended.message.id, 1),
    ]
    stored = await store.get_file(first.id)
    assert stored is not None
    assert (stored.message_id, stored.position) == (appended.message.id, 1)


async def test_a_file_is_attached_once_only_by_its_uploader_only_when_ready(store: Store) -> None:
    ada, bob = await make_user(store, "ada"), await make_user(store, "bob")
    room = await make_room(store, ada)
    mine = await ready(store, ada)
    pending = await upload(store, ada)
    deleted = await ready(store, ada)
    await store.delete_file(deleted.id, T0)
    for sender, client_id, file_id, refusal, why in [
        (bob, "b1", mine.id, Forbidden, "it is not a file you uploaded"),
        (ada, "a1", pending.id, FileNotReady, "is not ready yet (pending)"),
        (ada, "a2", deleted.id, Forbidden, "it was deleted"),
        (ada, "a3", "f_nothing", Forbidden, "it is not a file you uploaded"),
    ]:
        with pytest.raises(refusal, match=re.escape(f"file {file_id!r} ") + ".*" + re.escape(why)):
            await store.append_messages(room.id, [with_files(sender, client_id, file_id)])
    assert await store.last_seq(room.id) == 0  # each refused append stored nothing
    await store.append_messages(room.id, [with_files(ada, "a4", mine.id)])
    with pytest.raises(Forbidden, match=r"it is attached to a message already$"):
        await store.append_messages(room.id, [with_files(ada, "a5", mine.id)])
    # A retry of the same send is the original, attachments and all, not a second attach.
    [again] = await store.append_messages(room.id, [with_files(ada, "a4", mine.id)])
    assert again.duplicate


async def test_deleting_a_message_deletes_its_files(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    file = await ready(store, ada)
    [appended] = await store.append_messages(room.id, [with_files(ada, "c1", file.id)])
    await store.delete_message(appended.message.id, ada.id, "d1", T0 + 50)
    stored = await store.get_file(file.id)
    assert stored is not None
    assert stored.deleted_at == T0 + 50
    assert await store.deleted_files(T0 + 51, 10) == [stored]
    assert await store.deleted_files(T0 + 50, 10) == []


async def test_housekeeping_finds_unattached_and_unfinished_files(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    old = await ready(store, ada)
    attached = await ready(store, ada)
    await store.append_messages(room.id, [with_files(ada, "c1", attached.id)])
    recent = await upload(store, ada, at=T0 + 100)
    assert [f.id for f in await store.unattached_files(T0 + 50, 10)] == [old.id]
    assert [f.id for f in await store.unfinished_files("node-1")] == [recent.id]
    assert await store.unfinished_files("node-2") == []
    first = await store.delete_file(old.id, T0 + 60)
    assert (await store.delete_file(old.id, T0 + 70)).deleted_at == first.deleted_at == T0 + 60
    assert await store.unattached_files(T0 + 50, 10) == []
    assert await store.remove_file(old.id)
    assert await store.get_file(old.id) is None


def admit_all(user_id: str, found: Standing | None) -> Exception | None:
    return None


async def test_every_read_of_a_message_carries_its_attachments(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    file = await ready(store, ada)
    [appended] = await store.append_messages(room.id, [with_files(ada, "c1", file.id)])
    attached = appended.message.attachments
    assert [f.id for f in attached] == [file.id]
    found = await store.get_message(appended.message.id)
    assert found is not None
    assert found.attachments == attached
    [listed] = await store.messages(room.id, limit=10)
    assert listed.attachments == attached
    [hit] = await store.search(ada.id, "look", limit=10)
    assert hit.message.attachments == attached
    # As another node's append reads it back, having known the room up to seq 0.
    later = await store.append_admitted(room.id, [with_files(ada, "c2")], admit_all, T0, known=0)
    assert [m.attachments for m in later.earlier] == [attached]
    [again] = await store.append_messages(room.id, [with_files(ada, "c1", file.id)])
    assert again.duplicate
    assert again.message.attachments == attached


async def test_a_deleted_message_shows_no_attachments(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    file = await ready(store, ada)
    [appended] = await store.append_messages(room.id, [with_files(ada, "c1", file.id)])
    await store.delete_message(appended.message.id, ada.id, "d1", T0 + 1)
    found = await store.get_message(appended.message.id)
    assert found is not None
    assert found.attachments == ()


async def test_an_unattached_file_expires_once_with_a_recorded_transition(store: Store) -> None:
    ada = await make_user(store, "ada")
    room = await make_room(store, ada)
    old = await ready(store, ada)
    attached = await ready(store, ada)
    await store.append_messages(room.id, [with_files(ada, "c1", attached.id)])
    expired = await store.expire_unattached(old.id, T0 + 60)
    assert expired is not None
    assert (expired.id, expired.deleted_at) == (old.id, T0 + 60)
    # Again, or from a second node: nothing changes, the first deletion stays.
    assert await store.expire_unattached(old.id, T0 + 70) is None
    stored = await store.get_file(old.id)
    assert stored is not None
    assert stored.deleted_at == T0 + 60
    assert await store.file_transitions(old.id) == [
        (T0, "pending", None),
        (T0 + 1, "scanning", None),
        (T0 + 2, "ready", None),
        (T0 + 60, "deleted", "unattached"),
    ]
    # Attached meanwhile (after the sweep's query): kept.
    assert await store.expire_unattached(attached.id, T0 + 60) is None
    kept = await store.get_file(attached.id)
    assert kept is not None
    assert kept.deleted_at is None
    assert await store.expire_unattached("f_nothing", T0) is None
