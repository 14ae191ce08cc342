"""Olm and Megolm between in-process `CryptoMachine`s: no server, the tests relay the bytes."""

from __future__ import annotations

import copy

import pytest

from chorus.client.e2e import CryptoMachine, DecryptionError, RotationPolicy, Trust
from chorus.client.e2e._wire import b64decode, b64encode

from .crypto_peers import claim, introduce, listing, relay, share_room_keys

ROOM = "r_dm"


def _machines() -> tuple[CryptoMachine, CryptoMachine]:
    alice, bob = CryptoMachine.create("u_alice", "ALAPTOP"), CryptoMachine.create("u_bob", "BPHONE")
    introduce(alice, bob)
    introduce(bob, alice)
    return alice, bob


def test_two_devices_exchange_room_messages_and_replies() -> None:
    alice, bob = _machines()
    share_room_keys(alice, ROOM, bob)
    envelope = alice.encrypt_room(ROOM, {"type": "m.text", "body": "hello bob"})
    assert "hello bob" not in str(envelope)
    got = bob.decrypt_room(ROOM, "u_alice", envelope, "m_1")
    assert got.content == {"type": "m.text", "body": "hello bob"}
    assert (got.sender, got.sender_device, got.trust) == ("u_alice", "ALAPTOP", Trust.UNVERIFIED)
    # Alice reads her own message (its echo, or history) with the same session.
    assert alice.decrypt_room(ROOM, "u_alice", envelope, "m_1").trust is Trust.OWN
    # Bob answers over the Olm session Alice's pre-key message opened (no key claimed).
    assert bob.has_session(alice.own_device)
    share_room_keys(bob, ROOM, alice)
    reply = bob.encrypt_room(ROOM, {"type": "m.text", "body": "hi alice"})
    assert alice.decrypt_room(ROOM, "u_bob", reply, "m_2").content["body"] == "hi alice"


def test_verification_marks_a_device_trusted_and_both_sides_see_the_same_code() -> None:
    alice, bob = _machines()
    code = alice.verification_code(bob.own_device)
    assert code == bob.verification_code(alice.own_device)
    assert len(code.emoji) == 7
    assert len(code.safety_number.split()) == 12
    alice.mark_verified(bob.own_device)
    share_room_keys(bob, ROOM, alice)
    envelope = bob.encrypt_room(ROOM, {"type": "m.text", "body": "verified me"})
    assert alice.decrypt_room(ROOM, "u_bob", envelope, "m_1").trust is Trust.VERIFIED
    # Another device under Bob's name (the server lying) gets another code.
    impostor = CryptoMachine.create("u_bob", "BPHONE")
    assert alice.verification_code(impostor.own_device) != code


def test_a_device_injected_into_the_directory_is_flagged_unverified() -> None:
    alice, bob = _machines()
    alice.mark_verified(bob.own_device)
    injected = CryptoMachine.create("u_bob", "EVIL")
    added = alice.update_devices("u_bob", [listing(bob), listing(injected)])
    assert [d.device_id for d in added] == ["EVIL"]
    trust = {d.device_id: alice.trust(d) for d in alice.devices_of("u_bob")}
    assert trust == {"BPHONE": Trust.VERIFIED, "EVIL": Trust.UNVERIFIED}
    # What the injected device sends is flagged as such.
    share_room_keys(injected, ROOM, alice)
    envelope = injected.encrypt_room(ROOM, {"type": "m.text", "body": "trust me"})
    assert alice.decrypt_room(ROOM, "u_bob", envelope, "m_1").trust is Trust.UNVERIFIED


def test_a_sender_missing_from_the_directory_is_unknown() -> None:
    alice, _bob = _machines()
    hidden = CryptoMachine.create("u_bob", "HIDDEN")  # never listed to Alice
    introduce(hidden, alice)
    received = share_room_keys(hidden, ROOM, alice)
    assert received[0].trust is Trust.UNKNOWN
    envelope = hidden.encrypt_room(ROOM, {"type": "m.text", "body": "psst"})
    assert alice.decrypt_room(ROOM, "u_bob", envelope, "m_1").trust is Trust.UNKNOWN


def test_directory_entries_with_bad_signatures_or_other_owners_are_dropped() -> None:
    alice, bob = _machines()
    forged = listing(CryptoMachine.create("u_bob", "FORGED"))
    forged["keys"] = {**forged["keys"], "curve25519": bob.curve25519}  # altered after signing
    foreign = listing(CryptoMachine.create("u_carol", "CAROL"))  # listed under the wrong user
    assert alice.update_devices("u_bob", [listing(bob), forged, foreign]) == ()
    assert [d.device_id for d in alice.devices_of("u_bob")] == ["BPHONE"]


def test_the_fallback_key_opens_sessions_when_one_time_keys_are_exhausted() -> None:
    alice, bob = _machines()
    carol = CryptoMachine.create("u_carol", "CAROL")
    introduce(carol, bob)
    introduce(bob, carol)
    fallback = claim(bob, fallback=True)
    for sender in (alice, carol):  # the same fallback key, handed to both
        sender.start_session(bob.own_device, fallback)
        envelope = sender.encrypt_to_device(bob.own_device, {"type": "ping"})
        got = bob.decrypt_to_device(sender.user_id, sender.device_id, envelope)
        assert got is not None
        assert got.payload["type"] == "ping"


def test_a_claimed_key_not_signed_by_its_device_is_refused() -> None:
    alice, bob = _machines()
    key = claim(bob)
    key["key"] = claim(CryptoMachine.create("u_mallory", "M"))["key"]
    with pytest.raises(DecryptionError) as refused:
        alice.start_session(bob.own_device, key)
    assert refused.value.reason == "malformed"
    assert not alice.has_session(bob.own_device)


def test_a_replayed_to_device_message_is_ignored() -> None:
    alice, bob = _machines()
    share_room_keys(alice, ROOM, bob)
    envelope = relay(alice, bob, {"type": "ping", "n": 1})
    assert bob.decrypt_to_device("u_alice", "ALAPTOP", envelope) is not None
    assert bob.decrypt_to_device("u_alice", "ALAPTOP", copy.deepcopy(envelope)) is None
    # Also after a restart: what was seen is part of the persisted state.
    restored = CryptoMachine.from_state(bob.to_state())
    assert restored.decrypt_to_device("u_alice", "ALAPTOP", envelope) is None


def test_a_tampered_to_device_message_is_refused() -> None:
    alice, bob = _machines()
    bob.decrypt_to_device("u_alice", "ALAPTOP", relay(alice, bob, {"type": "warm-up"}))
    share_room_keys(bob, ROOM, alice)  # Bob's Olm reply makes Alice's next message normal
    envelope = relay(alice, bob, {"type": "ping"})
    assert envelope["ciphertext"]["type"] == 1
    body = bytearray(b64decode(envelope["ciphertext"]["body"]))
    body[-40] ^= 0x01
    envelope["ciphertext"]["body"] = b64encode(bytes(body))
    with pytest.raises(DecryptionError) as refused:
        bob.decrypt_to_device("u_alice", "ALAPTOP", envelope)
    assert refused.value.reason == "tampered"


def test_a_to_device_message_relayed_under_another_sender_is_refused() -> None:
    alice, bob = _machines()
    envelope = relay(alice, bob, {"type": "ping"})
    with pytest.raises(DecryptionError) as refused:
        bob.decrypt_to_device("u_carol", "CAROL", envelope)
    assert refused.value.reason == "wrong_sender"


def test_a_tampered_room_message_is_refused() -> None:
    alice, bob = _machines()
    share_room_keys(alice, ROOM, bob)
    envelope = alice.encrypt_room(ROOM, {"type": "m.text", "body": "original"})
    raw = bytearray(b64decode(envelope["ciphertext"]))
    raw[12] ^= 0x01
    tampered = {**envelope, "ciphertext": b64encode(bytes(raw))}
    with pytest.raises(DecryptionError) as refused:
        bob.decrypt_room(ROOM, "u_alice", tampered, "m_1")
    assert refused.value.reason == "tampered"
    assert bob.decrypt_room(ROOM, "u_alice", envelope, "m_1").content["body"] == "original"


def test_a_room_message_replayed_as_another_event_or_room_or_sender_is_refused() -> None:
    alice, bob = _machines()
    share_room_keys(alice, ROOM, bob)
    envelope = alice.encrypt_room(ROOM, {"type": "m.text", "body": "once"})
    assert bob.decrypt_room(ROOM, "u_alice", envelope, "m_1").content["body"] == "once"
    assert bob.decrypt_room(ROOM, "u_alice", envelope, "m_1").content["body"] == "once"
    cases = [(ROOM, "u_alice", "m_2", "replayed"), ("r_other", "u_alice", "m_1", "wrong_room")]
    cases.append((ROOM, "u_mallory", "m_1", "wrong_sender"))
    for room, sender, event, reason in cases:
        with pytest.raises(DecryptionError) as refused:
            bob.decrypt_room(room, sender, envelope, event)
        assert refused.value.reason == reason


def test_a_device_added_later_reads_only_what_follows() -> None:
    alice, bob = _machines()
    share_room_keys(alice, ROOM, bob)
    before = alice.encrypt_room(ROOM, {"type": "m.text", "body": "before"})
    bob2 = CryptoMachine.create("u_bob", "BLAPTOP")
    introduce(alice, bob, bob2)
    introduce(bob2, alice)
    received = share_room_keys(alice, ROOM, bob, bob2)  # rotates: the recipients changed
    assert {r.payload["session_id"] for r in received} != {before["session_id"]}
    after = alice.encrypt_room(ROOM, {"type": "m.text", "body": "after"})
    with pytest.raises(DecryptionError) as refused:
        bob2.decrypt_room(ROOM, "u_alice", before, "m_1")
    assert refused.value.reason == "no_session"
    for reader in (bob, bob2):
        assert reader.decrypt_room(ROOM, "u_alice", after, "m_2").content["body"] == "after"
    assert bob.decrypt_room(ROOM, "u_alice", before, "m_1").content["body"] == "before"


def test_a_removed_device_cannot_read_what_follows() -> None:
    alice, bob = _machines()
    carol = CryptoMachine.create("u_carol", "CAROL")
    introduce(carol, alice)
    introduce(alice, bob, carol)
    share_room_keys(alice, ROOM, bob, carol)
    share_room_keys(alice, ROOM, bob)  # Carol left: a new session, shared with Bob only
    after = alice.encrypt_room(ROOM, {"type": "m.text", "body": "carol is gone"})
    assert bob.decrypt_room(ROOM, "u_alice", after, "m_1").content["body"] == "carol is gone"
    with pytest.raises(DecryptionError):
        carol.decrypt_room(ROOM, "u_alice", after, "m_1")


def test_the_outbound_session_rotates_after_n_messages_and_after_a_time() -> None:
    now = [1000.0]
    alice = CryptoMachine.create("u_alice", "ALAPTOP", clock=lambda: now[0])
    alice.policy = RotationPolicy(messages=3, seconds=60.0)
    bob = CryptoMachine.create("u_bob", "BPHONE")
    introduce(alice, bob)
    introduce(bob, alice)
    sessions = []
    for _ in range(4):
        share_room_keys(alice, ROOM, bob)
        sessions.append(alice.encrypt_room(ROOM, {"type": "m.text", "body": "x"})["session_id"])
    assert sessions[0] == sessions[1] == sessions[2] != sessions[3]
    now[0] += 60.0
    share_room_keys(alice, ROOM, bob)
    assert alice.encrypt_room(ROOM, {"type": "m.text", "body": "x"})["session_id"] != sessions[3]


def test_sessions_survive_a_restart_from_state() -> None:
    alice, bob = _machines()
    share_room_keys(alice, ROOM, bob)
    first = alice.encrypt_room(ROOM, {"type": "m.text", "body": "one"})
    alice, bob = (
        CryptoMachine.from_state(alice.to_state()),
        CryptoMachine.from_state(bob.to_state()),
    )
    assert share_room_keys(alice, ROOM, bob) == []  # the room key was already shared
    second = alice.encrypt_room(ROOM, {"type": "m.text", "body": "two"})
    assert second["session_id"] == first["session_id"]
    assert bob.decrypt_room(ROOM, "u_alice", first, "m_1").content["body"] == "one"
    assert bob.decrypt_room(ROOM, "u_alice", second, "m_2").content["body"] == "two"
    envelope = bob.encrypt_to_device(alice.own_device, {"type": "ping"})  # Olm session kept
    assert alice.decrypt_to_device("u_bob", "BPHONE", envelope) is not None


def test_fallback_key_ids_never_clash_with_one_time_key_ids() -> None:
    # vodozemac counts both from zero; the server keeps them under one id space.
    machine = CryptoMachine.create("u_alice", "ALAPTOP")
    one_time = {key["key_id"] for key in machine.new_one_time_keys(3)}
    assert machine.new_fallback_key()["key_id"] not in one_time


def test_other_keys_under_a_verified_device_id_are_a_new_unverified_device() -> None:
    alice, bob = _machines()
    alice.mark_verified(bob.own_device)
    swapped = CryptoMachine.create("u_bob", "BPHONE")  # the server swaps bob's keys
    assert alice.update_devices("u_bob", [listing(swapped)]) == (swapped.own_device,)
    [listed] = alice.devices_of("u_bob")
    assert alice.trust(listed) is Trust.UNVERIFIED
    assert alice.trust(bob.own_device) is Trust.UNKNOWN  # the old keys are no longer listed
