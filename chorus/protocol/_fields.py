"""Field rules: the limits declared on frame fields, and the checks derived from them.

A frame field states its limits once, in its annotation, with a marker:
`Annotated[str, Text(1, 64)]`, `Annotated[int, Range()]`,
`Annotated[dict[K, V], Entries(1, 1000)]`,
`Annotated[tuple[C, ...], Items(0, 4)]` (an array of attrs objects, or of
`Annotated[str, Text(...)]` strings, optionally without repeats); `Literal[...]` and `StrEnum`
fields allow their values; `bool` fields hold true or false; attrs classes
nest (`Annotated[C, Flatten()]` writes a nested object's fields into the frame
itself). `constrain` (an attrs field transformer) compiles every annotation
into a `Spec`, stores it in the field's metadata under `SPEC` and installs one
check of the whole instance generated from them (`compile_check`). The codec
and the JSON Schema read the same `Spec`, so a limit cannot differ between
the three.

One rule spans fields: a class may name, in `NONEMPTY_ONE_OF`, fields of
which at least one must be non-empty (`send`: a body, or attachments); its
`__attrs_post_init__` is `check_nonempty_one_of`, and the JSON Schema
states the same rule (`nonempty_one_of`).
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Final, Literal

import attrs

from ._limits import MAX_SAFE_INT

SPEC: Final = "chorus.protocol.spec"
"""The key of a frame field's `Spec` in its attrs metadata."""


@attrs.frozen
class Text:
    """Marks a `str` field: min_length <= len(value) <= max_length (in code points).

    With `spaceless`, the value may not contain any character of `SPACE_OR_CONTROL`.
    """

    min_length: int
    max_length: int
    spaceless: bool = False


@attrs.frozen
class Range:
    """Marks an `int` field: minimum <= value <= maximum (by default any JSON-safe int >= 0)."""

    minimum: int = 0
    maximum: int = MAX_SAFE_INT


@attrs.frozen
class Entries:
    """Marks a `dict` field: it holds min_entries..max_entries entries."""

    min_entries: int
    max_entries: int


@attrs.frozen
class Items:
    """Marks a `tuple[C, ...]` field: it holds min_items..max_items items.

    `C` is an attrs class, or `Annotated[str, Text(...)]`; with `unique`, no
    string may appear twice.
    """

    min_items: int
    max_items: int
    unique: bool = False


@attrs.frozen
class Flatten:
    """Marks the only field of a frame whose object's fields are the frame's own on the wire."""


class ConstraintViolation(ValueError):
    """A frame was constructed with a value of the right type that breaks `field`'s limits."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


NO_NUL_RULE = "must not contain the NUL character (U+0000)"
"""PostgreSQL text cannot hold U+0000, and no chat text needs it."""

SPACE_OR_CONTROL: Final = (
    "\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
"""The characters a `spaceless` text refuses, as the body of a regex character class.

They are the Unicode general categories Cc (controls), Zs (spaces), Zl and Zp
(line and paragraph separators): every whitespace character (the Unicode
White_Space property) and every control character. Written as `\\uXXXX`
escapes, the class reads the same in Python and in ECMA-262 (JSON Schema).
"""
SPACELESS_RULE = "must not contain whitespace or control characters"
_SPACE_OR_CONTROL_RE: Final = re.compile(f"[{SPACE_OR_CONTROL}]")


@attrs.frozen
class StrSpec:
    """A string of `min_length..max_length` code points; `spaceless` as in `Text`."""

    min_length: int
    max_length: int
    spaceless: bool = False
    expected: ClassVar[str] = "a string"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, str)

    @property
    def rule(self) -> str:
        if self.min_length == 0:
            return f"must be at most {self.max_length} characters long"
        return f"must be {self.min_length} to {self.max_length} characters long"

    def violation(self, value: Any) -> str | None:
        if not self.min_length <= len(value) <= self.max_length:
            return self.rule
        if "\x00" in value:
            return NO_NUL_RULE
        if self.spaceless and _SPACE_OR_CONTROL_RE.search(value):
            return SPACELESS_RULE
        return None


@attrs.frozen
class IntSpec:
    """An integer in `minimum..maximum`; a bool is not an integer here."""

    minimum: int
    maximum: int
    expected: ClassVar[str] = "an integer"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    @property
    def rule(self) -> str:
        return f"must be between {self.minimum} and {self.maximum}"

    def violation(self, value: Any) -> str | None:
        return None if self.minimum <= value <= self.maximum else self.rule


@attrs.frozen
class BoolSpec:
    """True or false; an integer is not a boolean here."""

    expected: ClassVar[str] = "a boolean"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, bool)

    def violation(self, value: Any) -> str | None:
        return None


@attrs.frozen
class ChoiceSpec:
    """One of the strings `values`; `members` maps each to its enum member, if an enum."""

    values: tuple[str, ...]
    members: Mapping[str, enum.StrEnum] = attrs.field(factory=dict)
    expected: ClassVar[str] = "a string"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, str)

    def violation(self, value: Any) -> str | None:
        if value not in self.values:
            return "must be one of " + ", ".join(repr(v) for v in self.values)
        return None


@attrs.frozen
class MapSpec:
    """An object whose keys follow `key` and values follow `value`; `min..max_entries` entries."""

    key: StrSpec
    value: IntSpec
    min_entries: int
    max_entries: int
    expected: ClassVar[str] = "an object"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, dict) and all(
            self.key.type_ok(k) and self.value.type_ok(v) for k, v in value.items()
        )

    def violation(self, value: Any) -> str | None:
        if not self.min_entries <= len(value) <= self.max_entries:
            return f"must have between {self.min_entries} and {self.max_entries} entries"
        for k, v in value.items():
            if (reason := self.key.violation(k)) is not None:
                return f"key {shorten(k)!r} {reason}"
            if (reason := self.value.violation(v)) is not None:
                return f"entry {shorten(k)!r} {reason}"
        return None


@attrs.frozen
class ObjectSpec:
    """An instance of the attrs class `cls` (validated when it was built).

    With `flatten`, the instance's fields are written into the enclosing frame.
    """

    cls: type[Any]
    flatten: bool = False
    expected: ClassVar[str] = "an object"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, self.cls)

    def violation(self, value: Any) -> str | None:
        return None


@attrs.frozen
class ListSpec:
    """A JSON array (a tuple in Python) of `min..max_items` instances of the attrs class `cls`."""

    cls: type[Any]
    min_items: int
    max_items: int
    expected: ClassVar[str] = "an array"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, tuple) and all(isinstance(item, self.cls) for item in value)

    def violation(self, value: Any) -> str | None:
        if not self.min_items <= len(value) <= self.max_items:
            return f"must have between {self.min_items} and {self.max_items} items"
        return None


@attrs.frozen
class StrListSpec:
    """A JSON array (a tuple in Python) of `min..max_items` strings following `item`.

    With `unique`, no string appears twice.
    """

    item: StrSpec
    min_items: int
    max_items: int
    unique: bool = False
    expected: ClassVar[str] = "an array"

    def type_ok(self, value: object) -> bool:
        return isinstance(value, tuple) and all(isinstance(item, str) for item in value)

    def violation(self, value: Any) -> str | None:
        if not self.min_items <= len(value) <= self.max_items:
            return f"must have between {self.min_items} and {self.max_items} items"
        for item in value:
            if (reason := self.item.violation(item)) is not None:
                return f"item {shorten(item)!r} {reason}"
        if self.unique and len(set(value)) != len(value):
            repeated = next(item for index, item in enumerate(value) if item in value[:index])
            return f"must not repeat an item ({shorten(repeated)!r} is there twice)"
        return None


@attrs.frozen
class NullableSpec:
    """Null, or a value that follows `inner`."""

    inner: StrSpec | IntSpec | BoolSpec | ChoiceSpec | ObjectSpec

    @property
    def expected(self) -> str:
        return f"{self.inner.expected} or null"

    def type_ok(self, value: object) -> bool:
        return value is None or self.inner.type_ok(value)

    def violation(self, value: Any) -> str | None:
        return None if value is None else self.inner.violation(value)


Spec = (
    StrSpec
    | IntSpec
    | BoolSpec
    | ChoiceSpec
    | MapSpec
    | ObjectSpec
    | ListSpec
    | StrListSpec
    | NullableSpec
)
"""The compiled rules of one field. `type_ok(value)` says whether the value has the
field's type; `violation(value)`, for a value of that type, names the broken limit
in words ("must be 1 to 64 characters long") or returns None."""


def shorten(text: str, limit: int = 40) -> str:
    """`text` cut to `limit` characters, so error messages quoting input stay small."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def constrain(cls: type[Any], fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """attrs field transformer: give each field its `Spec` (metadata), and the class one check.

    The check (`compile_check`) is the validator of the last field: attrs runs
    validators once every field is set, so it sees the whole instance. Raises
    TypeError at import time if a field's annotation declares no limits, so
    every field of the protocol has them.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    specs = tuple(
        (field.name, spec_for(hints[field.name], where=f"{cls.__name__}.{field.name}"))
        for field in fields
    )
    check = compile_check(cls.__name__, specs)
    return [
        field.evolve(
            validator=check if index == len(fields) - 1 else None,
            metadata={**field.metadata, SPEC: spec},
        )
        for index, (field, (_, spec)) in enumerate(zip(fields, specs, strict=True))
    ]


def field_specs(cls: type[Any]) -> tuple[tuple[attrs.Attribute[Any], Spec], ...]:
    """The fields of the frame class `cls` with their `Spec`s, in declaration order."""
    return tuple((field, field.metadata[SPEC]) for field in attrs.fields(cls))


def field_spec(cls: type[Any], name: str) -> Spec:
    """The `Spec` of the field `name` of the frame class `cls` (KeyError if it has none)."""
    spec: Spec = attrs.fields_dict(cls)[name].metadata[SPEC]
    return spec


def flattened(cls: type[Any]) -> tuple[str, type[Any]] | None:
    """For a frame whose only field is marked `Flatten`: that field's name and class."""
    match field_specs(cls):
        case ((field, ObjectSpec(cls=nested, flatten=True)),):
            return field.name, nested
    return None


def spec_for(hint: Any, *, where: str) -> Spec:
    """Compile one field annotation into its `Spec`; `where` names the field in errors."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = spec_for(args[0] if args[1] is type(None) else args[1], where=where)
        if isinstance(inner, NullableSpec | MapSpec | ListSpec | StrListSpec):
            raise TypeError(f"{where}: unsupported nullable type {hint!r}")
        return NullableSpec(inner)
    if hint is bool:
        return BoolSpec()
    if origin is Literal and all(isinstance(arg, str) for arg in args):
        return ChoiceSpec(values=args)
    if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
        return ChoiceSpec(
            values=tuple(member.value for member in hint),
            members={member.value: member for member in hint},
        )
    if attrs.has(hint):
        return ObjectSpec(hint)
    if origin is Annotated:
        base, marker = args[0], args[1]
        match marker:
            case Text(min_length=low, max_length=high, spaceless=spaceless) if base is str:
                return StrSpec(low, high, spaceless)
            case Range(minimum=low, maximum=high) if base is int:
                return IntSpec(low, high)
            case Entries(min_entries=low, max_entries=high) if typing.get_origin(base) is dict:
                key, value = (spec_for(arg, where=where) for arg in typing.get_args(base))
                if isinstance(key, StrSpec) and isinstance(value, IntSpec):
                    return MapSpec(key, value, low, high)
            case Items(min_items=low, max_items=high, unique=unique) if (
                typing.get_origin(base) is tuple
            ):
                item, ellipsis = typing.get_args(base)
                if ellipsis is Ellipsis and attrs.has(item) and not unique:
                    return ListSpec(item, low, high)
                if ellipsis is Ellipsis and typing.get_origin(item) is Annotated:
                    item_spec = spec_for(item, where=where)
                    if isinstance(item_spec, StrSpec):
                        return StrListSpec(item_spec, low, high, unique)
            case Flatten() if attrs.has(base):
                return ObjectSpec(base, flatten=True)
    raise TypeError(f"{where}: {hint!r} declares no protocol limits (use Text, Range, Entries)")


def nonempty_one_of_rule(names: tuple[str, ...]) -> str:
    """The rule, said of the field `names[0]`, that one of the fields `names` is non-empty."""
    others = names[1:]
    verb = "is" if len(others) == 1 else "are"
    return f"must not be empty when {' and '.join(others)} {verb} empty"


def check_nonempty_one_of(instance: Any) -> None:
    """Raise ConstraintViolation, naming the first field, unless one of
    `type(instance).NONEMPTY_ONE_OF` is non-empty."""
    names: tuple[str, ...] = type(instance).NONEMPTY_ONE_OF
    if not any(getattr(instance, name) for name in names):
        raise ConstraintViolation(names[0], nonempty_one_of_rule(names))


_Check = Callable[[Any, Any, Any], None]


def compile_check(name: str, specs: tuple[tuple[str, Spec], ...]) -> _Check:
    """The validator of the frame class `name` whose fields are `specs` (name and `Spec`,
    in order).

    It raises, for the first field (in `specs`' order) that breaks its spec,
    TypeError for a wrong type, else ConstraintViolation, as `first_violation`
    says; an instance it lets through satisfies every spec.

    Every stored message is built through this check (the wire `Message`, its
    `message` event, the `ack`), so it is generated once per class as one
    expression over the instance's fields, with no call per field: building a
    `Message`, its `MessageEvent` and its `Ack` took 61,000 instructions with a
    validator per field, takes 37,800 so, and 27,200 with no check at all
    (docs/decisions.md). Only a value the expression refuses takes the
    generic path, which finds the culprit with the specs themselves. Where the
    expression is stricter than a spec (a subclass of int), that path
    accepts the value, so the expression decides speed, never the outcome.
    Field names are identifiers and every constant is passed by name, so the
    generated source is safe.
    """
    namespace: dict[str, Any] = {"first_violation": first_violation, "specs": specs}
    loads = [f"    v{index} = instance.{field}" for index, (field, _) in enumerate(specs)]
    expression = check_condition(specs, [f"v{index}" for index in range(len(specs))], namespace)
    source = "\n".join(
        [
            "def check(instance, _attribute, _value):",
            *loads,
            f"    if not ({expression}):",
            "        first_violation(specs, instance)",
        ]
    )
    # Named after the class in tracebacks and profiles.
    exec(compile(source, f"<check of {name}>", "exec"), namespace)
    check: _Check = namespace["check"]
    return check


def check_condition(
    specs: tuple[tuple[str, Spec], ...], variables: list[str], namespace: dict[str, Any]
) -> str:
    """Source of one expression true only if each variable in `variables` satisfies the spec
    at the same index of `specs` (the condition of `compile_check`, for code generated
    elsewhere that holds the fields in local variables).

    Constants go into `namespace` under names `c0`, `c1`... (one prefix per field).
    """
    terms = [
        condition(spec, variable, f"c{index}", namespace)
        for index, ((_, spec), variable) in enumerate(zip(specs, variables, strict=True))
    ]
    return " and ".join(terms) or "True"


def first_violation(specs: tuple[tuple[str, Spec], ...], instance: object) -> None:
    """Raise for the first field of `instance` that breaks its spec: TypeError for a wrong
    type, else ConstraintViolation naming the field and the limit. The reference the
    generated checks follow."""
    for name, spec in specs:
        value = getattr(instance, name)
        if not spec.type_ok(value):
            raise TypeError(f"{name}: expected {spec.expected}, got {type(value).__name__}")
        if (reason := spec.violation(value)) is not None:
            raise ConstraintViolation(name, reason)


def condition(
    spec: Spec, var: str, const: str, namespace: dict[str, Any], *, exact: bool = False
) -> str:
    """Source of an expression true only if the value in `var` satisfies `spec` (and its type).

    Constants go into `namespace` under names starting with `const`. With
    `exact`, a string must be a `str` itself, not a subclass (as a JSON
    value is). Generated checks (`compile_check`, the codec's fast decoders)
    use it, so a limit is written once.
    """
    is_str = f"type({var}) is str" if exact else f"isinstance({var}, str)"
    match spec:
        case StrSpec(min_length=low, max_length=high, spaceless=spaceless):
            text = f"{is_str} and {low} <= len({var}) <= {high}"
            if spaceless:
                namespace[const] = _SPACE_OR_CONTROL_RE.search
                return f"({text} and {const}({var}) is None)"  # NUL is a control character
            return f"({text} and '\\x00' not in {var})"
        case IntSpec(minimum=low, maximum=high):
            # Stricter than the spec for a subclass of int: first_violation decides those.
            return f"(type({var}) is int and {low} <= {var} <= {high})"
        case BoolSpec():
            return f"({var} is True or {var} is False)"
        case ChoiceSpec(values=values):
            namespace[const] = frozenset(values)
            return f"({is_str} and {var} in {const})"
        case ObjectSpec(cls=cls):
            namespace[const] = cls
            return f"isinstance({var}, {const})"
        case ListSpec(min_items=0) | StrListSpec(min_items=0):
            # Mostly empty on the hot path (a message without attachments).
            namespace[const] = spec
            spec_ok = f"({const}.type_ok({var}) and {const}.violation({var}) is None)"
            return f"((type({var}) is tuple and not {var}) or {spec_ok})"
        case NullableSpec(inner=inner):
            return f"({var} is None or {condition(inner, var, const, namespace, exact=exact)})"
        case _:
            namespace[const] = spec
            return f"({const}.type_ok({var}) and {const}.violation({var}) is None)"
