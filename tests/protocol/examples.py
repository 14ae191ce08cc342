"""Example frames covering every frame class (and the limits), plus hypothesis strategies."""

from __future__ import annotations

import typing
from typing import Any

import attrs
from hypothesis import strategies as st

from chorus.protocol import (
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_CIPHERTEXT_CHARS,
    MAX_CLIENT_CHARS,
    MAX_CONTENT_TYPE_CHARS,
    MAX_EMOJI_CHARS,
    MAX_FILE_NAME_CHARS,
    MAX_ID_CHARS,
    MAX_KEY_CHARS,
    MAX_NONCE_CHARS,
    MAX_PREVIEW_CHARS,
    MAX_ROOM_NAME_CHARS,
    MAX_SAFE_INT,
    MAX_TEXT_CHARS,
    MAX_THUMBNAILS,
    MAX_TOKEN_CHARS,
    MAX_URL_CHARS,
    MEGOLM,
    OLM,
    Ack,
    ClientFrame,
    Delete,
    DeletedEvent,
    Edit,
    EditedEvent,
    ErrorCode,
    ErrorReply,
    FileInfo,
    FileUpdate,
    Frame,
    Hello,
    Join,
    Leave,
    MarkRead,
    MegolmEnvelope,
    Message,
    MessageEvent,
    Notice,
    NotificationEvent,
    OlmCiphertext,
    OlmEnvelope,
    OneTimeKeysLow,
    Ping,
    Pong,
    PresenceEvent,
    React,
    ReactionEvent,
    Ready,
    ReceiptEvent,
    Replayed,
    Resume,
    RoomAdded,
    RoomInvited,
    RoomRemoved,
    Send,
    ServerFrame,
    SetPresence,
    Thumbnail,
    ToDeviceAck,
    ToDeviceEvent,
    TooFar,
    Typing,
    TypingEvent,
)
from chorus.protocol._fields import (
    BoolSpec,
    ChoiceSpec,
    IntSpec,
    ListSpec,
    MapSpec,
    NullableSpec,
    ObjectSpec,
    Spec,
    StrListSpec,
    StrSpec,
    field_specs,
)

DECODING_CODES = frozenset(
    {
        ErrorCode.INVALID_JSON,
        ErrorCode.INVALID_UTF8,
        ErrorCode.TOO_LARGE,
        ErrorCode.TOO_DEEP,
        ErrorCode.NOT_AN_OBJECT,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.MISSING_FIELD,
        ErrorCode.EXTRA_FIELD,
        ErrorCode.WRONG_TYPE,
        ErrorCode.INVALID_VALUE,
    }
)
"""The error codes the codec raises; the others are the server's."""
CLIENT_CLASSES: tuple[type[Any], ...] = typing.get_args(ClientFrame)
SERVER_CLASSES: tuple[type[Any], ...] = typing.get_args(ServerFrame)

MESSAGE = Message(
    id="01JDQ7Z5K8",
    room="general",
    seq=42,
    sender="u_ada",
    body="Hello, world!",
    client_id="c-7f3a",
    created_at=1_764_100_000_000,
    edited_at=None,
)
LONGEST_MESSAGE = Message(
    id="m" * MAX_ID_CHARS,
    room="r" * MAX_ID_CHARS,
    seq=MAX_SAFE_INT,
    sender="u" * MAX_ID_CHARS,
    body="é" * MAX_BODY_CHARS,
    client_id="c" * MAX_ID_CHARS,
    created_at=MAX_SAFE_INT,
    edited_at=MAX_SAFE_INT,
    thread="t" * MAX_ID_CHARS,
)
REPLY = attrs.evolve(
    MESSAGE,
    id="01JDQ7Z9M2",
    seq=43,
    sender="u_bob",
    body="Agreed.",
    client_id="c-9b02",
    created_at=1_764_100_030_000,
    thread=MESSAGE.id,
)
"""A thread reply to MESSAGE."""
MAP = FileInfo(
    id="f_map",
    name="map.png",
    size=48213,
    content_type="image/png",
    state="ready",
    reason=None,
    scan="clean",
    width=2000,
    height=1000,
    thumbnails=(
        Thumbnail(name="320", width=320, height=160, size=9120, content_type="image/png"),
        Thumbnail(name="1280", width=1280, height=640, size=30411, content_type="image/png"),
    ),
    created_at=1764547200000,
)
NOTES = FileInfo(
    id="f_notes",
    name="notes.txt",
    size=812,
    content_type="text/plain",
    state="ready",
    reason=None,
    scan="unscanned",
    width=None,
    height=None,
    thumbnails=(),
    created_at=1764547200000,
)
WITH_FILES = attrs.evolve(
    MESSAGE, id="01JDQ7ZC3F", seq=44, body="", client_id="c-7f40", attachments=(MAP, NOTES)
)
"""A message posted with two attachments and no text."""
LARGEST_FILE = FileInfo(
    id="f" * MAX_ID_CHARS,
    name="é" * MAX_FILE_NAME_CHARS,
    size=MAX_SAFE_INT,
    content_type="t" * MAX_CONTENT_TYPE_CHARS,
    state="ready",
    reason="r" * MAX_ID_CHARS,
    scan="unscanned",
    width=MAX_SAFE_INT,
    height=MAX_SAFE_INT,
    thumbnails=tuple(
        Thumbnail(
            name="n" * MAX_ID_CHARS,
            width=MAX_SAFE_INT,
            height=MAX_SAFE_INT,
            size=MAX_SAFE_INT,
            content_type="t" * MAX_CONTENT_TYPE_CHARS,
        )
        for _ in range(MAX_THUMBNAILS)
    ),
    created_at=MAX_SAFE_INT,
)
LARGEST_MESSAGE = attrs.evolve(
    LONGEST_MESSAGE, body="🎉" * MAX_BODY_CHARS, attachments=(LARGEST_FILE,) * MAX_ATTACHMENTS
)
"""The largest message the server can send: its frames must fit MAX_FRAME_BYTES."""
ENVELOPE = MegolmEnvelope(
    algorithm=MEGOLM, sender_key="Hk2f", device_id="LAPTOP", session_id="s9x", ciphertext="AwgA"
)
LARGEST_ENVELOPE = MegolmEnvelope(
    algorithm=MEGOLM,
    sender_key="k" * MAX_KEY_CHARS,
    device_id="d" * MAX_ID_CHARS,
    session_id="s" * MAX_KEY_CHARS,
    ciphertext="c" * MAX_CIPHERTEXT_CHARS,
)
ENCRYPTED = attrs.evolve(MESSAGE, body="", encrypted=ENVELOPE)
LARGEST_ENCRYPTED = attrs.evolve(LARGEST_MESSAGE, body="", encrypted=LARGEST_ENVELOPE)
"""The largest message of an encrypted room: its frames must fit MAX_FRAME_BYTES too."""
OLM_MESSAGE = OlmEnvelope(
    algorithm=OLM, sender_key="Hk2f", ciphertext=OlmCiphertext(type=0, body="AwoGS")
)
DELETED = attrs.evolve(MESSAGE, body="")
"""A deleted message as a replay shows it (its `deleted` event follows)."""
AWKWARD_TEXT = 'quotes " and \\ backslash, \n newline, \u2028, emoji 🎉, 中文'

CLIENT_EXAMPLES: list[ClientFrame] = [
    Hello(token="eyJhbGciOiJFZERTQSJ9.e30.sig"),
    Hello(token="t" * MAX_TOKEN_CHARS, client="c" * MAX_CLIENT_CHARS),
    Hello(token="t", client=""),
    Ping(),
    Ping(nonce=""),
    Ping(nonce="n" * MAX_NONCE_CHARS),
    Join(ref="1", room="general"),
    Leave(ref="2", room="general"),
    Send(ref="3", room="general", client_id="c-7f3a", body="Hello, world!"),
    Send(ref="r" * MAX_ID_CHARS, room="x", client_id="y", body="🎉" * MAX_BODY_CHARS),
    Send(ref="4", room="general", client_id="c-7f3b", body=AWKWARD_TEXT),
    Send(ref="7", room="general", client_id="c-7f3c", body="Agreed.", thread="01JDQ7Z5K8"),
    Send(ref="16", room="general", client_id="c-7f40", body="", attachments=("f_map", "f_notes")),
    Send(
        ref="17",
        room="x",
        client_id="y",
        body="files",
        attachments=tuple(f"{i}" + "f" * (MAX_ID_CHARS - 1) for i in range(MAX_ATTACHMENTS)),
        thread="t",
    ),
    Edit(ref="8", room="general", message="01JDQ7Z5K8", client_id="c-7f3d", body="Hello!"),
    Edit(ref="9", room="x", message="m", client_id="c", body="é" * MAX_BODY_CHARS),
    Delete(ref="10", room="general", message="01JDQ7Z5K8", client_id="c-7f3e"),
    React(ref="11", room="general", message="01JDQ7Z5K8", client_id="c-7f3f", emoji="👍"),
    React(ref="12", room="general", message="m", client_id="c", emoji=":+1:", remove=True),
    React(ref="13", room="x", message="m", client_id="c", emoji="👩🏽\u200d🚀" * 16),
    MarkRead(ref="14", room="general", seq=42),
    MarkRead(ref="15", room="general", seq=0),
    Typing(room="general"),
    SetPresence(status="online"),
    SetPresence(status="idle"),
    Resume(ref="5", rooms={"general": 41, "random": 0}),
    Resume(ref="6", rooms={f"room-{i}": i for i in range(1000)}),
    Hello(token="t", device_id="LAPTOP"),
    Send(ref="18", room="r_dm", client_id="c-7f41", body="", encrypted=ENVELOPE),
    Send(ref="19", room="x", client_id="y", body="", encrypted=LARGEST_ENVELOPE, thread="t"),
    Edit(ref="20", room="r_dm", message="m", client_id="c-7f42", body="", encrypted=ENVELOPE),
    ToDeviceAck(ref="21", ids=("t_1", "t_2")),
    ToDeviceAck(ref="22", ids=tuple(f"t_{i}" for i in range(100))),
]

SERVER_EXAMPLES: list[ServerFrame] = [
    Ready(session_id="s_1", user_id="u_ada", heartbeat_interval_ms=25_000, resume_limit=500),
    Ready(session_id="s", user_id="u", heartbeat_interval_ms=1, resume_limit=0),
    Ready(
        session_id="s_1",
        user_id="u_ada",
        heartbeat_interval_ms=25_000,
        resume_limit=500,
        device_id="LAPTOP",
        one_time_key_count=3,
    ),
    Pong(nonce=None),
    Pong(nonce="17"),
    Ack(ref="1", room="general", seq=42),
    Ack(ref="2", room="general"),
    Ack(ref="3", room="general", seq=42, message=MESSAGE),
    Ack(ref="16", room="general", seq=44, message=WITH_FILES),
    Ack(ref="r", room="r", seq=MAX_SAFE_INT, message=LARGEST_MESSAGE),
    Ack(ref="4"),
    ErrorReply(ref="3", code=ErrorCode.NOT_JOINED, message="send.room: join 'general' first"),
    ErrorReply(ref=None, code=ErrorCode.INVALID_JSON, message=""),
    ErrorReply(ref="r", code=ErrorCode.INTERNAL, message="m" * MAX_TEXT_CHARS),
    MessageEvent(message=MESSAGE),
    MessageEvent(message=LONGEST_MESSAGE),
    MessageEvent(message=attrs.evolve(MESSAGE, body=AWKWARD_TEXT, edited_at=1_764_100_060_000)),
    MessageEvent(message=REPLY),
    MessageEvent(message=DELETED),
    MessageEvent(message=WITH_FILES),
    MessageEvent(message=LARGEST_MESSAGE),
    MessageEvent(message=ENCRYPTED),
    MessageEvent(message=LARGEST_ENCRYPTED),
    Ack(ref="r", room="r", seq=MAX_SAFE_INT, message=LARGEST_ENCRYPTED),
    EditedEvent(
        room="r_dm",
        seq=45,
        message="01JDQ7Z5K8",
        editor="u_ada",
        body="",
        edited_at=1_764_100_060_000,
        client_id="c-7f42",
        encrypted=ENVELOPE,
    ),
    ToDeviceEvent(
        id="t_P7JdHhE0mnaYS_lQ",
        sender="u_ada",
        sender_device="LAPTOP",
        message_id="c-91f2",
        content=OLM_MESSAGE,
        sent_at=1_764_100_000_000,
    ),
    ToDeviceEvent(
        id="t" * MAX_ID_CHARS,
        sender="u" * MAX_ID_CHARS,
        sender_device="d" * MAX_ID_CHARS,
        message_id="m" * MAX_ID_CHARS,
        content=OlmEnvelope(
            algorithm=OLM,
            sender_key="k" * MAX_KEY_CHARS,
            ciphertext=OlmCiphertext(type=1, body="b" * MAX_CIPHERTEXT_CHARS),
        ),
        sent_at=MAX_SAFE_INT,
    ),
    OneTimeKeysLow(device_id="LAPTOP", count=3, fallback_key=True),
    EditedEvent(
        room="general",
        seq=44,
        message="01JDQ7Z5K8",
        editor="u_ada",
        body="Hello!",
        edited_at=1_764_100_060_000,
        client_id="c-7f3d",
    ),
    EditedEvent(room="x", seq=1, message="m", editor="u", body="", edited_at=0, client_id="c"),
    DeletedEvent(
        room="general",
        seq=45,
        message="01JDQ7Z5K8",
        deleted_by="u_mod",
        deleted_at=1_764_100_120_000,
        client_id="c-7f3e",
    ),
    ReactionEvent(
        room="general",
        seq=46,
        message="01JDQ7Z5K8",
        user="u_bob",
        emoji="👍",
        present=True,
        at=1_764_100_090_000,
        client_id="c-9a01",
    ),
    ReactionEvent(
        room="x",
        seq=MAX_SAFE_INT,
        message="m",
        user="u",
        emoji="e" * MAX_EMOJI_CHARS,
        present=False,
        at=MAX_SAFE_INT,
        client_id="c",
    ),
    ReceiptEvent(room="general", user="u_bob", seq=42),
    NotificationEvent(
        id="n_P7JdHhE0mnaYS_lQ",
        room="general",
        message="01JDQ7Z9M2",
        seq=43,
        kind="reply",
        sender="u_bob",
        created_at=1_764_100_030_000,
        preview="Agreed.",
    ),
    NotificationEvent(
        id="n",
        room="x",
        message="m",
        seq=1,
        kind="mention",
        sender="u",
        created_at=0,
        preview="p" * MAX_PREVIEW_CHARS,
    ),
    NotificationEvent(
        id="n",
        room="x",
        message="m",
        seq=1,
        kind="room_mention",
        sender="u",
        created_at=0,
        preview="",
    ),
    TypingEvent(room="general", user="u_bob", expires_in_ms=6000),
    PresenceEvent(user="u_bob", status="online"),
    PresenceEvent(user="u_bob", status="offline"),
    Replayed(room="general", after_seq=40, last_seq=42, count=2),
    TooFar(room="general", after_seq=3, last_seq=9001),
    Notice(code="reconnect", message="node draining", reconnect_url="wss://b.example/ws"),
    Notice(code="shutdown", message="u" * MAX_TEXT_CHARS, reconnect_url="u" * MAX_URL_CHARS),
    Notice(code="info", message=""),
    RoomAdded(room="r_ops", name="ops", kind="private", seq=42, by="u_ada"),
    RoomAdded(room="r_dm", name="", kind="direct", seq=0, by="u_bob"),
    RoomAdded(room="r", name="n" * MAX_ROOM_NAME_CHARS, kind="public", seq=MAX_SAFE_INT, by="u"),
    RoomRemoved(room="r_ops", by="u_ada"),
    RoomInvited(room="r_ops", name="ops", by="u_ada"),
    FileUpdate(file=MAP),
    FileUpdate(
        file=FileInfo(
            id="f_eicar",
            name="invoice.pdf",
            size=68,
            content_type="application/pdf",
            state="rejected",
            reason="infected",
            scan=None,
            width=None,
            height=None,
            thumbnails=(),
            created_at=1764547200000,
        )
    ),
]

ALL_EXAMPLES: list[Frame] = [*CLIENT_EXAMPLES, *SERVER_EXAMPLES]


def frame_id(frame: Frame) -> str:
    """A short test id (pytest numbers repeats): the frame's class name."""
    return type(frame).__name__


def wire_fields(cls: type[Any]) -> list[attrs.Attribute[Any]]:
    """The attributes whose names are the keys of `cls`'s JSON object (after `type`)."""
    return list(attrs.fields(Message if cls is MessageEvent else cls))


# --- hypothesis strategies of valid frames, derived from the field specs ----

# Lone surrogates cannot be encoded as UTF-8, so no decoded frame holds them.
_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
# SPACE_OR_CONTROL is these categories (test_fields checks it).
_SPACELESS_CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cc", "Zs", "Zl", "Zp"))


def _values(spec: Spec) -> st.SearchStrategy[Any]:
    match spec:
        case StrSpec(min_length=low, max_length=high, spaceless=spaceless):
            characters = _SPACELESS_CHARACTERS if spaceless else _CHARACTERS
            return st.text(characters, min_size=low, max_size=min(high, low + 20))
        case IntSpec(minimum=low, maximum=high):
            return st.integers(low, high)
        case BoolSpec():
            return st.booleans()
        case ChoiceSpec(values=values, members=members):
            return st.sampled_from(list(members.values()) if members else values)
        case MapSpec(key=key, value=value, min_entries=low, max_entries=high):
            return st.dictionaries(_values(key), _values(value), min_size=low, max_size=low + 4)
        case ObjectSpec(cls=cls):
            return instances(cls)
        case ListSpec(cls=cls, min_items=low, max_items=high):
            return st.lists(instances(cls), min_size=low, max_size=high).map(tuple)
        case StrListSpec(item=item, min_items=low, max_items=high, unique=unique):
            return st.lists(_values(item), min_size=low, max_size=high, unique=unique).map(tuple)
        case NullableSpec(inner=inner):
            return st.none() | _values(inner)


def instances(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Valid instances of the frame (or Message) class `cls`."""
    fields = st.fixed_dictionaries({field.name: _values(spec) for field, spec in field_specs(cls)})
    if names := getattr(cls, "NONEMPTY_ONE_OF", ()):  # a rule across fields
        fields = fields.filter(lambda values: any(values[name] for name in names))
    return fields.map(lambda values: cls(**values))


client_frames = st.sampled_from(CLIENT_CLASSES).flatmap(instances)
server_frames = st.sampled_from(SERVER_CLASSES).flatmap(instances)
