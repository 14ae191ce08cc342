"""The JSON Schema (draft 2020-12) of every frame, generated from the frame classes."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import attrs
import orjson

from ._fields import (
    SPACE_OR_CONTROL,
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
    flattened,
)
from ._frames import (
    ClientFrame,
    FileInfo,
    MegolmEnvelope,
    Message,
    OlmCiphertext,
    OlmEnvelope,
    ServerFrame,
    Thumbnail,
)
from ._limits import MAX_DEPTH, MAX_FRAME_BYTES
from ._version import SUBPROTOCOL


def json_schema_document(*, indent: bool = True) -> str:
    """The JSON Schema of protocol v1 as a JSON text (indented by two spaces, or on one line).

    `$defs` holds one schema per frame class (keyed by class name), `Message`
    (the object nested in `ack`), and the unions `ClientFrame` and
    `ServerFrame` (`oneOf`, one branch per `type`). The document itself
    accepts a frame of either direction. Limits that JSON Schema cannot state
    (frame size, nesting depth) are given in its `description`.
    """
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(_document(), option=option).decode()


def _document() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    unions = {"ClientFrame": ClientFrame, "ServerFrame": ServerFrame}
    for name, union in unions.items():
        classes = typing.get_args(union)
        defs[name] = {"oneOf": [{"$ref": f"#/$defs/{cls.__name__}"} for cls in classes]}
        defs |= {cls.__name__: _object(cls, tag=cls.TYPE) for cls in classes}
    nested_objects = (Message, FileInfo, Thumbnail, MegolmEnvelope, OlmEnvelope, OlmCiphertext)
    for nested in nested_objects:  # objects that frames hold
        defs[nested.__name__] = _object(nested, tag=None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Chorus wire protocol ({SUBPROTOCOL})",
        "description": (
            f"Each WebSocket text message is one frame: a JSON object of at most "
            f"{MAX_FRAME_BYTES} bytes of UTF-8, nesting at most {MAX_DEPTH} levels deep."
        ),
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in unions],
        "$defs": defs,
    }


def _object(cls: type[Any], *, tag: str | None) -> dict[str, Any]:
    """The schema of one attrs class; a `tag` adds the `type` property it must have."""
    properties: dict[str, Any] = {} if tag is None else {"type": {"const": tag}}
    required = [] if tag is None else ["type"]
    flat = flattened(cls)
    for field, spec in field_specs(cls if flat is None else flat[1]):
        properties[field.name] = spec_schema(spec)
        if field.default is attrs.NOTHING:
            required.append(field.name)
        else:
            properties[field.name]["default"] = field.default
    schema: dict[str, Any] = {"title": cls.__name__}
    if cls.__doc__:
        schema["description"] = inspect.cleandoc(cls.__doc__)
    schema |= {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if names := getattr(cls, "NONEMPTY_ONE_OF", ()):
        schema["anyOf"] = nonempty_one_of(cls, names)
    return schema


def nonempty_one_of(cls: type[Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The `anyOf` branches stating that one of the fields `names` of `cls` is non-empty.

    A field with a default must then be present (its default is empty).
    """
    branches = []
    for field, spec in field_specs(cls):
        if field.name not in names:
            continue
        match spec:
            case StrSpec():
                nonempty: dict[str, Any] = {"minLength": 1}
            case ListSpec() | StrListSpec():
                nonempty = {"minItems": 1}
            case NullableSpec(inner=ObjectSpec()):
                nonempty = {"type": "object"}  # present and not null
            case _:
                raise TypeError(f"{cls.__name__}.{field.name}: cannot be required non-empty")
        branch: dict[str, Any] = {"properties": {field.name: nonempty}}
        if field.default is not attrs.NOTHING:
            branch["required"] = [field.name]
        branches.append(branch)
    return branches


NO_NUL = "^[^\\u0000]*$"
"""Strings never contain U+0000 (PostgreSQL text cannot store it)."""
SPACELESS = f"^[^{SPACE_OR_CONTROL}]*$"
"""`spaceless` strings contain no whitespace or control character (U+0000 among them)."""


def spec_schema(spec: Spec) -> dict[str, Any]:
    """The JSON Schema of a value following `spec` (a new dict: callers may extend it)."""
    match spec:
        case StrSpec(min_length=low, max_length=high, spaceless=spaceless):
            pattern = SPACELESS if spaceless else NO_NUL
            return {"type": "string", "minLength": low, "maxLength": high, "pattern": pattern}
        case IntSpec(minimum=low, maximum=high):
            return {"type": "integer", "minimum": low, "maximum": high}
        case BoolSpec():
            return {"type": "boolean"}
        case ChoiceSpec(values=values):
            return {"type": "string", "enum": list(values)}
        case MapSpec(key=key, value=value, min_entries=low, max_entries=high):
            return {
                "type": "object",
                "propertyNames": spec_schema(key),
                "additionalProperties": spec_schema(value),
                "minProperties": low,
                "maxProperties": high,
            }
        case ObjectSpec(cls=cls):
            return {"$ref": f"#/$defs/{cls.__name__}"}
        case ListSpec(cls=cls, min_items=low, max_items=high):
            return {
                "type": "array",
                "items": {"$ref": f"#/$defs/{cls.__name__}"},
                "minItems": low,
                "maxItems": high,
            }
        case StrListSpec(item=item, min_items=low, max_items=high, unique=unique):
            schema = {
                "type": "array",
                "items": spec_schema(item),
                "minItems": low,
                "maxItems": high,
            }
            return (schema | {"uniqueItems": True}) if unique else schema
        case NullableSpec(inner=inner):
            return {"anyOf": [spec_schema(inner), {"type": "null"}]}
