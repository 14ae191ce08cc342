"""A validator for the subset of JSON Schema 2020-12 that `json_schema_document` uses.

`jsonschema` is not a dependency; this is enough to check that the schema and
the decoder agree. It refuses keywords it does not know, so a schema that
grows new ones fails the tests until this learns them. One deliberate
difference from the standard: "integer" does not accept 1.0 (nor does Chorus).
Patterns are matched as ECMA-262 does, where `$` matches only at the very
end (Python's `$` also matches before a final newline).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from chorus.protocol import json_schema_document

SCHEMA: dict[str, Any] = orjson.loads(json_schema_document())

_ANNOTATIONS = {"$schema", "title", "description", "default", "$defs"}
_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def is_valid(value: Any, schema: dict[str, Any] | bool, root: dict[str, Any] = SCHEMA) -> bool:
    """Whether `value` (parsed JSON) is valid against `schema`, resolving `$ref` in `root`."""
    if isinstance(schema, bool):
        return schema
    return all(_keyword(key, arg, value, schema, root) for key, arg in schema.items())


def _keyword(key: str, arg: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    match key:
        case _ if key in _ANNOTATIONS:
            return True
        case "$ref":
            assert arg.startswith("#/$defs/")
            return is_valid(value, root["$defs"][arg.removeprefix("#/$defs/")], root)
        case "anyOf":
            return any(is_valid(value, branch, root) for branch in arg)
        case "oneOf":
            return sum(is_valid(value, branch, root) for branch in arg) == 1
        case "type":
            return _TYPES[arg](value)
        case "const":
            return type(value) is type(arg) and value == arg
        case "enum":
            return any(type(value) is type(item) and value == item for item in arg)
        case "minLength":
            return not isinstance(value, str) or len(value) >= arg
        case "maxLength":
            return not isinstance(value, str) or len(value) <= arg
        case "pattern":
            return not isinstance(value, str) or re.search(_ecma(arg), value) is not None
        case "minimum":
            return not _TYPES["number"](value) or value >= arg
        case "maximum":
            return not _TYPES["number"](value) or value <= arg
        case "required":
            return not isinstance(value, dict) or all(name in value for name in arg)
        case "properties":
            return not isinstance(value, dict) or all(
                is_valid(value[name], sub, root) for name, sub in arg.items() if name in value
            )
        case "additionalProperties":
            declared = schema.get("properties", {})
            return not isinstance(value, dict) or all(
                is_valid(item, arg, root) for name, item in value.items() if name not in declared
            )
        case "propertyNames":
            return not isinstance(value, dict) or all(is_valid(name, arg, root) for name in value)
        case "minProperties":
            return not isinstance(value, dict) or len(value) >= arg
        case "maxProperties":
            return not isinstance(value, dict) or len(value) <= arg
        case "items":
            return not isinstance(value, list) or all(is_valid(item, arg, root) for item in value)
        case "minItems":
            return not isinstance(value, list) or len(value) >= arg
        case "maxItems":
            return not isinstance(value, list) or len(value) <= arg
        case "uniqueItems":
            return not (arg and isinstance(value, list)) or not any(
                type(item) is type(earlier) and item == earlier
                for index, item in enumerate(value)
                for earlier in value[:index]
            )
    raise AssertionError(f"schema_check does not know the keyword {key!r}")


def _ecma(pattern: str) -> str:
    """The Python form of an ECMA-262 pattern whose only `$` is its last character."""
    assert "$" not in pattern[:-1], f"schema_check cannot translate the pattern {pattern!r}"
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
