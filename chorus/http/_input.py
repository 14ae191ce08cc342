"""Request input: declared once as attrs classes, decoded strictly, described in OpenAPI.

An input class's fields carry their rule (`text`, `choice`, `integer`): one
of the wire protocol's field rules (`chorus.protocol.StrSpec`...), so a limit
reads and is checked the same over HTTP and the WebSocket. The same rule
checks a JSON body or a query string and writes the JSON Schema, so a
documented limit cannot differ from the enforced one. Checks run in the
protocol codec's order, and the first failure is reported with the field's
name: unknown fields, missing fields, types, limits, then the class's
`EXACTLY_ONE_OF` fields (published as a `oneOf`) and `NONEMPTY_ONE_OF`
fields (one must be non-empty, as in the protocol; published as an
`anyOf`). Nothing is coerced but a JSON number with a zero fraction
(`2.0`), which is the integer it equals, as JSON Schema reads it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final, TypeVar

import attrs
import orjson
from werkzeug.datastructures import MultiDict

from chorus.protocol import (
    BoolSpec,
    ChoiceSpec,
    ErrorCode,
    IntSpec,
    StrSpec,
    describe_json_value,
    nonempty_one_of_rule,
    shorten,
    spec_schema,
)

from ._errors import ApiError, bad_request

T = TypeVar("T")
_RULE: Final = "chorus.http.rule"
_DIGITS = re.compile(r"[0-9]{1,16}")
_FLAGS: Final = {"true": True, "false": False}


@attrs.frozen
class Texts:
    """An array of `min_items..max_items` strings following `item`; none twice if `unique`."""

    min_items: int
    max_items: int
    item: StrSpec
    unique: bool = False
    choices: tuple[str, ...] = ()
    """When given, the only values an item may have."""
    expected: ClassVar[str] = "an array of strings"

    def type_ok(self, value: object) -> bool:
        return type(value) is list and all(type(item) is str for item in value)

    def violation(self, value: Any) -> str | None:
        if not self.min_items <= len(value) <= self.max_items:
            return f"must hold {self.min_items} to {self.max_items} items"
        for index, item in enumerate(value):
            if (reason := self.item.violation(item)) is not None:
                return f"item {index} {reason}"
            if self.unique and item in value[:index]:
                return f"item {index} repeats {shorten(item)!r}"
            if self.choices and item not in self.choices:
                allowed = ", ".join(repr(choice) for choice in self.choices)
                return f"item {index} must be one of {allowed}"
        return None


@attrs.frozen
class Number:
    """A finite JSON number (integer or not) in `minimum..maximum`; a bool is not one."""

    minimum: float
    maximum: float
    expected: ClassVar[str] = "a number"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    def violation(self, value: Any) -> str | None:
        if self.minimum <= value <= self.maximum:  # NaN and infinities are not JSON
            return None
        return f"must be between {self.minimum:g} and {self.maximum:g}"


@attrs.frozen
class Nested:
    """An object following the input class `cls` (decoded by the same rules, recursively)."""

    cls: type[Any]
    expected: ClassVar[str] = "an object"

    def type_ok(self, value: object) -> bool:
        return type(value) is dict

    def violation(self, value: Any) -> str | None:
        return None


@attrs.frozen
class NestedList:
    """An array of `min_items..max_items` objects, each following the input class `cls`."""

    cls: type[Any]
    min_items: int
    max_items: int
    expected: ClassVar[str] = "an array of objects"

    def type_ok(self, value: object) -> bool:
        return type(value) is list and all(type(item) is dict for item in value)

    def violation(self, value: Any) -> str | None:
        if not self.min_items <= len(value) <= self.max_items:
            return f"must hold {self.min_items} to {self.max_items} items"
        return None


Rule = StrSpec | ChoiceSpec | IntSpec | BoolSpec | Texts | Number | Nested | NestedList
"""What a field allows: the protocol's field rules, plus arrays of strings, numbers that
need not be integers and nested objects (HTTP only)."""


def _schema(rule: Rule) -> dict[str, Any]:
    if isinstance(rule, Number):
        return {"type": "number", "minimum": rule.minimum, "maximum": rule.maximum}
    if isinstance(rule, Nested):
        return body_schema(rule.cls)
    if isinstance(rule, NestedList):
        return {
            "type": "array",
            "items": body_schema(rule.cls),
            "minItems": rule.min_items,
            "maxItems": rule.max_items,
        }
    if isinstance(rule, Texts):
        items = {"enum": list(rule.choices)} if rule.choices else spec_schema(rule.item)
        schema = {
            "type": "array",
            "items": items,
            "minItems": rule.min_items,
            "maxItems": rule.max_items,
        }
        return (schema | {"uniqueItems": True}) if rule.unique else schema
    return spec_schema(rule)


@attrs.frozen
class FieldRule:
    rule: Rule
    description: str
    nullable: bool
    pattern: str | None = None
    """A JSON Schema pattern published in place of the rule's own (see `text`)."""


def text(
    min_length: int,
    max_length: int,
    description: str,
    *,
    default: Any = attrs.NOTHING,
    pattern: str | None = None,
    spaceless: bool = False,
    nullable: bool = False,
) -> Any:
    """A string field; with a `default` it is optional (and may be null when the default is,
    or with `nullable`: see `flag`).

    `spaceless` refuses whitespace and control characters (the protocol's rule for ids
    chosen by clients, such as device ids), published as its pattern.

    `pattern` publishes a rule on the characters that the domain checks
    itself, with its own error (`chorus.text.NAME_PATTERN` for
    `name_problem`, `chorus.auth.USERNAME_PATTERN`, the search query's
    `chorus.text.NOT_BLANK_PATTERN`); it must refuse U+0000 too, and the
    schema fuzz test (tests/http/test_schema_fuzz.py) holds the two together.
    """
    rule = StrSpec(min_length, max_length, spaceless)
    return _field(rule, description, default, pattern=pattern, nullable=nullable)


def choice(*values: str, description: str, default: Any = attrs.NOTHING) -> Any:
    """A field holding one of `values`."""
    return _field(ChoiceSpec(values), description, default)


def integer(
    minimum: int,
    maximum: int,
    description: str,
    *,
    default: Any = attrs.NOTHING,
    nullable: bool = False,
) -> Any:
    """An integer field (in a query string: decimal digits only)."""
    return _field(IntSpec(minimum, maximum), description, default, nullable=nullable)


def number(
    minimum: float,
    maximum: float,
    description: str,
    *,
    default: Any = attrs.NOTHING,
    nullable: bool = False,
) -> Any:
    """A number field, integer or not; only for bodies."""
    return _field(Number(minimum, maximum), description, default, nullable=nullable)


def flag(description: str, *, default: Any = attrs.NOTHING, nullable: bool = False) -> Any:
    """A boolean field.

    `nullable` (for this and `integer`, `number`) lets the field be null with
    another default: an absent field then differs from a null one.
    """
    return _field(BoolSpec(), description, default, nullable=nullable)


def texts(
    min_items: int,
    max_items: int,
    item: tuple[int, int],
    description: str,
    *,
    default: Any = attrs.NOTHING,
    unique: bool = False,
    choices: tuple[str, ...] = (),
) -> Any:
    """An array of strings, each of `item` (min, max) characters, as a tuple; only for bodies.

    With `unique`, no string may appear twice; with `choices`, each is one of them.
    """
    rule = Texts(min_items, max_items, StrSpec(*item), unique, choices)
    return _field(rule, description, default, converter=attrs.converters.optional(tuple))


def nested(cls: type[Any], description: str, *, default: Any = attrs.NOTHING) -> Any:
    """An object field decoded as the input class `cls`; only for bodies."""
    return _field(Nested(cls), description, default)


def nested_list(
    cls: type[Any],
    min_items: int,
    max_items: int,
    description: str,
    *,
    default: Any = attrs.NOTHING,
) -> Any:
    """An array of objects, each decoded as the input class `cls`, as a tuple; only for bodies."""
    rule = NestedList(cls, min_items, max_items)
    return _field(rule, description, default, converter=attrs.converters.optional(tuple))


def _field(
    rule: Rule,
    description: str,
    default: Any,
    converter: Any = None,
    pattern: str | None = None,
    *,
    nullable: bool = False,
) -> Any:
    nullable = nullable or default is None
    metadata = {_RULE: FieldRule(rule, description, nullable, pattern)}
    return attrs.field(default=default, metadata=metadata, converter=converter)


@attrs.frozen
class NoInput:
    """Routes that take no input: an empty body (or `{}`) and no query parameters."""


@attrs.frozen
class _Plan:
    fields: tuple[tuple[str, FieldRule], ...]
    allowed: frozenset[str]
    required: tuple[str, ...]
    exactly_one_of: tuple[str, ...]
    """Fields of which exactly one must be given (present, not null and not false)."""
    nonempty_one_of: tuple[str, ...]
    """Fields of which one must be non-empty (a string or an array)."""


_PLANS: dict[type[Any], _Plan] = {}


def _plan(cls: type[Any]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _make_plan(cls)
    return plan


def _make_plan(cls: type[Any]) -> _Plan:
    fields = tuple((field.name, field.metadata[_RULE]) for field in attrs.fields(cls))
    required = tuple(field.name for field in attrs.fields(cls) if field.default is attrs.NOTHING)
    return _Plan(
        fields=fields,
        allowed=frozenset(name for name, _ in fields),
        required=required,
        exactly_one_of=getattr(cls, "EXACTLY_ONE_OF", ()),
        nonempty_one_of=getattr(cls, "NONEMPTY_ONE_OF", ()),
    )


def has_fields(cls: type[Any]) -> bool:
    return bool(_plan(cls).fields)


def decode_body(cls: type[T], raw: bytes, content_type: str | None) -> T:
    """The input `cls` from a request body; raises `ApiError` (400, or 415) naming the problem.

    An empty body counts as `{}`. A body must be JSON: without a Content-Type,
    or with one other than `application/json` (or `*/*+json`), it is refused
    with 415.
    """
    if not raw.strip():
        return _build(cls, {}, "body")
    if not content_type or not _is_json(content_type):
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(ErrorCode.INVALID_JSON, f"the body is not valid JSON: {exc}") from None
    if type(value) is not dict:
        raise bad_request(ErrorCode.NOT_AN_OBJECT, "the body must be a JSON object")
    return _build(cls, value, "body")


def decode_query(cls: type[T], args: MultiDict[str, str]) -> T:
    """The input `cls` from a query string; raises `ApiError` (400) naming the parameter."""
    values: dict[str, object] = {}
    rules = dict(_plan(cls).fields)
    for name, given in args.lists():
        if len(given) > 1:
            raise bad_request(ErrorCode.INVALID_VALUE, f"{name}: given more than once")
        raw = given[0]
        rule = rules.get(name)
        if rule is not None and isinstance(rule.rule, IntSpec):
            if not _DIGITS.fullmatch(raw):
                raise bad_request(ErrorCode.WRONG_TYPE, f"{name}: expected an integer")
            values[name] = int(raw)
        elif rule is not None and isinstance(rule.rule, BoolSpec):
            if raw not in _FLAGS:
                raise bad_request(ErrorCode.WRONG_TYPE, f"{name}: expected true or false")
            values[name] = _FLAGS[raw]
        else:
            values[name] = raw
    return _build(cls, values, "query")


def _build(cls: type[T], given: Mapping[str, object], where: str, path: str = "") -> T:
    """`cls` from `given`; `path` names a nested object in errors (`keys.` for `keys`)."""
    plan = _plan(cls)
    values = dict(given)
    if not plan.allowed.issuperset(values):
        name = next(name for name in values if name not in plan.allowed)
        kind = "field" if where == "body" else "query parameter"
        raise bad_request(ErrorCode.EXTRA_FIELD, f"unknown {kind} {shorten(path + name)!r}")
    for name in plan.required:
        if name not in values:
            raise bad_request(ErrorCode.MISSING_FIELD, f"{path}{name}: required field is missing")
    for name, field in plan.fields:
        if name not in values:
            continue
        value = values[name]
        if value is None and field.nullable:
            continue
        if isinstance(field.rule, IntSpec) and type(value) is float and value.is_integer():
            values[name] = value = int(value)  # 2.0 is an integer to JSON Schema too
        if not field.rule.type_ok(value):
            expected = field.rule.expected + (" or null" if field.nullable else "")
            raise bad_request(
                ErrorCode.WRONG_TYPE,
                f"{path}{name}: expected {expected}, got {describe_json_value(value)}",
            )
    for name, field in plan.fields:
        value = values.get(name)
        if value is not None and (reason := field.rule.violation(value)) is not None:
            raise bad_request(ErrorCode.INVALID_VALUE, f"{path}{name}: {reason}")
    if plan.exactly_one_of and sum(_given(values.get(name)) for name in plan.exactly_one_of) != 1:
        names = " and ".join(plan.exactly_one_of)
        raise bad_request(ErrorCode.INVALID_VALUE, f"give exactly one of {names}")
    if plan.nonempty_one_of and not any(values.get(name) for name in plan.nonempty_one_of):
        rule = nonempty_one_of_rule(plan.nonempty_one_of)
        raise bad_request(ErrorCode.INVALID_VALUE, f"{path}{plan.nonempty_one_of[0]}: {rule}")
    for name, field in plan.fields:
        value = values.get(name)
        # Type-checked above: an object, or an array of objects.
        if isinstance(field.rule, Nested) and isinstance(value, dict):
            values[name] = _build(field.rule.cls, value, where, f"{path}{name}.")
        elif isinstance(field.rule, NestedList) and isinstance(value, list):
            values[name] = [
                _build(field.rule.cls, item, where, f"{path}{name}[{index}].")
                for index, item in enumerate(value)
            ]
    return cls(**values)


def _given(value: object) -> bool:
    return value is not None and value is not False


def body_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of `cls` as a request body."""
    plan = _plan(cls)
    properties = {}
    for name, field in plan.fields:
        schema = _schema(field.rule)
        if field.pattern is not None:
            schema["pattern"] = field.pattern
        if field.nullable:
            schema["type"] = [schema["type"], "null"]
        properties[name] = schema | {"description": field.description}
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if plan.required:
        schema["required"] = list(plan.required)
    if plan.exactly_one_of:
        # A field counts as given unless absent, null or false (the `_given` of `_build`).
        schema["oneOf"] = [
            {"required": [name], "properties": {name: {"not": {"enum": [None, False]}}}}
            for name in plan.exactly_one_of
        ]
    if plan.nonempty_one_of:
        rules = dict(plan.fields)
        schema["anyOf"] = [
            {
                "required": [name],
                "properties": {name: _nonempty(rules[name].rule)},
            }
            for name in plan.nonempty_one_of
        ]
    if cls.__doc__:
        schema["description"] = inspect.cleandoc(cls.__doc__)
    return schema


def _nonempty(rule: Rule) -> dict[str, Any]:
    """What makes a value of `rule` non-empty, in JSON Schema."""
    if isinstance(rule, Texts | NestedList):
        return {"minItems": 1}
    if isinstance(rule, Nested):
        return {"type": "object"}  # present and not null
    return {"minLength": 1}


def query_parameters(cls: type[Any]) -> list[dict[str, Any]]:
    """The OpenAPI parameter objects of `cls` as a query string."""
    parameters = []
    for field in attrs.fields(cls):
        rule: FieldRule = field.metadata[_RULE]
        schema = _schema(rule.rule)
        if rule.pattern is not None:
            schema["pattern"] = rule.pattern
        if field.default is not attrs.NOTHING and field.default is not None:
            schema["default"] = field.default
        parameters.append(
            {
                "name": field.name,
                "in": "query",
                "required": field.default is attrs.NOTHING,
                "description": rule.description,
                "schema": schema,
            }
        )
    return parameters


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")
