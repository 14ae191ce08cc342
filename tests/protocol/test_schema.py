"""The JSON Schema document: generated from the frame classes, and agreeing with the codec."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest

from chorus.protocol import (
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_EMOJI_CHARS,
    MAX_ID_CHARS,
    MAX_RESUME_ROOMS,
    MAX_SAFE_INT,
    ErrorCode,
    Frame,
    Message,
    encode,
    json_schema_document,
)
from chorus.protocol._schema import NO_NUL, SPACELESS
from tests.protocol.examples import (
    ALL_EXAMPLES,
    CLIENT_CLASSES,
    SERVER_CLASSES,
    frame_id,
    wire_fields,
)
from tests.protocol.schema_check import SCHEMA, is_valid

DEFS: dict[str, Any] = SCHEMA["$defs"]


def test_document_is_draft_2020_12_and_accepts_either_direction() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["anyOf"] == [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}]


def test_compact_and_indented_documents_are_the_same_schema() -> None:
    compact = json_schema_document(indent=False)
    assert "\n" not in compact
    assert orjson.loads(compact) == SCHEMA
    assert json_schema_document().count("\n") > 100


@pytest.mark.parametrize(
    ("union", "classes"), [("ClientFrame", CLIENT_CLASSES), ("ServerFrame", SERVER_CLASSES)]
)
def test_unions_list_every_frame_of_their_direction(union: str, classes: tuple[type, ...]) -> None:
    assert DEFS[union] == {"oneOf": [{"$ref": f"#/$defs/{cls.__name__}"} for cls in classes]}


@pytest.mark.parametrize("cls", CLIENT_CLASSES + SERVER_CLASSES, ids=lambda cls: cls.__name__)
def test_each_frame_schema_matches_its_class(cls: type[Any]) -> None:
    schema = DEFS[cls.__name__]
    fields = wire_fields(cls)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["type"] == {"const": cls.TYPE}
    assert list(schema["properties"]) == ["type", *(field.name for field in fields)]
    assert schema["required"] == [
        "type",
        *(field.name for field in fields if field.default is attrs.NOTHING),
    ]
    for field in fields:
        if field.default is not attrs.NOTHING:
            # As JSON: a tuple default is an array.
            default = orjson.loads(orjson.dumps(field.default))
            assert schema["properties"][field.name]["default"] == default


def test_message_schema_has_no_type_tag() -> None:
    assert "type" not in DEFS["Message"]["properties"]
    assert DEFS["Message"]["required"] == [
        field.name
        for field in attrs.fields(Message)
        if field.name not in ("thread", "attachments", "encrypted")
    ]
    assert DEFS["Message"]["properties"]["thread"]["default"] is None
    assert DEFS["Message"]["properties"]["attachments"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/FileInfo"},
        "minItems": 0,
        "maxItems": MAX_ATTACHMENTS,
        "default": [],
    }


def test_limits_are_published() -> None:
    identifier = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": NO_NUL}
    assert DEFS["Send"]["properties"] == {
        "type": {"const": "send"},
        "ref": identifier,
        "room": identifier,
        "client_id": identifier,
        "body": {"type": "string", "minLength": 0, "maxLength": MAX_BODY_CHARS, "pattern": NO_NUL},
        "thread": {"anyOf": [identifier, {"type": "null"}], "default": None},
        "attachments": {
            "type": "array",
            "items": identifier,
            "minItems": 0,
            "maxItems": MAX_ATTACHMENTS,
            "uniqueItems": True,
            "default": [],
        },
        "encrypted": {
            "anyOf": [{"$ref": "#/$defs/MegolmEnvelope"}, {"type": "null"}],
            "default": None,
        },
    }
    # A body, attachments or an envelope (which have defaults, so must then be present).
    assert DEFS["Send"]["anyOf"] == [
        {"properties": {"body": {"minLength": 1}}},
        {"properties": {"attachments": {"minItems": 1}}, "required": ["attachments"]},
        {"properties": {"encrypted": {"type": "object"}}, "required": ["encrypted"]},
    ]
    assert DEFS["Message"]["properties"]["body"]["minLength"] == 0
    assert DEFS["React"]["properties"]["emoji"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_EMOJI_CHARS,
        "pattern": SPACELESS,
    }
    assert DEFS["React"]["properties"]["remove"] == {"type": "boolean", "default": False}
    assert DEFS["ReactionEvent"]["properties"]["present"] == {"type": "boolean"}
    assert DEFS["NotificationEvent"]["properties"]["kind"] == {
        "type": "string",
        "enum": ["mention", "room_mention", "reply"],
    }
    assert DEFS["Resume"]["properties"]["rooms"] == {
        "type": "object",
        "propertyNames": identifier,
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INT},
        "minProperties": 1,
        "maxProperties": MAX_RESUME_ROOMS,
    }
    assert DEFS["Ack"]["properties"]["message"] == {
        "anyOf": [{"$ref": "#/$defs/Message"}, {"type": "null"}],
        "default": None,
    }
    assert DEFS["ErrorReply"]["properties"]["code"] == {
        "type": "string",
        "enum": [code.value for code in ErrorCode],
    }
    assert DEFS["SetPresence"]["properties"]["status"] == {
        "type": "string",
        "enum": ["online", "idle"],
    }


def test_frames_are_described_by_their_docstrings() -> None:
    assert DEFS["Send"]["description"].startswith("Post `body` in `room`")


@pytest.mark.parametrize("frame", ALL_EXAMPLES, ids=frame_id)
def test_every_example_is_valid_for_its_direction_only(frame: Frame) -> None:
    obj = orjson.loads(encode(frame))
    client = isinstance(frame, CLIENT_CLASSES)
    assert is_valid(obj, DEFS["ClientFrame"]) is client
    assert is_valid(obj, DEFS["ServerFrame"]) is not client
    assert is_valid(obj, SCHEMA)


@pytest.mark.parametrize("emoji", ["👍\n", "👍 ", "\n"], ids=ascii)
def test_the_emoji_pattern_refuses_a_final_newline_as_ecma_262_does(emoji: str) -> None:
    assert not is_valid(emoji, DEFS["React"]["properties"]["emoji"])
    assert is_valid("👍", DEFS["React"]["properties"]["emoji"])
