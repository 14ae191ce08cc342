"""Encoding and strict decoding: round trips, the shape of encoded frames, every error code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chorus.protocol import (
    MAX_DEPTH,
    MAX_EMOJI_CHARS,
    MAX_FRAME_BYTES,
    MAX_ID_CHARS,
    MAX_SAFE_INT,
    Ack,
    ClientFrame,
    ErrorCode,
    ErrorReply,
    Frame,
    Message,
    MessageEvent,
    ProtocolError,
    React,
    Resume,
    Send,
    ServerFrame,
    decode_client_frame,
    decode_server_frame,
    encode,
    encode_message_event,
    encode_send_ack,
)
from chorus.protocol._fields import ConstraintViolation
from tests.protocol.examples import (
    ALL_EXAMPLES,
    AWKWARD_TEXT,
    CLIENT_CLASSES,
    CLIENT_EXAMPLES,
    DECODING_CODES,
    DELETED,
    LARGEST_MESSAGE,
    MESSAGE,
    SERVER_CLASSES,
    SERVER_EXAMPLES,
    frame_id,
    instances,
)

SEND = {"type": "send", "ref": "r1", "room": "general", "client_id": "c1", "body": "hi"}
REACT = {"type": "react", "ref": "r1", "room": "general", "message": "m1", "client_id": "c1"}


def json(obj: Any) -> bytes:
    return orjson.dumps(obj)


def client_error(data: bytes | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_client_frame(data)
    return info.value


def server_error(data: bytes | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_server_frame(data)
    return info.value


def test_examples_cover_every_frame_class() -> None:
    assert {type(frame) for frame in CLIENT_EXAMPLES} == set(CLIENT_CLASSES)
    assert {type(frame) for frame in SERVER_EXAMPLES} == set(SERVER_CLASSES)


@pytest.mark.parametrize("frame", CLIENT_EXAMPLES, ids=frame_id)
def test_client_frames_round_trip(frame: ClientFrame) -> None:
    data = encode(frame)
    assert decode_client_frame(data) == frame
    assert decode_client_frame(data.decode()) == frame


@pytest.mark.parametrize("frame", SERVER_EXAMPLES, ids=frame_id)
def test_server_frames_round_trip(frame: ServerFrame) -> None:
    data = encode(frame)
    assert decode_server_frame(data) == frame
    assert decode_server_frame(data.decode()) == frame


@pytest.mark.parametrize("frame", ALL_EXAMPLES, ids=frame_id)
def test_encoding_is_one_flat_object_with_type_first_and_every_field(frame: Frame) -> None:
    obj = orjson.loads(encode(frame))
    keys = list(obj)
    assert keys[0] == "type"
    assert obj["type"] == type(frame).TYPE
    fields_of = type(frame.message) if isinstance(frame, MessageEvent) else type(frame)
    assert keys[1:] == [field.name for field in attrs.fields(fields_of)]


def test_optional_fields_are_written_as_null() -> None:
    assert orjson.loads(encode(Ack(ref="1"))) == {
        "type": "ack",
        "ref": "1",
        "room": None,
        "seq": None,
        "message": None,
    }


def test_message_event_is_flat() -> None:
    assert encode(MessageEvent(message=MESSAGE)) == (
        b'{"type":"message","id":"01JDQ7Z5K8","room":"general","seq":42,"sender":"u_ada",'
        b'"body":"Hello, world!","client_id":"c-7f3a","created_at":1764100000000,"edited_at":null,'
        b'"thread":null,"attachments":[],"encrypted":null}'
    )


def test_ack_nests_the_message_without_a_type() -> None:
    obj = orjson.loads(encode(Ack(ref="3", room="general", seq=42, message=MESSAGE)))
    assert obj["message"] == {
        key: value
        for key, value in orjson.loads(encode(MessageEvent(message=MESSAGE))).items()
        if key != "type"
    }


@pytest.mark.parametrize(
    "message",
    [MESSAGE, DELETED, LARGEST_MESSAGE, attrs.evolve(MESSAGE, body=AWKWARD_TEXT)],
    ids=["message", "deleted", "largest", "awkward text"],
)
@pytest.mark.parametrize("ref", ["3", AWKWARD_TEXT[:64]], ids=["ref", "awkward ref"])
def test_a_send_ack_built_from_the_message_event_is_the_encoded_ack(
    message: Message, ref: str
) -> None:
    ack = Ack(ref=ref, room=message.room, seq=message.seq, message=message)
    event = encode(MessageEvent(message=message))
    assert encode_send_ack(ref, message.room, message.seq, event) == encode(ack)


@given(instances(Message), st.text(min_size=1, max_size=64).filter(lambda ref: "\x00" not in ref))
def test_a_send_ack_built_from_the_message_event_is_the_encoded_ack_for_any_message(
    message: Message, ref: str
) -> None:
    ack = Ack(ref=ref, room=message.room, seq=message.seq, message=message)
    event = encode(MessageEvent(message=message))
    assert encode_send_ack(ref, message.room, message.seq, event) == encode(ack)


def message_fields(message: Message) -> dict[str, Any]:
    return attrs.asdict(message, recurse=False)


@given(instances(Message))
def test_a_message_event_from_fields_is_the_encoded_event(message: Message) -> None:
    event = encode(MessageEvent(message=message))
    assert encode_message_event(**message_fields(message)) == event


def outcome(write: Callable[[], bytes]) -> bytes | tuple[type[Exception], str]:
    try:
        return write()
    except (TypeError, ConstraintViolation) as exc:
        return type(exc), str(exc)


MESSAGE_FIELDS = [field.name for field in attrs.fields(Message)]
# Values of every JSON type and some that are none, for any field of a message.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.just(MAX_SAFE_INT + 1),
    st.text(max_size=3),
    st.just("x" * (MAX_ID_CHARS + 1)),
    st.just("\x00"),
    st.just(()),
    st.just(("not a file",)),
    st.just(3.5),
)


@given(
    instances(Message), st.sampled_from([field.name for field in attrs.fields(Message)]), ANY_VALUE
)
def test_a_message_event_from_fields_checks_them_as_the_message_does(
    message: Message, name: str, value: object
) -> None:
    # Either both refuse the fields, with the same error, or both write the same bytes.
    fields = {**message_fields(message), name: value}
    expected = outcome(lambda: encode(MessageEvent(message=Message(**fields))))
    assert outcome(lambda: encode_message_event(**fields)) == expected


def test_a_message_event_from_fields_needs_every_field() -> None:
    fields = message_fields(MESSAGE)
    del fields["thread"]  # one with a default in `Message`
    with pytest.raises(TypeError, match="thread"):
        encode_message_event(**fields)


def test_a_send_ack_is_only_built_from_a_message_event() -> None:
    with pytest.raises(ValueError, match="not an encoded message event"):
        encode_send_ack("3", "general", 42, encode(Ack(ref="3", message=MESSAGE)))


def test_error_codes_decode_to_the_enum() -> None:
    frame = decode_server_frame(
        json({"type": "error", "ref": None, "code": "forbidden", "message": ""})
    )
    assert isinstance(frame, ErrorReply)
    assert frame.code is ErrorCode.FORBIDDEN


def test_encode_refuses_what_is_not_a_frame() -> None:
    with pytest.raises(TypeError, match="not a protocol frame"):
        encode(MESSAGE)  # type: ignore[arg-type]


# --- one case per decoding error code ----------------------------------------


def case(
    name: str, data: bytes | str, code: ErrorCode, fragment: str, ref: str | None = None
) -> Any:
    return pytest.param(data, code, fragment, ref, id=name)


ERROR_CASES = [
    case("too_large", b" " * (MAX_FRAME_BYTES + 1), ErrorCode.TOO_LARGE, "larger than 65536"),
    case("invalid_utf8", b'{"type":"ping","nonce":"\xff"}', ErrorCode.INVALID_UTF8, "UTF-8"),
    case("lone_surrogate", '{"type":"ping","nonce":"\ud800"}', ErrorCode.INVALID_UTF8, "UTF-8"),
    case("invalid_json", b'{"type":"ping",}', ErrorCode.INVALID_JSON, "not valid JSON"),
    case("empty", b"", ErrorCode.INVALID_JSON, "not valid JSON"),
    case("nan", b"NaN", ErrorCode.INVALID_JSON, "not valid JSON"),
    case(
        "too_deep",
        json({"type": "join", "ref": "r1", "room": [[[[[[[[]]]]]]]]}),
        ErrorCode.TOO_DEEP,
        f"deeper than {MAX_DEPTH} levels",
    ),
    case("array", b'["type", "ping"]', ErrorCode.NOT_AN_OBJECT, "not an array"),
    case("string", b'"ping"', ErrorCode.NOT_AN_OBJECT, "not a string"),
    case("no_type", json({"ref": "r1"}), ErrorCode.MISSING_FIELD, "type: required", "r1"),
    case(
        "type_not_str",
        json({"type": 1, "ref": "r1"}),
        ErrorCode.WRONG_TYPE,
        "type: expected a string, got an integer",
        "r1",
    ),
    case(
        "unknown_type",
        json({"type": "pong", "ref": "r1"}),
        ErrorCode.UNKNOWN_TYPE,
        "type: 'pong' is not a client frame type",
        "r1",
    ),
    case(
        "extra_field",
        json(SEND | {"colour": "red"}),
        ErrorCode.EXTRA_FIELD,
        "send: unknown field 'colour'",
        "r1",
    ),
    case(
        "missing_field",
        json({"type": "send", "ref": "r1", "room": "general", "body": "hi"}),
        ErrorCode.MISSING_FIELD,
        "send.client_id: required field is missing",
        "r1",
    ),
    case(
        "wrong_type",
        json(SEND | {"body": 5}),
        ErrorCode.WRONG_TYPE,
        "send.body: expected a string, got an integer",
        "r1",
    ),
    case(
        "invalid_value",
        json(SEND | {"body": ""}),
        ErrorCode.INVALID_VALUE,
        "send.body: must not be empty when attachments and encrypted are empty",
        "r1",
    ),
    case(
        "empty_attachments",
        json(SEND | {"body": "", "attachments": []}),
        ErrorCode.INVALID_VALUE,
        "send.body: must not be empty when attachments and encrypted are empty",
        "r1",
    ),
    case(
        "body_too_long",
        json(SEND | {"body": "b" * 4001, "attachments": ["f_1"]}),
        ErrorCode.INVALID_VALUE,
        "send.body: must be at most 4000 characters long",
        "r1",
    ),
    case(
        "repeated_attachment",
        json(SEND | {"attachments": ["f_1", "f_2", "f_1"]}),
        ErrorCode.INVALID_VALUE,
        "send.attachments: must not repeat an item ('f_1' is there twice)",
        "r1",
    ),
    case(
        "too_many_attachments",
        json(SEND | {"attachments": [f"f_{i}" for i in range(11)]}),
        ErrorCode.INVALID_VALUE,
        "send.attachments: must have between 0 and 10 items",
        "r1",
    ),
    case(
        "attachment_not_a_string",
        json(SEND | {"attachments": ["f_1", {"id": "f_2"}]}),
        ErrorCode.WRONG_TYPE,
        "send.attachments[]: expected a string, got an object",
        "r1",
    ),
    case(
        "attachment_empty_id",
        json(SEND | {"attachments": [""]}),
        ErrorCode.INVALID_VALUE,
        "send.attachments: item '' must be 1 to 64 characters long",
        "r1",
    ),
]


@pytest.mark.parametrize(("data", "code", "fragment", "ref"), ERROR_CASES)
def test_decoding_errors(
    data: bytes | str, code: ErrorCode, fragment: str, ref: str | None
) -> None:
    error = client_error(data)
    assert (error.code, error.ref) == (code, ref)
    assert fragment in error.message
    assert str(error) == f"{code}: {error.message}"


def test_every_decoding_error_code_has_a_case() -> None:
    assert {param.values[1] for param in ERROR_CASES} == DECODING_CODES


# --- sizes ---------------------------------------------------------------------


@pytest.mark.parametrize("as_str", [False, True])
def test_size_limit_is_in_utf8_bytes(as_str: bool) -> None:
    # Whitespace pads a valid frame to the limit exactly, then one byte over it.
    frame = '{"type":"ping","nonce":"é"}'
    at_limit = frame + " " * (MAX_FRAME_BYTES - len(frame.encode()))
    over = at_limit + " "
    decode_client_frame(at_limit if as_str else at_limit.encode())
    assert client_error(over if as_str else over.encode()).code is ErrorCode.TOO_LARGE


def test_multibyte_text_over_the_limit_in_bytes_but_not_in_characters_is_too_large() -> None:
    text = '{"type":"ping","nonce":null,"x":"' + "é" * (MAX_FRAME_BYTES // 2) + '"}'
    assert len(text) < MAX_FRAME_BYTES < len(text.encode())
    assert client_error(text).code is ErrorCode.TOO_LARGE


def test_size_is_checked_before_anything_else() -> None:
    assert client_error(b"\xff" * (MAX_FRAME_BYTES + 1)).code is ErrorCode.TOO_LARGE


# --- depth ---------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    """A join frame whose extra field makes the document `depth` levels deep."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return {"type": "join", "ref": "r1", "room": "general", "deep": value}


def test_depth_limit_counts_the_frame_object_as_level_one() -> None:
    # At the limit the frame gets past the depth check (and fails later).
    assert client_error(json(nested(MAX_DEPTH))).code is ErrorCode.EXTRA_FIELD
    assert client_error(json(nested(MAX_DEPTH + 1))).code is ErrorCode.TOO_DEEP


def test_depth_errors_carry_no_ref() -> None:
    # The depth check runs before the object is looked at.
    assert client_error(json(nested(MAX_DEPTH + 1))).ref is None


def test_deeper_than_orjson_parses() -> None:
    # orjson stops at 1024 levels; such input is still "too deep", not "invalid".
    assert client_error(b"[" * 5000 + b"]" * 5000).code is ErrorCode.TOO_DEEP
    assert client_error("{" + '"a":{' * 3000).code is ErrorCode.TOO_DEEP


# --- strict types: nothing is coerced -------------------------------------------


@pytest.mark.parametrize(
    ("value", "got"),
    [(True, "a boolean"), (1.0, "a number"), ("1", "a string"), (None, "null"), ([], "an array")],
)
def test_integers_are_strict(value: object, got: str) -> None:
    data = json({"type": "resume", "ref": "r1", "rooms": {"general": value}})
    error = client_error(data)
    assert error.code is ErrorCode.WRONG_TYPE
    assert error.message == f"resume.rooms['general']: expected an integer, got {got}"


def test_big_integers_are_out_of_range_and_huge_ones_are_numbers() -> None:
    out_of_range = client_error(
        json({"type": "resume", "ref": "r1", "rooms": {"a": MAX_SAFE_INT + 1}})
    )
    assert out_of_range.code is ErrorCode.INVALID_VALUE
    assert out_of_range.message == "resume.rooms: entry 'a' must be between 0 and 9007199254740991"
    huge = b'{"type":"resume","ref":"r1","rooms":{"a":100000000000000000000000}}'
    assert client_error(huge).code is ErrorCode.WRONG_TYPE


def test_strings_are_strict() -> None:
    error = client_error(json(SEND | {"room": 7}))
    assert (error.code, error.message) == (
        ErrorCode.WRONG_TYPE,
        "send.room: expected a string, got an integer",
    )


def test_null_is_only_accepted_where_documented() -> None:
    assert decode_client_frame(json({"type": "ping", "nonce": None})) == decode_client_frame(
        json({"type": "ping"})
    )
    error = client_error(json(SEND | {"body": None}))
    assert error.message == "send.body: expected a string, got null"
    error = client_error(json({"type": "hello", "token": "t", "client": 3}))
    assert error.message == "hello.client: expected a string or null, got an integer"


def test_enum_values_are_checked() -> None:
    error = client_error(json({"type": "presence", "status": "offline"}))
    assert error.code is ErrorCode.INVALID_VALUE
    assert error.message == "presence.status: must be one of 'online', 'idle'"
    error = server_error(json({"type": "error", "ref": None, "code": "oops", "message": ""}))
    assert error.code is ErrorCode.INVALID_VALUE
    assert error.message.startswith("error.code: must be one of 'invalid_json', ")


def test_type_is_checked_per_direction() -> None:
    assert client_error(json({"type": "ready"})).code is ErrorCode.UNKNOWN_TYPE
    error = server_error(json({"type": "send"}))
    assert (error.code, error.message) == (
        ErrorCode.UNKNOWN_TYPE,
        "type: 'send' is not a server frame type",
    )


def test_same_tag_has_each_direction_s_shape() -> None:
    typing_json = json({"type": "typing", "room": "general"})
    assert decode_client_frame(typing_json).TYPE == "typing"
    assert server_error(typing_json).message == "typing.user: required field is missing"


# --- order of checks ------------------------------------------------------------


def test_unknown_fields_are_reported_before_missing_ones() -> None:
    error = client_error(json({"type": "send", "ref": "r1", "bogus": 1}))
    assert error.code is ErrorCode.EXTRA_FIELD


def test_missing_fields_are_reported_before_wrong_types() -> None:
    error = client_error(json({"type": "send", "ref": "r1", "room": 1, "body": 2}))
    assert error.code is ErrorCode.MISSING_FIELD


def test_wrong_types_are_reported_before_broken_limits() -> None:
    error = client_error(json(SEND | {"room": "", "body": 5}))
    assert (error.code, error.message) == (
        ErrorCode.WRONG_TYPE,
        "send.body: expected a string, got an integer",
    )


def test_nested_fields_are_named_by_path() -> None:
    message = orjson.loads(encode(Ack(ref="3", message=MESSAGE)))["message"]
    cases = {
        "ack.message: expected an object or null, got an array": [],
        "ack.message: unknown field 'type'": message | {"type": "message"},
        "ack.message.seq: required field is missing": {
            k: v for k, v in message.items() if k != "seq"
        },
        "ack.message.seq: expected an integer, got a string": message | {"seq": "1"},
        "ack.message.seq: must be between 1 and 9007199254740991": message | {"seq": 0},
    }
    for expected, value in cases.items():
        error = server_error(json({"type": "ack", "ref": "r9", "message": value}))
        assert (error.message, error.ref) == (expected, "r9")


def test_message_event_fields_are_named_after_the_frame() -> None:
    event = orjson.loads(encode(MessageEvent(message=MESSAGE)))
    assert server_error(json(event | {"body": "b" * 4001})).message == (
        "message.body: must be at most 4000 characters long"
    )
    assert server_error(json(event | {"extra": 1})).message == "message: unknown field 'extra'"


def test_resume_limits() -> None:
    assert client_error(json({"type": "resume", "ref": "r1", "rooms": {}})).message == (
        "resume.rooms: must have between 1 and 1000 entries"
    )
    error = client_error(json({"type": "resume", "ref": "r1", "rooms": {"": 1}}))
    assert error.message == "resume.rooms: key '' must be 1 to 64 characters long"
    too_many = {f"r{i}": 0 for i in range(1001)}
    assert client_error(json({"type": "resume", "ref": "r1", "rooms": too_many})).code is (
        ErrorCode.INVALID_VALUE
    )


# --- rich messaging: threads, deleted messages, reactions -------------------------


def test_thread_and_remove_are_optional() -> None:
    assert decode_client_frame(json(SEND)) == Send(
        ref="r1", room="general", client_id="c1", body="hi", thread=None
    )
    react = decode_client_frame(json(REACT | {"emoji": "👍"}))
    assert isinstance(react, React)
    assert react.remove is False


def test_a_message_without_thread_still_decodes() -> None:
    # Frames written before `thread` existed stay valid: it is optional, null by default.
    event = orjson.loads(encode(MessageEvent(message=MESSAGE)))
    del event["thread"]
    assert decode_server_frame(json(event)) == MessageEvent(message=MESSAGE)


def test_only_a_stored_message_may_have_an_empty_body() -> None:
    # A deleted message replayed from history has an empty body; a send never has one.
    assert decode_server_frame(encode(MessageEvent(message=DELETED))) == MessageEvent(
        message=DELETED
    )
    assert client_error(json(SEND | {"body": ""})).code is ErrorCode.INVALID_VALUE
    edit = {"type": "edit", "ref": "r1", "room": "g", "message": "m", "client_id": "c", "body": ""}
    assert (
        client_error(json(edit)).message == "edit.body: must not be empty when encrypted is empty"
    )


@pytest.mark.parametrize(
    "emoji",
    [
        "👍",
        "👍🏽",
        "👩🏽\u200d🚀",
        "❤\ufe0f",
        "🇫🇷",
        ":+1:",
        ":thumbs_up:",
        "x",
        "e" * MAX_EMOJI_CHARS,
    ],
)
def test_emoji_may_be_any_text_without_whitespace(emoji: str) -> None:
    frame = decode_client_frame(json(REACT | {"emoji": emoji}))
    assert isinstance(frame, React)
    assert frame.emoji == emoji


REFUSED_EMOJI = [
    *[" ", "👍 ", ":+1: ", "a b", "👍\n"],
    *["\t", "\n", "\r", "\x0b", "\x1f", "\x7f", "\x85"],  # controls (Cc)
    *["\xa0", "\u1680", "\u2000", "\u200a", "\u202f", "\u205f", "\u3000"],  # spaces (Zs)
    *["\u2028", "\u2029"],  # line and paragraph separators (Zl, Zp)
]


@pytest.mark.parametrize("emoji", REFUSED_EMOJI, ids=ascii)
def test_emoji_with_whitespace_or_control_characters_is_refused(emoji: str) -> None:
    error = client_error(json(REACT | {"emoji": emoji}))
    assert (error.code, error.message) == (
        ErrorCode.INVALID_VALUE,
        "react.emoji: must not contain whitespace or control characters",
    )
    with pytest.raises(ValueError, match="whitespace"):
        React(ref="r", room="g", message="m", client_id="c", emoji=emoji)


def test_emoji_length_is_checked_first() -> None:
    assert client_error(json(REACT | {"emoji": ""})).message == (
        "react.emoji: must be 1 to 64 characters long"
    )
    assert client_error(json(REACT | {"emoji": "e" * (MAX_EMOJI_CHARS + 1)})).message == (
        "react.emoji: must be 1 to 64 characters long"
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [(1, "an integer"), (0, "an integer"), ("true", "a string"), (None, "null"), ({}, "an object")],
)
def test_booleans_are_strict(value: object, got: str) -> None:
    error = client_error(json(REACT | {"emoji": "👍", "remove": value}))
    assert (error.code, error.message) == (
        ErrorCode.WRONG_TYPE,
        f"react.remove: expected a boolean, got {got}",
    )


def test_notification_kinds_are_checked() -> None:
    notification = {
        "type": "notification",
        "id": "n_1",
        "room": "general",
        "message": "m_1",
        "seq": 4,
        "kind": "like",
        "sender": "u_bob",
        "created_at": 0,
        "preview": "",
    }
    assert server_error(json(notification)).message == (
        "notification.kind: must be one of 'mention', 'room_mention', 'reply'"
    )


def test_room_events_have_a_positive_seq() -> None:
    receipt = {"type": "receipt", "room": "general", "user": "u_bob", "seq": 0}
    assert decode_server_frame(json(receipt)).TYPE == "receipt"
    deleted = {
        "type": "deleted",
        "room": "general",
        "seq": 0,
        "message": "m_1",
        "deleted_by": "u_ada",
        "deleted_at": 0,
        "client_id": "c1",
    }
    assert server_error(json(deleted)).message == (
        "deleted.seq: must be between 1 and 9007199254740991"
    )


# --- ref propagation ---------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [None, "", "x" * (MAX_ID_CHARS + 1), 5, ["r1"]],
    ids=["null", "empty", "long", "int", "list"],
)
def test_an_invalid_ref_is_not_propagated(ref: object) -> None:
    assert client_error(json(SEND | {"ref": ref})).ref is None


def test_a_valid_ref_is_propagated_even_on_frames_without_one() -> None:
    # A client that sends `ref` on a frame with no ref field still learns which frame failed.
    error = client_error(json({"type": "typing", "room": "general", "ref": "t1"}))
    assert (error.code, error.ref) == (ErrorCode.EXTRA_FIELD, "t1")


def test_longest_ref_is_propagated() -> None:
    ref = "x" * MAX_ID_CHARS
    assert client_error(json(SEND | {"ref": ref, "body": ""})).ref == ref


# --- construction enforces the same limits ---------------------------------------


def test_frames_cannot_be_built_with_broken_limits() -> None:
    with pytest.raises(ValueError, match=r"^body: must be at most 4000 characters long$"):
        Send(ref="r", room="x", client_id="c", body="b" * 4001)
    with pytest.raises(
        ValueError, match=r"^body: must not be empty when attachments and encrypted are empty$"
    ):
        Send(ref="r", room="x", client_id="c", body="")
    with pytest.raises(ValueError, match=r"^attachments: must not repeat an item \('f' is"):
        Send(ref="r", room="x", client_id="c", body="", attachments=("f", "g", "f"))
    with pytest.raises(ValueError, match="entry 'a' must be between"):
        Resume(ref="r", rooms={"a": -1})


def test_frames_cannot_be_built_with_wrong_types() -> None:
    with pytest.raises(TypeError, match=r"^seq: expected an integer or null, got bool$"):
        Ack(ref="r", seq=True)
    with pytest.raises(TypeError, match=r"^message: expected an object or null, got str$"):
        Ack(ref="r", message="hello")  # type: ignore[arg-type]


def test_text_with_a_nul_character_is_refused() -> None:
    # PostgreSQL text cannot store U+0000; no chat text needs it.
    frame = b'{"type":"send","ref":"r","room":"x","client_id":"c","body":"a\\u0000b"}'
    with pytest.raises(ProtocolError) as refused:
        decode_client_frame(frame)
    assert refused.value.code == ErrorCode.INVALID_VALUE
    assert refused.value.ref == "r"


def test_the_largest_message_fits_a_frame() -> None:
    # Ten attachments with every field at its limit, and the longest body in
    # 4-byte characters: a server frame never outgrows what clients accept.
    for frame in (
        MessageEvent(message=LARGEST_MESSAGE),
        Ack(ref="r" * MAX_ID_CHARS, room="r", seq=MAX_SAFE_INT, message=LARGEST_MESSAGE),
    ):
        data = encode(frame)
        assert len(data) <= MAX_FRAME_BYTES
        assert decode_server_frame(data) == frame
