"""Encrypted DMs between SDK instances on a real node: the SDK does it all transparently.

Every test runs real `E2EClient`s (vodozemac) against a real node; the
server's lies (an injected device, a tampered or replayed ciphertext) are
made by changing what it stores, never by mocking it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path

import attrs

from chorus import protocol
from chorus.backup import DATABASE_FILE
from chorus.client import Event, HttpApi
from chorus.client.e2e import CryptoMachine, E2EClient, Secured, Trust
from chorus.client.e2e._client import ONE_TIME_KEYS
from chorus.client.e2e._wire import b64decode, b64encode
from tests.e2e.node import RunningNode, open_node
from tests.e2e.secure import PASSPHRASE, PASSWORD, SecureUser, connected, secure_user
from tests.polling import until


def _opened(kind: type[protocol.EditedEvent | protocol.ReactionEvent]) -> Callable[[Event], bool]:
    """Finds an opened event of this kind."""
    return lambda e: isinstance(e, Secured) and isinstance(e.event, kind) and e.problem is None


@asynccontextmanager
async def ada_and_bob(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, SecureUser, SecureUser]]:
    """A node, and ada and bob connected with encryption on."""
    async with (
        open_node(tmp_path / "node") as node,
        secure_user(node.http_url, node.gateway_url, tmp_path / "ada.keys") as ada,
        secure_user(node.http_url, node.gateway_url, tmp_path / "bob.keys", "bob") as bob,
    ):
        yield node, ada, bob


@asynccontextmanager
async def ada_and_offline_bob(
    tmp_path: Path,
) -> AsyncIterator[tuple[RunningNode, SecureUser, HttpApi, E2EClient]]:
    """A node, ada connected with encryption, and bob with a registered device, offline."""
    async with (
        open_node(tmp_path / "node") as node,
        secure_user(node.http_url, node.gateway_url, tmp_path / "ada.keys") as ada,
        HttpApi(node.http_url) as bob_api,
    ):
        await bob_api.register("bob", PASSWORD)
        bob_e2e = await E2EClient.open(bob_api, tmp_path / "bob.keys", PASSPHRASE)
        yield node, ada, bob_api, bob_e2e


async def test_two_sdk_instances_exchange_messages_edits_reactions_and_thread_replies(
    tmp_path: Path,
) -> None:
    async with ada_and_bob(tmp_path) as (_node, ada, bob):
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        assert dm.encrypted
        await ada.client.join(dm.id)  # bob's client follows the room by itself
        sent = await ada.client.send(dm.id, "hello bob")
        assert sent.body == ""
        assert sent.encrypted is not None
        got = await bob.wait_for_text(dm.id, "hello bob")
        assert got.trust is Trust.UNVERIFIED
        assert got.sender_device == ada.e2e.device_id
        await bob.client.send(dm.id, "hi ada", thread=sent.id)
        reply = await ada.wait_for_text(dm.id, "hi ada")
        assert isinstance(reply.event, protocol.MessageEvent)
        assert reply.event.message.thread == sent.id
        await ada.client.edit(dm.id, sent.id, "hello bob, edited")
        edited = await bob.wait_for(_opened(protocol.EditedEvent))
        assert isinstance(edited, Secured)
        assert isinstance(edited.event, protocol.EditedEvent)
        assert (edited.event.message, edited.event.body) == (sent.id, "hello bob, edited")
        await bob.client.react(dm.id, sent.id, "👍")
        reacted = await ada.wait_for(_opened(protocol.ReactionEvent))
        assert isinstance(reacted, Secured)
        assert isinstance(reacted.event, protocol.ReactionEvent)
        assert (reacted.event.message, reacted.event.emoji, reacted.event.user) == (
            sent.id,
            "👍",
            bob.id,
        )
        # What the server hands out is ciphertext; the SDK opens history the same way.
        history = await bob.api.events(dm.id)
        assert all(e.message.body == "" for e in history if isinstance(e, protocol.MessageEvent))
        opened = [await bob.e2e.open_event(e) for e in history]
        texts = [
            o.event.message.body
            for o in opened
            if isinstance(o, Secured) and isinstance(o.event, protocol.MessageEvent)
        ]
        assert texts[:2] == ["hello bob, edited", "hi ada"]  # a message shows its latest edit


async def test_verification_codes_match_and_mark_the_peer_verified(tmp_path: Path) -> None:
    async with ada_and_bob(tmp_path) as (_node, ada, bob):
        [seen_by_ada] = await ada.e2e.devices(bob.id)
        [seen_by_bob] = await bob.e2e.devices(ada.id)
        assert seen_by_ada.code == seen_by_bob.code  # what the two people compare
        assert seen_by_ada.trust is Trust.UNVERIFIED
        await ada.e2e.mark_verified(seen_by_ada.device)
        dm = await bob.api.direct_room(ada.id, encrypted=True)
        await bob.client.join(dm.id)
        await bob.client.send(dm.id, "it is me")
        assert (await ada.wait_for_text(dm.id, "it is me")).trust is Trust.VERIFIED
        [again] = await ada.e2e.devices(bob.id)
        assert again.trust is Trust.VERIFIED  # kept in the key file


async def test_a_device_added_mid_conversation_reads_what_follows_not_what_came_before(
    tmp_path: Path,
) -> None:
    async with ada_and_bob(tmp_path) as (node, ada, bob):
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        await ada.client.join(dm.id)
        before = await ada.client.send(dm.id, "before the laptop")
        await bob.wait_for_text(dm.id, "before the laptop")
        async with secure_user(
            node.http_url, node.gateway_url, tmp_path / "bob2.keys", "bob", existing=True
        ) as laptop:
            assert laptop.e2e.device_id != bob.e2e.device_id
            await laptop.client.join(dm.id)
            await ada.client.send(dm.id, "after the laptop")
            for device in (bob, laptop):
                await device.wait_for_text(dm.id, "after the laptop")
            # The laptop cannot open what was sent before it existed (docs/e2e.md).
            [old] = [
                e
                for e in await laptop.api.events(dm.id)
                if isinstance(e, protocol.MessageEvent) and e.message.id == before.id
            ]
            refused = await laptop.e2e.open_event(old)
            assert isinstance(refused, Secured)
            assert refused.problem == "no_session"
            # Bob's own messages reach his other device too.
            await laptop.client.send(dm.id, "from the laptop")
            for reader in (ada, bob):
                await reader.wait_for_text(dm.id, "from the laptop")


async def test_the_fallback_key_is_used_once_one_time_keys_are_exhausted(tmp_path: Path) -> None:
    async with (
        ada_and_offline_bob(tmp_path) as (node, ada, bob_api, bob_e2e),
        HttpApi(node.http_url) as carol_api,
        HttpApi(node.http_url) as dave_api,
    ):
        await carol_api.register("carol", PASSWORD)
        await dave_api.register("dave", PASSWORD)
        device = (bob_api.user.id, bob_e2e.device_id)
        # Bob is offline: nobody tops his keys up while carol and dave take them all
        # (two of them: claims are rate limited per user).
        claimed = []
        for claimer in (carol_api, dave_api):
            claimed += [await claimer.claim_keys([device]) for _ in range(30)]
        assert [c[0]["fallback"] for c in claimed].count(False) == ONE_TIME_KEYS
        assert claimed[-1][0]["fallback"] is True
        dm = await ada.api.direct_room(bob_api.user.id, encrypted=True)
        await ada.client.join(dm.id)
        await ada.client.send(dm.id, "via the fallback key")
        async with connected(bob_api, bob_e2e, node.gateway_url):
            [message] = await bob_api.events(dm.id)
            opened = await bob_e2e.open_event(message)
            assert isinstance(opened, Secured)
            assert isinstance(opened.event, protocol.MessageEvent)
            assert opened.event.message.body == "via the fallback key"

            async def topped_up() -> bool:  # by the client, told how many are left
                return (await bob_api.key_counts(bob_e2e.device_id))[0] >= ONE_TIME_KEYS

            await until(topped_up, timeout=15)


def _sql(node_dir: Path, statement: str, *args: object) -> None:
    """Change the node's database behind its back (as a compromised server would)."""
    with closing(sqlite3.connect(node_dir / DATABASE_FILE, timeout=10)) as db, db:
        db.execute(statement, args)


async def test_a_device_the_server_injects_into_the_directory_is_flagged_unverified(
    tmp_path: Path,
) -> None:
    async with ada_and_bob(tmp_path) as (node, ada, bob), HttpApi(node.http_url) as stolen:
        [real] = await ada.e2e.devices(bob.id)
        await ada.e2e.mark_verified(real.device)
        # The server makes up a device for bob, self-signed by keys it holds.
        await stolen.login("bob", PASSWORD)
        assert stolen.session is not None
        evil = CryptoMachine.create(bob.id, "EVIL")
        keys = evil.device_keys()
        _sql(
            tmp_path / "node",
            "INSERT INTO devices VALUES (?, 'EVIL', ?, 'phone', ?, ?, ?, ?, 0)",
            bob.id,
            stolen.session.session_id,
            json.dumps(keys["algorithms"]),
            keys["keys"]["curve25519"],
            keys["keys"]["ed25519"],
            keys["signature"],
        )
        trust = {s.device.device_id: s.trust for s in await ada.e2e.devices(bob.id)}
        assert trust == {bob.e2e.device_id: Trust.VERIFIED, "EVIL": Trust.UNVERIFIED}
        # It published no keys: messages still go, to bob's real device only.
        dm = await ada.api.direct_room(bob.id, encrypted=True)
        await ada.client.join(dm.id)
        await ada.client.send(dm.id, "for bob's phone")
        assert (await bob.wait_for_text(dm.id, "for bob's phone")).trust is Trust.UNVERIFIED


async def test_a_to_device_message_the_server_replays_is_ignored(tmp_path: Path) -> None:
    async with ada_and_offline_bob(tmp_path) as (node, ada, bob_api, bob_e2e):
        [bob_device] = [s.device for s in await ada.e2e.devices(bob_api.user.id)]
        [claimed] = await ada.api.claim_keys([bob_device.key])
        ada.e2e.machine.start_session(bob_device, claimed)
        envelope = ada.e2e.machine.encrypt_to_device(bob_device, {"type": "m.dummy"})
        message = {"user_id": bob_api.user.id, "device_id": bob_device.device_id}
        await ada.api.send_to_device(
            ada.e2e.device_id, [{**message, "message_id": "once", "content": envelope}]
        )
        # The server queues the same ciphertext again, under a new id.
        _sql(
            tmp_path / "node",
            "INSERT INTO to_device_messages SELECT 't_replayed', user_id, device_id, sender_id,"
            " sender_device, 'again', content, sent_at + 1, expires_at FROM to_device_messages",
        )
        assert len(await bob_api.fetch_to_device(bob_device.device_id)) == 2
        async with connected(bob_api, bob_e2e, node.gateway_url) as bob:

            async def all_processed() -> bool:  # both acknowledged
                return not await bob_api.fetch_to_device(bob_device.device_id)

            await until(all_processed, timeout=15)
        assert bob_e2e.machine.has_session(ada.e2e.machine.own_device)  # the first was opened
        assert bob.problems() == []  # the copy was ignored, not reported as tampered


async def test_a_ciphertext_the_server_alters_is_refused_and_reported(tmp_path: Path) -> None:
    async with ada_and_offline_bob(tmp_path) as (_, ada, bob_api, bob):
        dm = await ada.api.direct_room(bob_api.user.id, encrypted=True)
        await ada.client.join(dm.id)
        await ada.client.send(dm.id, "genuine")
        altered = await ada.client.send(dm.id, "to be altered")
        assert altered.encrypted is not None
        # The server flips one bit of the stored ciphertext (an envelope is its body).
        raw = bytearray(b64decode(altered.encrypted.ciphertext))
        raw[len(raw) // 2] ^= 0x01
        envelope = attrs.evolve(altered.encrypted, ciphertext=b64encode(bytes(raw)))
        stored = json.dumps(attrs.asdict(envelope))
        _sql(tmp_path / "node", "UPDATE messages SET body = ? WHERE id = ?", stored, altered.id)
        opened = [await bob.open_event(event) for event in await bob_api.events(dm.id)]
        secured = [o for o in opened if isinstance(o, Secured)]
        assert len(secured) == len(opened) == 2
        [genuine, refused] = secured
        assert isinstance(genuine.event, protocol.MessageEvent)
        assert genuine.event.message.body == "genuine"
        assert refused.problem == "tampered"
        assert refused.trust is None
        assert isinstance(refused.event, protocol.MessageEvent)
        assert refused.event.message.id == altered.id


async def test_one_time_keys_are_topped_up_when_the_server_says_they_run_low(
    tmp_path: Path,
) -> None:
    async with (
        open_node(tmp_path / "node") as node,
        secure_user(node.http_url, node.gateway_url, tmp_path / "bob.keys") as bob,
        HttpApi(node.http_url) as carol,
    ):
        await carol.register("carol", PASSWORD)
        device = (bob.id, bob.e2e.device_id)
        assert (await bob.api.key_counts(bob.e2e.device_id))[0] == ONE_TIME_KEYS
        for _ in range(ONE_TIME_KEYS - 5):  # past the server's low-water mark (10)
            await carol.claim_keys([device])

        async def topped_up() -> bool:  # by bob's client, told by `one_time_keys_low`
            # Not left at 5: carol may still have claimed a few after the top-up began.
            return (await bob.api.key_counts(bob.e2e.device_id))[0] >= ONE_TIME_KEYS - 10

        await until(topped_up, timeout=15)


async def test_an_encrypted_group_dm_reaches_every_member(tmp_path: Path) -> None:
    async with (
        ada_and_bob(tmp_path) as (node, ada, bob),
        secure_user(node.http_url, node.gateway_url, tmp_path / "carol.keys") as carol,
    ):
        group = await ada.api.group_room([bob.id, carol.id], encrypted=True)
        assert group.encrypted
        await ada.client.join(group.id)
        await ada.client.send(group.id, "hello both")
        for reader in (bob, carol):
            await reader.wait_for_text(group.id, "hello both")
        await carol.client.send(group.id, "hi from carol")
        for reader in (ada, bob):
            await reader.wait_for_text(group.id, "hi from carol")


async def test_a_device_signing_in_again_with_its_key_file_keeps_its_sessions(
    tmp_path: Path,
) -> None:
    async with (
        open_node(tmp_path / "node") as node,
        secure_user(node.http_url, node.gateway_url, tmp_path / "ada.keys") as ada,
    ):
        keys = tmp_path / "bob.keys"
        async with secure_user(node.http_url, node.gateway_url, keys, "bob") as bob:
            dm = await ada.api.direct_room(bob.id, encrypted=True)
            await ada.client.join(dm.id)
            await ada.client.send(dm.id, "before the restart")
            await bob.wait_for_text(dm.id, "before the restart")
            device_id = bob.e2e.device_id
        # Bob's program ends; later he signs in again (another session) with his key file.
        async with secure_user(
            node.http_url, node.gateway_url, keys, "bob", existing=True
        ) as again:
            assert again.e2e.device_id == device_id  # the same device, from the key file
            await again.client.join(dm.id)
            await ada.client.send(dm.id, "after the restart")
            await again.wait_for_text(dm.id, "after the restart")
            history = [await again.e2e.open_event(e) for e in await again.api.events(dm.id)]
            texts = [
                h.event.message.body
                for h in history
                if isinstance(h, Secured) and isinstance(h.event, protocol.MessageEvent)
            ]
            assert texts == ["before the restart", "after the restart"]
