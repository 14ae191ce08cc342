"""`CryptoMachine`: one device's Olm account, Olm sessions and Megolm room sessions.

Pure state, no I/O: the caller (the SDK's `E2EClient`, or tests) moves its
outputs over the network and persists `to_state()` after every call that
changes it (`changed` says so). All cryptography is vodozemac's; this module
decides which session to use, binds every payload to its sender, recipient
and room, and refuses what does not add up.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import orjson
import vodozemac

from ._devices import Device, Trust, parse_device
from ._verification import VerificationCode, verification_code
from ._wire import (
    ALGORITHMS,
    MEGOLM_ALGORITHM,
    OLM_ALGORITHM,
    b64decode,
    b64encode,
    sign,
    signature_valid,
)

SEEN_LIMIT = 10_000
"""How many to-device ciphertext digests and Megolm indices are remembered against replay."""


class DecryptionError(Exception):
    """A ciphertext was refused; `reason` is stable: `tampered` (authentication failed),
    `no_session` (no key for it, yet), `wrong_room`, `wrong_sender`, `wrong_recipient`,
    `replayed` (a Megolm index seen before under another event), `malformed`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@attrs.frozen
class RotationPolicy:
    """When an outbound Megolm session is replaced (besides any change of recipients)."""

    messages: int = 100
    seconds: float = 7 * 24 * 3600.0


@attrs.frozen
class ToDevice:
    """A decrypted to-device payload and who sent it, as Olm proves."""

    sender: str
    sender_device: str
    sender_key: str
    payload: dict[str, Any]
    trust: Trust


@attrs.frozen
class Decrypted:
    """A decrypted room event: its content and the device that sent it."""

    content: dict[str, Any]
    sender: str
    sender_device: str
    trust: Trust


@attrs.define
class _Outbound:
    session: vodozemac.GroupSession
    created_at: float
    recipients: frozenset[tuple[str, str, str]]
    """(user, device, curve25519) of every device meant to read this session."""
    shared_with: set[tuple[str, str, str]]


@attrs.define
class _Inbound:
    session: vodozemac.InboundGroupSession
    room: str
    sender: str
    sender_device: str
    sender_key: str
    """The Curve25519 key of the Olm session that delivered this room key."""


@attrs.define
class CryptoMachine:
    """The end-to-end state of one device (`user_id`, `device_id`)."""

    user_id: str
    device_id: str
    _account: vodozemac.Account
    _pickle_key: bytes
    _clock: Callable[[], float] = time.time
    policy: RotationPolicy = attrs.field(factory=RotationPolicy)
    _sessions: dict[str, list[vodozemac.Session]] = attrs.field(factory=dict)
    """Olm sessions per peer Curve25519 key, the one to encrypt with first."""
    _devices: dict[str, dict[str, Device]] = attrs.field(factory=dict)
    _verified: set[tuple[str, str, str]] = attrs.field(factory=set)
    """(user, device, ed25519) confirmed by comparing verification codes."""
    _outbound: dict[str, _Outbound] = attrs.field(factory=dict)
    _inbound: dict[str, _Inbound] = attrs.field(factory=dict)
    _seen_olm: dict[str, None] = attrs.field(factory=dict)
    _megolm_index: dict[str, str] = attrs.field(factory=dict)
    """`session_id:index` -> the event (message id) that first used that index."""
    changed: bool = False

    @classmethod
    def create(
        cls, user_id: str, device_id: str, *, clock: Callable[[], float] = time.time
    ) -> CryptoMachine:
        """A new device: fresh identity keys."""
        return cls(
            user_id, device_id, vodozemac.Account(), secrets.token_bytes(32), clock, changed=True
        )

    # -- identity ---------------------------------------------------------------------

    @property
    def curve25519(self) -> str:
        return self._account.curve25519_key.to_base64()

    @property
    def ed25519(self) -> str:
        return self._account.ed25519_key.to_base64()

    @property
    def own_device(self) -> Device:
        return Device(self.user_id, self.device_id, self.curve25519, self.ed25519)

    def device_keys(self, display_name: str = "") -> dict[str, Any]:
        """The body of `PUT /devices/{device_id}`: the signed identity keys."""
        signed = sign(
            self._account,
            {
                "user_id": self.user_id,
                "device_id": self.device_id,
                "algorithms": list(ALGORITHMS),
                "keys": {"curve25519": self.curve25519, "ed25519": self.ed25519},
            },
        )
        return {
            "display_name": display_name,
            "algorithms": signed["algorithms"],
            "keys": signed["keys"],
            "signature": signed["signature"],
        }

    def new_one_time_keys(self, count: int) -> list[dict[str, Any]]:
        """`count` new signed one-time keys (upload them, then `mark_published`)."""
        self._account.generate_one_time_keys(count)
        self.changed = True
        return self._signed_keys(self._account.one_time_keys, fallback=False)

    def new_fallback_key(self) -> dict[str, Any]:
        """A new signed fallback key (replacing the previous one once published)."""
        # vodozemac 0.10's type stubs omit the fallback-key methods it has.
        self._account.generate_fallback_key()  # type: ignore[attr-defined]
        self.changed = True
        keys: dict[str, vodozemac.Curve25519PublicKey] = self._account.fallback_key  # type: ignore[attr-defined]
        return self._signed_keys(keys, fallback=True)[0]

    def mark_published(self) -> None:
        self._account.mark_keys_as_published()
        self.changed = True

    def _signed_keys(
        self, keys: dict[str, vodozemac.Curve25519PublicKey], *, fallback: bool
    ) -> list[dict[str, Any]]:
        out = []
        for raw_id, key in keys.items():
            # vodozemac numbers fallback keys apart from one-time keys: the ids would clash
            # on the server, which keeps both kinds under one id space.
            key_id = f"F{raw_id}" if fallback else raw_id
            obj = {
                "user_id": self.user_id,
                "device_id": self.device_id,
                "key_id": key_id,
                "key": key.to_base64(),
                "fallback": fallback,
            }
            signed = sign(self._account, obj)
            out.append({"key_id": key_id, "key": obj["key"], "signature": signed["signature"]})
        return out

    # -- the device directory ---------------------------------------------------------

    def update_devices(self, user_id: str, listed: Iterable[Any]) -> tuple[Device, ...]:
        """Take the server's device list of `user_id`; the devices new to this machine.

        Entries with a bad signature are dropped. A device id listed with other
        keys than before is a new (unverified) device: verification binds keys.
        This very device is never replaced by what the server says.
        """
        fresh: dict[str, Device] = {}
        for obj in listed:
            device = parse_device(user_id, obj)
            if device is None:
                continue
            if device.key == (self.user_id, self.device_id):
                continue
            fresh[device.device_id] = device
        before = self._devices.get(user_id, {})
        added = tuple(d for d in fresh.values() if before.get(d.device_id) != d)
        if fresh != before:
            self._devices[user_id] = fresh
            self.changed = True
        return added

    def devices_of(self, user_id: str) -> tuple[Device, ...]:
        """The devices of `user_id` last listed (without this very device)."""
        return tuple(self._devices.get(user_id, {}).values())

    def trust(self, device: Device) -> Trust:
        if device.key == (self.user_id, self.device_id) and device.ed25519 == self.ed25519:
            return Trust.OWN
        listed = self._devices.get(device.user_id, {}).get(device.device_id)
        if (
            listed is None
            or listed.curve25519 != device.curve25519
            or listed.ed25519 != device.ed25519
        ):
            return Trust.UNKNOWN
        if (device.user_id, device.device_id, device.ed25519) in self._verified:
            return Trust.VERIFIED
        return Trust.UNVERIFIED

    def verification_code(self, device: Device) -> VerificationCode:
        """What to compare with the owner of `device` before `mark_verified`."""
        own = (self.user_id, self.device_id, self.ed25519)
        return verification_code(own, (device.user_id, device.device_id, device.ed25519))

    def mark_verified(self, device: Device) -> None:
        """The codes matched: `device` (with exactly these keys) is trusted from now on."""
        self._verified.add((device.user_id, device.device_id, device.ed25519))
        self.changed = True

    # -- Olm: one-to-one sessions and to-device messages -----------------------------

    def has_session(self, device: Device) -> bool:
        return bool(self._sessions.get(device.curve25519))

    def start_session(self, device: Device, claimed: dict[str, Any]) -> None:
        """Open an Olm session to `device` with a one-time (or fallback) key claimed for it.

        `DecryptionError("malformed")` if the key is not signed by that device.
        """
        obj = {
            "user_id": device.user_id,
            "device_id": device.device_id,
            "key_id": claimed.get("key_id"),
            "key": claimed.get("key"),
            "fallback": bool(claimed.get("fallback")),
            "signature": claimed.get("signature"),
        }
        if not signature_valid(device.ed25519, obj) or not isinstance(obj["key"], str):
            raise DecryptionError("malformed", f"claimed key of {device.key} is not signed by it")
        try:
            session = self._account.create_outbound_session(
                vodozemac.Curve25519PublicKey.from_base64(device.curve25519),
                vodozemac.Curve25519PublicKey.from_base64(obj["key"]),
            )
        except (vodozemac.KeyException, ValueError) as exc:
            raise DecryptionError("malformed", f"a key of {device.key} is not a key") from exc
        self._sessions.setdefault(device.curve25519, []).insert(0, session)
        self.changed = True

    def encrypt_to_device(self, device: Device, payload: dict[str, Any]) -> dict[str, Any]:
        """The Olm envelope carrying `payload` to `device` (needs `has_session`).

        The plaintext names sender and recipient with their Ed25519 keys, so a
        payload cannot be passed off as coming from, or meant for, anyone else.
        """
        session = self._sessions[device.curve25519][0]
        plain = {
            **payload,
            "sender": self.user_id,
            "sender_device": self.device_id,
            "keys": {"ed25519": self.ed25519},
            "recipient": device.user_id,
            "recipient_keys": {"ed25519": device.ed25519},
        }
        message_type, body = session.encrypt(orjson.dumps(plain)).to_parts()
        self.changed = True
        return {
            "algorithm": OLM_ALGORITHM,
            "sender_key": self.curve25519,
            "ciphertext": {"type": message_type, "body": b64encode(body)},
        }

    def decrypt_to_device(self, sender: str, sender_device: str, envelope: Any) -> ToDevice | None:
        """Open a to-device envelope the server says `sender_device` of `sender` sent.

        None if this exact ciphertext was seen before (a replay: ignored).
        `DecryptionError` if it does not decrypt or its sealed sender/recipient
        do not match. A room key inside is stored (see `room_key`).
        """
        sender_key, message_type, body = _olm_parts(envelope)
        digest = hashlib.sha256(f"{sender_key}|{message_type}|{body}".encode()).hexdigest()
        if digest in self._seen_olm:
            return None
        try:
            message = vodozemac.AnyOlmMessage.from_parts(message_type, b64decode(body))
        except (ValueError, vodozemac.DecodeException) as exc:
            raise DecryptionError("malformed", "not an Olm message") from exc
        plain = self._olm_decrypt(sender_key, message)
        self._remember(self._seen_olm, digest, None)
        try:
            payload = orjson.loads(plain)
        except orjson.JSONDecodeError as exc:
            raise DecryptionError("malformed", "payload is not JSON") from exc
        if not isinstance(payload, dict):
            raise DecryptionError("malformed", "payload is not an object")
        if payload.get("recipient") != self.user_id or payload.get("recipient_keys") != {
            "ed25519": self.ed25519
        }:
            raise DecryptionError("wrong_recipient", "sealed for another device")
        if payload.get("sender") != sender or payload.get("sender_device") != sender_device:
            raise DecryptionError("wrong_sender", "sealed sender differs from the relayed one")
        ed = (payload.get("keys") or {}).get("ed25519")
        device = Device(sender, sender_device, sender_key, ed if isinstance(ed, str) else "")
        received = ToDevice(sender, sender_device, sender_key, payload, self.trust(device))
        if payload.get("type") == "m.room_key":
            self._accept_room_key(received)
        return received

    def _olm_decrypt(self, sender_key: str, message: vodozemac.AnyOlmMessage) -> bytes:
        sessions = self._sessions.setdefault(sender_key, [])
        pre_key = message.to_pre_key()
        for session in sessions:
            if pre_key is not None and not session.session_matches(pre_key):
                continue
            try:
                plain = session.decrypt(message)
            except vodozemac.OlmDecryptionException:
                continue
            self.changed = True
            return plain
        if pre_key is None:
            raise DecryptionError("tampered", f"no Olm session of {sender_key} decrypts it")
        try:
            session, plain = self._account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_base64(sender_key), pre_key
            )
        except (vodozemac.SessionCreationException, vodozemac.KeyException) as exc:
            raise DecryptionError("tampered", f"pre-key message refused: {exc}") from exc
        sessions.insert(0, session)
        self.changed = True
        return bytes(plain)

    # -- Megolm: room sessions --------------------------------------------------------

    def room_key_shares(
        self, room: str, devices: Iterable[Device]
    ) -> list[tuple[Device, dict[str, Any]]]:
        """The room key payloads to send (over Olm) before encrypting in `room` for `devices`.

        Rotates the room's outbound session when its recipients changed, or it
        is older or more used than `policy` allows, so a removed device never
        reads what follows and a new one reads nothing from before. Call
        `mark_shared` once the payloads are delivered to the server.
        """
        recipients = frozenset(
            (d.user_id, d.device_id, d.curve25519)
            for d in devices
            if d.key != (self.user_id, self.device_id)
        )
        current = self._outbound.get(room)
        if current is None or self._stale(current, recipients):
            current = self._new_outbound(room, recipients)
        by_key = {(d.user_id, d.device_id, d.curve25519): d for d in devices}
        key = current.session.session_key.to_base64()
        payload = {
            "type": "m.room_key",
            "room": room,
            "session_id": current.session.session_id,
            "session_key": key,
        }
        return [(by_key[r], payload) for r in sorted(recipients - current.shared_with)]

    def mark_shared(self, room: str, devices: Iterable[Device]) -> None:
        outbound = self._outbound[room]
        outbound.shared_with.update((d.user_id, d.device_id, d.curve25519) for d in devices)
        self.changed = True

    def _stale(self, outbound: _Outbound, recipients: frozenset[tuple[str, str, str]]) -> bool:
        return (
            outbound.recipients != recipients
            or outbound.session.message_index >= self.policy.messages
            or self._clock() - outbound.created_at >= self.policy.seconds
        )

    def _new_outbound(self, room: str, recipients: frozenset[tuple[str, str, str]]) -> _Outbound:
        session = vodozemac.GroupSession()
        outbound = _Outbound(session, self._clock(), recipients, set())
        self._outbound[room] = outbound
        # This device reads its own messages (echoes, history) with the same key.
        inbound = vodozemac.InboundGroupSession(session.session_key)
        self._inbound[session.session_id] = _Inbound(
            inbound, room, self.user_id, self.device_id, self.curve25519
        )
        self.changed = True
        return outbound

    def encrypt_room(self, room: str, content: dict[str, Any]) -> dict[str, Any]:
        """The Megolm envelope of `content` in `room` (after `room_key_shares`)."""
        outbound = self._outbound[room]
        # The room id is sealed in so the server cannot replay the ciphertext elsewhere.
        message = outbound.session.encrypt(orjson.dumps({**content, "room": room}))
        self.changed = True
        return {
            "algorithm": MEGOLM_ALGORITHM,
            "sender_key": self.curve25519,
            "device_id": self.device_id,
            "session_id": outbound.session.session_id,
            "ciphertext": message.to_base64(),
        }

    def decrypt_room(self, room: str, sender: str, envelope: Any, event_key: str) -> Decrypted:
        """Open the Megolm envelope of the event `event_key` the server says `sender` sent.

        `DecryptionError`: `no_session` (the key has not arrived: retry when it
        does), `tampered`, `wrong_room`, `wrong_sender`, or `replayed` (this
        ciphertext index was already used by another event).
        """
        if not isinstance(envelope, dict) or envelope.get("algorithm") != MEGOLM_ALGORITHM:
            raise DecryptionError("malformed", "not a Megolm envelope")
        inbound = self._inbound.get(str(envelope.get("session_id")))
        if inbound is None:
            raise DecryptionError("no_session", "the room key has not been received")
        if inbound.room != room:
            raise DecryptionError("wrong_room", "the session belongs to another room")
        if inbound.sender != sender or envelope.get("sender_key") != inbound.sender_key:
            raise DecryptionError("wrong_sender", "the session belongs to another sender")
        try:
            message = vodozemac.MegolmMessage.from_base64(str(envelope.get("ciphertext")))
            decrypted = inbound.session.decrypt(message)
        except (vodozemac.DecodeException, vodozemac.MegolmDecryptionException, ValueError) as exc:
            raise DecryptionError("tampered", str(exc)) from exc
        index_key = f"{inbound.session.session_id}:{decrypted.message_index}"
        if self._megolm_index.get(index_key, event_key) != event_key:
            raise DecryptionError("replayed", "this ciphertext was already used by another event")
        self._remember(self._megolm_index, index_key, event_key)
        try:
            payload = orjson.loads(decrypted.plaintext)
        except orjson.JSONDecodeError as exc:
            raise DecryptionError("malformed", "payload is not JSON") from exc
        if not isinstance(payload, dict) or payload.pop("room", None) != room:
            raise DecryptionError("wrong_room", "sealed for another room")
        device = self._devices.get(sender, {}).get(inbound.sender_device)
        if inbound.sender_key == self.curve25519:
            trust = Trust.OWN
        elif device is None or device.curve25519 != inbound.sender_key:
            trust = Trust.UNKNOWN
        else:
            trust = self.trust(device)
        return Decrypted(payload, sender, inbound.sender_device, trust)

    def _accept_room_key(self, received: ToDevice) -> None:
        payload = received.payload
        room, session_id, key = (
            payload.get("room"),
            payload.get("session_id"),
            payload.get("session_key"),
        )
        if not (isinstance(room, str) and isinstance(session_id, str) and isinstance(key, str)):
            raise DecryptionError("malformed", "room key payload")
        try:
            session = vodozemac.InboundGroupSession(vodozemac.SessionKey(key))
        except (vodozemac.SessionKeyDecodeException, ValueError) as exc:
            raise DecryptionError("malformed", "room key") from exc
        if session.session_id != session_id:
            raise DecryptionError("malformed", "room key does not match its session id")
        known = self._inbound.get(session_id)
        if known is not None and known.session.first_known_index <= session.first_known_index:
            return  # nothing better than what is held
        self._inbound[session_id] = _Inbound(
            session, room, received.sender, received.sender_device, received.sender_key
        )
        self.changed = True

    def _remember(self, table: dict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        while len(table) > SEEN_LIMIT:
            del table[next(iter(table))]
        self.changed = True

    # -- persistence ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything to restore this machine with `from_state` (secret: store it sealed)."""
        pk = self._pickle_key
        return {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "pickle_key": b64encode(pk),
            "account": self._account.pickle(pk),
            "sessions": {k: [s.pickle(pk) for s in v] for k, v in self._sessions.items()},
            "devices": {u: [d.to_json() for d in ds.values()] for u, ds in self._devices.items()},
            "verified": sorted(list(v) for v in self._verified),
            "outbound": {
                room: {
                    "session": o.session.pickle(pk),
                    "created_at": o.created_at,
                    "recipients": sorted(list(r) for r in o.recipients),
                    "shared_with": sorted(list(r) for r in o.shared_with),
                }
                for room, o in self._outbound.items()
            },
            "inbound": {
                sid: {
                    "session": i.session.pickle(pk),
                    "room": i.room,
                    "sender": i.sender,
                    "sender_device": i.sender_device,
                    "sender_key": i.sender_key,
                }
                for sid, i in self._inbound.items()
            },
            "seen_olm": list(self._seen_olm),
            "megolm_index": self._megolm_index,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], *, clock: Callable[[], float] = time.time
    ) -> CryptoMachine:
        pk = b64decode(state["pickle_key"])
        machine = cls(
            state["user_id"],
            state["device_id"],
            vodozemac.Account.from_pickle(state["account"], pk),
            pk,
            clock,
        )
        machine._sessions = {
            k: [vodozemac.Session.from_pickle(p, pk) for p in v]
            for k, v in state["sessions"].items()
        }
        machine._devices = {
            u: {d["device_id"]: Device(**d) for d in ds} for u, ds in state["devices"].items()
        }
        machine._verified = {(u, d, e) for u, d, e in state["verified"]}
        machine._outbound = {
            room: _Outbound(
                vodozemac.GroupSession.from_pickle(o["session"], pk),
                o["created_at"],
                frozenset((u, d, c) for u, d, c in o["recipients"]),
                {(u, d, c) for u, d, c in o["shared_with"]},
            )
            for room, o in state["outbound"].items()
        }
        machine._inbound = {
            sid: _Inbound(
                vodozemac.InboundGroupSession.from_pickle(i["session"], pk),
                i["room"],
                i["sender"],
                i["sender_device"],
                i["sender_key"],
            )
            for sid, i in state["inbound"].items()
        }
        machine._seen_olm = dict.fromkeys(state["seen_olm"])
        machine._megolm_index = dict(state["megolm_index"])
        return machine


def _olm_parts(envelope: Any) -> tuple[str, int, str]:
    if not isinstance(envelope, dict) or envelope.get("algorithm") != OLM_ALGORITHM:
        raise DecryptionError("malformed", "not an Olm envelope")
    sender_key, ciphertext = envelope.get("sender_key"), envelope.get("ciphertext")
    if not isinstance(sender_key, str) or not isinstance(ciphertext, dict):
        raise DecryptionError("malformed", "not an Olm envelope")
    message_type, body = ciphertext.get("type"), ciphertext.get("body")
    if message_type not in (0, 1) or not isinstance(body, str):
        raise DecryptionError("malformed", "not an Olm envelope")
    return sender_key, message_type, body
