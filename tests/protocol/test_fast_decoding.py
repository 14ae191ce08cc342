"""The decoders' fast path (`_codec._fast_decoder`) changes no outcome: for any input,
`decode_client_frame` / `decode_server_frame` return an equal frame, or raise the same
error (code, message and ref), as the generic path (`_codec._decode_generic`) alone."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus.protocol import (
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_FRAME_BYTES,
    MAX_ID_CHARS,
    Frame,
    ProtocolError,
    Send,
    _codec,
    decode_client_frame,
    decode_server_frame,
    encode,
)
from tests.protocol.examples import CLIENT_CLASSES, ENVELOPE, SERVER_CLASSES
from tests.protocol.test_totality import (
    ANY_TEXT,
    EDGE_VALUES,
    json_values,
    mutated_frames,
)

Outcome = tuple[Any, ...]
DIRECTIONS: list[tuple[Callable[[bytes | str], Frame], Mapping[str, Any], str]] = [
    (decode_client_frame, _codec._CLIENT_DECODERS, "client"),
    (decode_server_frame, _codec._SERVER_DECODERS, "server"),
]


def outcome(decode: Callable[[bytes | str], Frame], data: bytes | str) -> Outcome:
    """The frame's class and its fields' values with their exact types, or the error."""
    try:
        frame = decode(data)
    except ProtocolError as exc:
        return ("error", exc.code, exc.message, exc.ref)
    values = attrs.astuple(frame, recurse=False)
    return ("frame", type(frame), values, tuple(type(value) for value in values))


def assert_same_outcomes(data: bytes | str) -> None:
    for decode, decoders, direction in DIRECTIONS:
        fast = outcome(decode, data)
        generic = outcome(
            lambda data: _codec._decode_generic(data, decoders, direction),  # noqa: B023
            data,
        )
        assert fast == generic, (direction, data)


def as_input(obj: Any, as_bytes: bool) -> bytes | str:
    text = json.dumps(obj, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass") if as_bytes else text


ENVELOPE_JSON = orjson.loads(orjson.dumps(attrs.asdict(ENVELOPE)))
# Values around every limit of `send` (and the other hot frames), of every JSON type.
SEND_VALUES: st.SearchStrategy[Any] = st.one_of(
    EDGE_VALUES,
    st.sampled_from(
        [
            "r1",
            "general",
            "c" * MAX_ID_CHARS,
            "a\x00",
            "\x00",
            "é" * MAX_ID_CHARS,
            "é" * (MAX_ID_CHARS + 1),
            "🎉" * MAX_BODY_CHARS,
            "🎉" * (MAX_BODY_CHARS + 1),
            "\ud800",  # a lone surrogate: not UTF-8
            [],
            ["f1"],
            ["f1", "f1"],
            ["f1", 1],
            [""],
            [f"f{n}" for n in range(MAX_ATTACHMENTS + 1)],
            [[]],
            ENVELOPE_JSON,
            {**ENVELOPE_JSON, "ciphertext": ""},
            {**ENVELOPE_JSON, "extra": 1},
            {"k": {"k": {"k": {"k": {"k": {"k": {"k": {"k": 1}}}}}}}},
            2.5,
            -0.0,
        ]
    ),
    json_values(ANY_TEXT),
)
SEND_KEYS = st.sampled_from([field.name for field in attrs.fields(Send)]) | st.sampled_from(
    ["type", "message", "emoji", "remove", "nonce", "token", "seq", "extra"]
)
TAGS = st.sampled_from(sorted({cls.TYPE for cls in CLIENT_CLASSES + SERVER_CLASSES}))


@st.composite
def send_like_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A valid `send` (or another frame of the fast path) with fields replaced, dropped,
    added or its tag changed: most are refused, for every reason a field can give."""
    obj: dict[str, Any] = {"type": "send", "ref": "r1", "room": "general", "client_id": "c1"}
    obj["body"] = draw(st.text(max_size=8))
    for _ in range(draw(st.integers(0, 4))):
        match draw(st.sampled_from(["replace", "replace", "delete", "retag"])):
            case "delete" if obj:
                del obj[draw(st.sampled_from(sorted(obj)))]
            case "retag":
                obj["type"] = draw(TAGS)
            case _:
                obj[draw(SEND_KEYS)] = draw(SEND_VALUES)
    return obj


@settings(max_examples=1500, deadline=None)
@given(send_like_frames(), st.booleans())
def test_send_like_frames_have_the_generic_outcome(obj: dict[str, Any], as_bytes: bool) -> None:
    assert_same_outcomes(as_input(obj, as_bytes))


@settings(max_examples=1000, deadline=None)
@given(mutated_frames(), st.booleans())
def test_mutated_frames_of_every_type_have_the_generic_outcome(
    obj: dict[str, Any], as_bytes: bool
) -> None:
    assert_same_outcomes(as_input(obj, as_bytes))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | ANY_TEXT)
def test_any_input_has_the_generic_outcome(data: bytes | str) -> None:
    assert_same_outcomes(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi"}',
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi","type":"ping"}',
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi","attachments":[]}',
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"","attachments":[]}',
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi"' + b" " * 20_000 + b"}",
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"\xff"}',
        '{"type":"send","ref":"r1","room":"g","client_id":"c","body":"\ud800"}',
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi"}'
        + b" " * MAX_FRAME_BYTES,
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi","thread":null}',
        b'{"type":"send","ref":"r1","room":"g","client_id":"c","body":"hi","encrypted":null}',
        b'{"type":"react","ref":"r1","room":"g","message":"m","client_id":"c","emoji":"a b"}',
        b'{"type":"typing","room":"g","active":1}',
        b'{"type":"send","ref":"r1","room":[[[[[[[[[]]]]]]]]],"client_id":"c","body":"hi"}',
    ],
)
def test_edge_frames_have_the_generic_outcome(data: bytes | str) -> None:
    assert_same_outcomes(data)


def test_a_plain_send_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path is taken (else the generic one, patched out here, would be called).
    def generic(*args: Any) -> Any:
        raise AssertionError("the generic path was taken")

    monkeypatch.setattr(_codec, "_decode_generic", generic)
    send = Send(ref="r1", room="general", client_id="c1", body="hi", thread="m1")
    assert decode_client_frame(encode(send)) == send
    assert decode_client_frame(encode(send).decode()) == send
    with pytest.raises(AssertionError, match="generic"):
        decode_client_frame(encode(attrs.evolve(send, attachments=("f1",))))


def test_every_frame_type_compiles_and_the_hot_ones_have_a_fast_path() -> None:
    # Fast decoders are compiled at first use: compile each one here (none may raise).
    for cls in SERVER_CLASSES:
        _codec._fast_decoder(cls)
    fast = {cls.TYPE for cls in CLIENT_CLASSES if _codec._fast_decoder(cls) is not None}
    assert {"send", "edit", "delete", "react", "typing", "mark_read", "ping", "join"} <= fast


def test_a_type_without_a_fast_path_goes_to_the_generic_one() -> None:
    frame = b'{"type":"resume","ref":"r1","rooms":{"general":3}}'
    for _ in range(2):  # the first use compiles, the second finds nothing to compile
        assert_same_outcomes(frame)
        assert outcome(decode_client_frame, frame)[0] == "frame"
    assert _codec._CLIENT_FAST["resume"] is _codec._takes_nothing
