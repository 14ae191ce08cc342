"""Property tests: decoding is total (a frame or ProtocolError, nothing else, for any input),
valid frames round-trip, and the decoder accepts exactly what the JSON Schema accepts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.protocol import (
    MAX_BODY_CHARS,
    MAX_DEPTH,
    MAX_EMOJI_CHARS,
    MAX_ID_CHARS,
    MAX_SAFE_INT,
    ErrorCode,
    ErrorReply,
    Frame,
    Message,
    ProtocolError,
    decode_client_frame,
    decode_server_frame,
    encode,
)
from tests.protocol.examples import (
    CLIENT_CLASSES,
    DECODING_CODES,
    SERVER_CLASSES,
    client_frames,
    server_frames,
    wire_fields,
)
from tests.protocol.schema_check import SCHEMA, is_valid

Decoder = Callable[[bytes | str], Frame]
DIRECTIONS: list[tuple[Decoder, str]] = [
    (decode_client_frame, "ClientFrame"),
    (decode_server_frame, "ServerFrame"),
]
TAGS = sorted({cls.TYPE for cls in CLIENT_CLASSES + SERVER_CLASSES})
FIELD_NAMES = sorted(
    {
        field.name
        for cls in (*CLIENT_CLASSES, *SERVER_CLASSES, Message)
        for field in attrs.fields(cls)
    }
)

# Many examples, but the whole protocol suite stays within a few seconds.
MANY = settings(max_examples=400, deadline=None)
SOME = settings(max_examples=200, deadline=None)


def outcome(decode: Decoder, data: bytes | str) -> Frame | ProtocolError:
    """Decode `data`; any exception but ProtocolError escapes and fails the test."""
    try:
        return decode(data)
    except ProtocolError as exc:
        error = exc
    assert error.code in DECODING_CODES
    # Every decoding error fits the `error` frame the server will answer with.
    ErrorReply(ref=error.ref, code=error.code, message=error.message)
    return error


def json_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(-1, 2**64 + 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=20,
    )


ANY_TEXT = st.text()
UTF8_TEXT = st.text(st.characters(codec="utf-8"))
EDGE_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [
        "",
        "x",
        "x" * MAX_ID_CHARS,
        "x" * (MAX_ID_CHARS + 1),
        "b" * MAX_BODY_CHARS,
        "b" * (MAX_BODY_CHARS + 1),
        "online",
        "offline",
        "invalid_json",
        "mention",
        "👍",
        ":+1:",
        "👍\n",
        " ",
        "a b",
        "\u3000",
        "x" * (MAX_EMOJI_CHARS + 1),
        -1,
        0,
        1,
        MAX_SAFE_INT,
        MAX_SAFE_INT + 1,
        1.0,
        True,
        False,
        None,
        {},
        {"general": 1},
        {"general": -1},
        {"": 1},
        [],
    ]
)


@MANY
@given(st.binary(max_size=200))
def test_any_bytes(data: bytes) -> None:
    for decode, _ in DIRECTIONS:
        outcome(decode, data)


@MANY
@given(ANY_TEXT)
def test_any_text(data: str) -> None:
    for decode, _ in DIRECTIONS:
        outcome(decode, data)


@MANY
@given(json_values(ANY_TEXT), st.booleans())
def test_any_json_value(value: Any, as_bytes: bool) -> None:
    text = json.dumps(value, ensure_ascii=False)
    data = text.encode("utf-8", "surrogatepass") if as_bytes else text
    for decode, _ in DIRECTIONS:
        outcome(decode, data)


ANY_FRAME = client_frames | server_frames
# Edge values are drawn twice as often as random JSON: they probe the limits.
MUTANT_VALUES = st.one_of(EDGE_VALUES, EDGE_VALUES, json_values(UTF8_TEXT))
MUTANT_KEYS = st.sampled_from(FIELD_NAMES) | UTF8_TEXT


@st.composite
def mutated_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A valid frame's JSON object with one or two fields replaced, deleted, added or retagged."""
    obj: dict[str, Any] = orjson.loads(encode(draw(ANY_FRAME)))
    for _ in range(draw(st.integers(1, 2))):
        match draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "retag"])):
            case "delete" if obj:
                del obj[draw(st.sampled_from(sorted(obj)))]
            case "replace" if obj:
                obj[draw(st.sampled_from(sorted(obj)))] = draw(MUTANT_VALUES)
            case "retag":
                obj["type"] = draw(st.sampled_from(TAGS))
            case _:
                obj[draw(MUTANT_KEYS)] = draw(MUTANT_VALUES)
    return obj


@settings(max_examples=1000, deadline=None)
@given(mutated_frames())
def test_mutated_frames_are_decoded_exactly_when_the_schema_accepts_them(obj: Any) -> None:
    data = json.dumps(obj, ensure_ascii=False)
    for decode, union in DIRECTIONS:
        result = outcome(decode, data)
        valid = is_valid(obj, SCHEMA["$defs"][union])
        if isinstance(result, ProtocolError):
            assert not valid, result
            continue
        assert valid
        # Decoding loses and changes nothing; omitted optional fields get their defaults.
        reencoded = orjson.loads(encode(result))
        assert {key: reencoded[key] for key in obj} == obj
        defaults = {  # as JSON: a tuple default is an array
            field.name: orjson.loads(orjson.dumps(field.default))
            for field in wire_fields(type(result))
            if field.default is not attrs.NOTHING
        }
        assert all(reencoded[key] == defaults[key] for key in reencoded.keys() - obj.keys())


@SOME
@given(json_values(UTF8_TEXT))
def test_random_json_is_decoded_exactly_when_the_schema_accepts_it(value: Any) -> None:
    data = json.dumps(value)
    for decode, union in DIRECTIONS:
        accepted = not isinstance(outcome(decode, data), ProtocolError)
        assert accepted == is_valid(value, SCHEMA["$defs"][union])


@MANY
@given(client_frames)
def test_valid_client_frames_round_trip(frame: Frame) -> None:
    data = encode(frame)
    assert decode_client_frame(data) == frame
    assert is_valid(orjson.loads(data), SCHEMA["$defs"]["ClientFrame"])


@MANY
@given(server_frames)
def test_valid_server_frames_round_trip(frame: Frame) -> None:
    data = encode(frame)
    assert decode_server_frame(data) == frame
    assert is_valid(orjson.loads(data), SCHEMA["$defs"]["ServerFrame"])


@MANY
@given(st.integers(1, 3000), st.lists(st.booleans(), min_size=1, max_size=8), st.booleans())
def test_deep_nesting(depth: int, pattern: list[bool], inside_a_frame: bool) -> None:
    # Level i opens an array if pattern[i % len(pattern)], else an object; the core is 1.
    arrays = [pattern[level % len(pattern)] for level in range(depth)]
    opening = "".join("[" if array else '{"k":' for array in arrays)
    closing = "".join("]" if array else "}" for array in reversed(arrays))
    nested = opening + "1" + closing
    if inside_a_frame:
        nested = '{"type":"join","ref":"r1","room":' + nested + "}"
        depth += 1
    for decode, _ in DIRECTIONS:
        result = outcome(decode, nested)
        assert isinstance(result, ProtocolError)
        assert (result.code is ErrorCode.TOO_DEEP) == (depth > MAX_DEPTH)
