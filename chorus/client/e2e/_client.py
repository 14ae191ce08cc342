"""`E2EClient`: a device's end-to-end encryption, driven over the HTTP API.

`RealtimeClient(api, e2e=...)` uses it transparently: it names the device in
`hello`, hands it `to_device` frames, tops up one-time keys when told they
run low, encrypts what is sent in an encrypted room and opens what arrives
there. Everything is also callable directly (history, `/verify`).
"""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import structlog
import trio

from chorus import protocol
from chorus.filenames import display_name

from .._files import NO_CLAIM, FileSource, Progress, download_path, open_upload
from .._http import ApiError, HttpApi, RoomEvent
from ._attachments import EncryptedFile, FileCipher, verify_and_decrypt
from ._devices import Device, Trust
from ._keystore import KeyStore
from ._machine import CryptoMachine, Decrypted, DecryptionError
from ._verification import VerificationCode

_log = structlog.get_logger("chorus.client.e2e")

ONE_TIME_KEYS = 50
"""How many unclaimed one-time keys the device keeps published (the server warns below 10)."""
_BATCH = 100
"""The most devices, keys or messages per request (the server's limit)."""


@attrs.frozen(kw_only=True)
class Secured:
    """On `events`: a room event of an encrypted room, opened on this device.

    `event` carries the plaintext in `body` (a message or an edit); a reaction,
    which travels as an encrypted message, comes as a `ReactionEvent`. When it
    could not be opened, `problem` says why (`tampered`, `no_session`,
    `replayed`, `wrong_room`, `wrong_sender`, `malformed`) and `event` is as the
    server sent it (empty body); `trust` is then None. `files` are the
    encrypted attachments the content carries (their real names, and what
    `E2EClient.download_file` needs); the event's own `attachments` are the
    server's view of them (opaque bytes named `attachment`).
    """

    event: RoomEvent
    sender_device: str | None
    trust: Trust | None
    problem: str | None = None
    files: tuple[EncryptedFile, ...] = ()


@attrs.frozen(kw_only=True)
class E2EProblem:
    """On `events`: a to-device message from `sender`'s `sender_device` was refused."""

    sender: str
    sender_device: str
    reason: str


@attrs.frozen
class DeviceStatus:
    """A device of a user as this device sees it (for `/verify` and the lock)."""

    device: Device
    trust: Trust
    code: VerificationCode


class E2EClient:
    """End-to-end encryption for the user logged in on `api`, as one device.

    Guarantees: nothing leaves this object unencrypted except public keys;
    the machine's state is saved to the sealed key file after every change,
    before the change is acted upon over the network; messages from devices
    not verified (or not listed) are flagged, never hidden.
    """

    def __init__(self, api: HttpApi, machine: CryptoMachine, store: KeyStore) -> None:
        self._api = api
        self.machine = machine
        self._store = store
        self._lock = trio.Lock()
        self._encrypted: dict[str, bool] = {}
        self._problems: list[E2EProblem] = []

    @classmethod
    async def open(
        cls,
        api: HttpApi,
        key_file: Path,
        passphrase: str,
        *,
        display_name: str = "chorus-sdk",
    ) -> E2EClient:
        """The device kept in `key_file` (a new one if the file is absent or another
        user's), registered for the current session with its one-time keys published.

        Raises `KeyStoreError` if the file does not open with `passphrase`.
        """
        store = await trio.to_thread.run_sync(KeyStore, key_file, passphrase)
        state = await trio.to_thread.run_sync(store.load)
        user_id = api.user.id
        if state is not None and state.get("user_id") == user_id:
            machine = CryptoMachine.from_state(state)
        else:
            machine = CryptoMachine.create(user_id, "D" + secrets.token_hex(5).upper())
        client = cls(api, machine, store)
        await client._save()
        # A device belongs to the session that registers it: registering again (same
        # keys) binds it to this session.
        await api.put_device(machine.device_id, machine.device_keys(display_name))
        await client.replenish()
        return client

    @property
    def device_id(self) -> str:
        return self.machine.device_id

    # -- keys -------------------------------------------------------------------------

    async def replenish(self) -> None:
        """Publish one-time keys up to `ONE_TIME_KEYS` (and a fallback key if none is held).

        The count is read under the lock, so calls that overlap (a burst of
        `one_time_keys_low`) upload once.
        """
        async with self._lock:
            count, fallback = await self._api.key_counts(self.device_id)
            for _ in range(ONE_TIME_KEYS // _BATCH + 2):  # bounded: the server caps the count
                missing = ONE_TIME_KEYS - count
                if missing <= 0 and fallback:
                    return
                keys = self.machine.new_one_time_keys(min(missing, _BATCH)) if missing > 0 else []
                fallback_key = None if fallback else self.machine.new_fallback_key()
                await self._save()  # the private halves are kept before the public ones go out
                count, fallback = await self._api.upload_keys(self.device_id, keys, fallback_key)
                self.machine.mark_published()
                await self._save()

    # -- sending ----------------------------------------------------------------------

    async def is_encrypted(self, room_id: str) -> bool:
        """Whether the room is end-to-end encrypted (fixed when a room is made: cached)."""
        if room_id not in self._encrypted:
            room = await self._api.get_room(room_id)
            self._encrypted[room_id] = bool(room.get("encrypted"))
        return self._encrypted[room_id]

    async def encrypt(self, room_id: str, content: dict[str, Any]) -> protocol.MegolmEnvelope:
        """Encrypt `content` for every device of the room's members (this user's other
        devices too), sharing the room key first with devices that lack it."""
        async with self._lock:
            listed = await self._room_devices(room_id)
            await self._open_sessions(listed)
            # A device no key could be claimed for cannot be given the room key: it is
            # left out (and gets a new session once it can be reached).
            devices = [d for d in listed if self.machine.has_session(d)]
            shares = self.machine.room_key_shares(room_id, devices)
            await self._save()
            if shares:
                messages = [
                    {
                        "user_id": device.user_id,
                        "device_id": device.device_id,
                        "message_id": "k-" + secrets.token_hex(8),
                        "content": self.machine.encrypt_to_device(device, payload),
                    }
                    for device, payload in shares
                ]
                await self._save()  # the Olm ratchets moved: keep them before sending
                for start in range(0, len(messages), _BATCH):
                    await self._api.send_to_device(self.device_id, messages[start : start + _BATCH])
                self.machine.mark_shared(room_id, [device for device, _ in shares])
            envelope = self.machine.encrypt_room(room_id, content)
            await self._save()
        return protocol.MegolmEnvelope(**envelope)

    async def _room_devices(self, room_id: str) -> list[Device]:
        """Every listed device of the room's members, fetched now (new devices are picked
        up by the next message)."""
        room = await self._api.get_room(room_id)
        self._encrypted[room_id] = bool(room.get("encrypted"))
        members = sorted({str(m["user_id"]) for m in room["members"]})
        devices: list[Device] = []
        for start in range(0, len(members), _BATCH):
            listed = await self._api.query_devices(members[start : start + _BATCH])
            for user_id, entries in listed.items():
                self.machine.update_devices(user_id, entries)
        for user_id in members:
            devices.extend(self.machine.devices_of(user_id))
        return devices

    async def _open_sessions(self, devices: Sequence[Device]) -> None:
        needed = {d.key: d for d in devices if not self.machine.has_session(d)}
        keys = list(needed)
        for start in range(0, len(keys), _BATCH):
            for claimed in await self._api.claim_keys(keys[start : start + _BATCH]):
                device = needed.get((str(claimed.get("user_id")), str(claimed.get("device_id"))))
                if device is None:
                    continue
                try:
                    self.machine.start_session(device, claimed)
                except DecryptionError as exc:
                    _log.warning(
                        "e2e.bad_claimed_key",
                        user=device.user_id,
                        device=device.device_id,
                        reason=exc.reason,
                    )

    # -- files ------------------------------------------------------------------------

    async def upload_file(
        self,
        source: FileSource,
        *,
        name: str | None = None,
        content_type: str | None = None,
        progress: Progress | None = None,
    ) -> EncryptedFile:
        """Upload a file encrypted under a fresh random key; what to attach to a message
        of an encrypted room (`RealtimeClient.send(..., attachments=[it])`).

        The bytes are encrypted as they are read and sent (streamed, as
        `HttpApi.upload_file`); the server gets ciphertext declared encrypted,
        named `attachment`. `name` (default: the file's own) and `content_type`
        (default: guessed from the name) travel only inside the message, with
        the key. Wait for the file to be `ready` before attaching it, as for
        any upload. Raises as `HttpApi.upload_file`.
        """
        cipher = FileCipher()
        async with open_upload(source, name, cipher) as upload:
            info = await self._api.send_upload(upload, progress=progress)
            real_name = upload.name
        guessed = content_type or mimetypes.guess_type(real_name)[0] or NO_CLAIM
        return cipher.sealed(info.id, display_name(real_name), guessed)

    async def download_file(
        self,
        file: EncryptedFile,
        dest: str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Path:
        """Download an encrypted attachment, check it and decrypt it; the path written.

        `dest` is a file path, or a directory to write the file under the
        name its message gives (default: the current directory). The
        ciphertext is kept beside it until its SHA-256 matches the one the
        sender sealed in the message; then it is decrypted, streamed. Raises
        `FileTampered` (nothing written) when the server's bytes are not the
        sender's; `ApiError` as `HttpApi.download_file`. The file appears
        complete or not at all.
        """
        target = await download_path(dest, file.name, file.id)
        sealed = target.with_name(f"{target.name}.{secrets.token_hex(4)}.encrypted")
        part = target.with_name(target.name + ".part")
        try:
            await self._api.download_file(file.id, sealed, progress=progress)
            await trio.to_thread.run_sync(verify_and_decrypt, file, sealed, part)
            await trio.Path(part).replace(target)
        finally:
            with trio.CancelScope(shield=True):  # neither ciphertext nor a partial file stays
                for leftover in (sealed, part):
                    await trio.Path(leftover).unlink(missing_ok=True)
        return target

    async def files_of(self, room_id: str, message_id: str) -> tuple[EncryptedFile, ...]:
        """The encrypted files a message carries (its latest version, fetched now); none
        when it has no attachment or cannot be opened on this device."""
        message = (await self._api.message(room_id, message_id)).message
        if not message.attachments:
            return ()
        opened = await self.open_event(protocol.MessageEvent(message=message))
        return opened.files if isinstance(opened, Secured) else ()

    # -- receiving --------------------------------------------------------------------

    async def receive_to_device(self, messages: Sequence[protocol.ToDeviceEvent]) -> None:
        """Open to-device messages (room keys are kept); replays are ignored, refusals
        reported by `take_problems`. The caller acknowledges them all afterwards."""
        async with self._lock:
            for message in messages:
                self._receive_one(message)
            await self._save()

    def _receive_one(self, message: protocol.ToDeviceEvent) -> None:
        try:
            opened = self.machine.decrypt_to_device(
                message.sender, message.sender_device, attrs.asdict(message.content)
            )
        except DecryptionError as exc:
            _log.warning(
                "e2e.to_device_refused", id=message.id, sender=message.sender, reason=exc.reason
            )
            self._problems.append(
                E2EProblem(
                    sender=message.sender, sender_device=message.sender_device, reason=exc.reason
                )
            )
            return
        if opened is None:
            _log.info("e2e.to_device_replayed", id=message.id, sender=message.sender)

    async def sync_to_device(self) -> int:
        """Fetch and process what is queued for this device over HTTP; how many."""
        items = await self._api.fetch_to_device(self.device_id)
        messages = []
        for item in items:
            try:
                frame = protocol.decode_server_frame(_as_frame(item))
            except protocol.ProtocolError as exc:  # acknowledged below all the same
                _log.warning("e2e.bad_to_device", code=exc.code, message=exc.message)
                continue
            if isinstance(frame, protocol.ToDeviceEvent):
                messages.append(frame)
        await self.receive_to_device(messages)
        if items:
            await self._api.ack_to_device(self.device_id, [str(item["id"]) for item in items])
        return len(items)

    def take_problems(self) -> list[E2EProblem]:
        problems, self._problems = self._problems, []
        return problems

    async def open_event(self, event: RoomEvent) -> RoomEvent | Secured:
        """`event` opened if it carries ciphertext, else as it is.

        A missing room key is first looked for in this device's queue over HTTP
        (the sender queued it before sending), so a key still in flight on the
        WebSocket does not make a message unreadable.
        """
        envelope, sender, key = _ciphertext_of(event)
        if envelope is None:
            return event
        room = event_room(event)
        try:
            opened = await self._decrypt(room, sender, envelope, key)
        except DecryptionError as exc:
            if exc.reason != "no_session":
                return _refused(event, exc)
            try:
                await self.sync_to_device()
            except (ApiError, httpx.HTTPError) as unreachable:  # shown unopened, not fatal
                _log.warning("e2e.key_fetch_failed", error=str(unreachable))
                return _refused(event, exc)
            try:
                opened = await self._decrypt(room, sender, envelope, key)
            except DecryptionError as again:
                return _refused(event, again)
        content = opened.content
        if content.get("type") == "m.reaction" and isinstance(event, protocol.MessageEvent):
            target, emoji = content.get("message"), content.get("emoji")
            if not isinstance(target, str) or not isinstance(emoji, str):
                return _refused(event, DecryptionError("malformed", "reaction"))
            message = event.message
            reaction = protocol.ReactionEvent(
                room=message.room,
                seq=message.seq,
                message=target,
                user=message.sender,
                emoji=emoji,
                present=content.get("present") is not False,
                at=message.created_at,
                client_id=message.client_id,
            )
            return Secured(event=reaction, sender_device=opened.sender_device, trust=opened.trust)
        body, listed = content.get("body"), content.get("files", [])
        if content.get("type") != "m.text" or not isinstance(body, str):
            return _refused(event, DecryptionError("malformed", "content"))
        if not isinstance(listed, list):
            return _refused(event, DecryptionError("malformed", "files"))
        try:
            files = tuple(EncryptedFile.from_content(entry) for entry in listed)
        except DecryptionError as exc:
            return _refused(event, exc)
        plain: RoomEvent
        if isinstance(event, protocol.MessageEvent):
            plain = attrs.evolve(event, message=attrs.evolve(event.message, body=body))
        elif isinstance(event, protocol.EditedEvent):
            plain = attrs.evolve(event, body=body)
        else:  # only messages and edits carry ciphertext
            return _refused(event, DecryptionError("malformed", "event"))
        return Secured(
            event=plain, sender_device=opened.sender_device, trust=opened.trust, files=files
        )

    async def _decrypt(
        self, room: str, sender: str, envelope: protocol.MegolmEnvelope, key: str
    ) -> Decrypted:
        """Decrypt; a device not in the list fetched so far makes the sender's list be
        fetched again first (a new device of a peer), then it is judged."""
        content = attrs.asdict(envelope)
        async with self._lock:
            try:
                opened = self.machine.decrypt_room(room, sender, content, key)
                if opened.trust is Trust.UNKNOWN:
                    try:
                        listed = await self._api.query_devices([sender])
                    except (ApiError, httpx.HTTPError) as exc:  # stays flagged unknown
                        _log.warning("e2e.device_list_failed", error=str(exc))
                        return opened
                    self.machine.update_devices(sender, listed.get(sender, []))
                    opened = self.machine.decrypt_room(room, sender, content, key)
                return opened
            finally:
                await self._save()

    # -- verification -----------------------------------------------------------------

    async def devices(self, user_id: str) -> list[DeviceStatus]:
        """`user_id`'s devices as the server lists them now, each with its trust and the
        code to compare with its owner (for the caller's own user: the other devices)."""
        async with self._lock:
            listed = await self._api.query_devices([user_id])
            self.machine.update_devices(user_id, listed.get(user_id, []))
            await self._save()
            return [
                DeviceStatus(d, self.machine.trust(d), self.machine.verification_code(d))
                for d in self.machine.devices_of(user_id)
            ]

    async def mark_verified(self, device: Device) -> None:
        """The owner confirmed the code: trust `device` (these exact keys) from now on."""
        async with self._lock:
            self.machine.mark_verified(device)
            await self._save()

    async def _save(self) -> None:
        if self.machine.changed:
            await trio.to_thread.run_sync(self._store.save, self.machine.to_state())
            self.machine.changed = False  # only once saved: a failed save is tried again


def _ciphertext_of(event: RoomEvent) -> tuple[protocol.MegolmEnvelope | None, str, str]:
    """The envelope of `event`, who the server says sent it, and its replay key: the
    message id (an edit shares its message's, so a ciphertext cannot move to another)."""
    match event:
        case protocol.MessageEvent(message=message):
            return message.encrypted, message.sender, message.id
        case protocol.EditedEvent(encrypted=envelope, editor=editor, message=message_id):
            return envelope, editor, message_id
        case _:
            return None, "", ""


def event_room(event: RoomEvent) -> str:
    """The room a room event belongs to."""
    return event.message.room if isinstance(event, protocol.MessageEvent) else event.room


def _refused(event: RoomEvent, exc: DecryptionError) -> Secured:
    _log.warning("e2e.room_event_refused", room=event_room(event), reason=exc.reason)
    return Secured(event=event, sender_device=None, trust=None, problem=exc.reason)


def _as_frame(item: dict[str, Any]) -> bytes:
    """A to-device message fetched over HTTP as the WebSocket frame it would have been."""
    return orjson.dumps({**item, "type": "to_device"})
