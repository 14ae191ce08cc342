"""Field rules: every field declares its limits, and only supported shapes compile."""

from __future__ import annotations

import re
import sys
import types
import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any

import attrs
import pytest

from chorus.protocol import Message
from chorus.protocol._fields import (
    SPACE_OR_CONTROL,
    BoolSpec,
    ChoiceSpec,
    ConstraintViolation,
    Entries,
    IntSpec,
    ListSpec,
    MapSpec,
    NullableSpec,
    ObjectSpec,
    Range,
    Spec,
    StrListSpec,
    StrSpec,
    Text,
    check_nonempty_one_of,
    constrain,
    field_specs,
    first_violation,
    spec_for,
)

from .examples import ALL_EXAMPLES, MESSAGE


def test_limits_compile_into_specs() -> None:
    assert spec_for(Annotated[str, Text(1, 64)], where="x") == StrSpec(1, 64)
    assert spec_for(Annotated[int, Range(minimum=1)] | None, where="x") == NullableSpec(
        IntSpec(1, 2**53 - 1)
    )
    assert spec_for(
        Annotated[dict[Annotated[str, Text(1, 2)], Annotated[int, Range()]], Entries(1, 3)],
        where="x",
    ) == MapSpec(StrSpec(1, 2), IntSpec(0, 2**53 - 1), 1, 3)
    assert spec_for(Message | None, where="x") == NullableSpec(ObjectSpec(Message))
    assert spec_for(bool, where="x") == BoolSpec()
    assert spec_for(Annotated[str, Text(1, 8, spaceless=True)], where="x") == StrSpec(1, 8, True)


def test_space_or_control_is_exactly_the_categories_it_names() -> None:
    # Every whitespace (Unicode White_Space) and control character, and nothing else.
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    refused = set(re.findall(f"[{SPACE_OR_CONTROL}]", every))
    categories = {"Cc", "Zs", "Zl", "Zp"}
    assert refused == {char for char in every if unicodedata.category(char) in categories}
    assert refused == {
        char for char in every if char.isspace() or unicodedata.category(char) == "Cc"
    }


@pytest.mark.parametrize(
    "hint",
    [
        str,
        int,
        Annotated[int, Text(1, 2)],
        Annotated[str, Range()],
        dict[str, int],
        Annotated[dict[str, int], Entries(1, 2)],
        Annotated[str, Text(1, 2)] | int,
        Annotated[Annotated[str, Text(1, 2)] | None, Text(1, 2)],
    ],
    ids=str,
)
def test_fields_without_supported_limits_are_refused(hint: Any) -> None:
    with pytest.raises(TypeError, match=r"^Frame\.x: "):
        spec_for(hint, where="Frame.x")


def test_a_frame_class_without_limits_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="declares no protocol limits"):

        @attrs.frozen(kw_only=True, field_transformer=constrain)
        class Unbounded:
            name: str


# --- the generated check of a frame class agrees with its specs ----------------------


class _Str(str):
    """A str subclass: the specs accept it where they accept its value."""


class _Int(int):
    """An int subclass: the generated check is stricter here and defers to the specs."""


def _nested(value: Any) -> Iterator[Any]:
    """`value` and every attrs instance inside it (fields, tuples of items)."""
    if attrs.has(type(value)):
        yield value
        for field in attrs.fields(type(value)):
            yield from _nested(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _nested(item)


# One instance of every class with specs (frames and the objects inside them).
BASES = {type(instance): instance for frame in ALL_EXAMPLES for instance in _nested(frame)}
OTHERS = tuple(BASES.values())


def _probes(spec: Spec) -> list[Any]:
    """Values at and beyond `spec`'s limits, and values of every other type."""
    match spec:
        case StrSpec(min_length=low, max_length=high):
            sized = ["é" * n for n in {max(low - 1, 0), low, high, high + 1}]
            edges = [_Str("ab"), "a\x00", "\x00", "a b", "a\u3000", "\x7f", "a\u2028"]
            return [*sized, *edges, *(text + "b" for text in edges[1:])]
        case IntSpec(minimum=low, maximum=high):
            return [low - 1, low, high, high + 1, _Int(low), _Int(high + 1), True, False, 1.0]
        case ChoiceSpec(values=values, members=members):
            return [*values, *members.values(), _Str(values[0]), values[0] + "x", ""]
        case MapSpec(min_entries=low, max_entries=high):
            entries = [{f"k{n}": n for n in range(count)} for count in {low - 1, low, high + 1}]
            return [*entries, {"": 1}, {"k": -1}, {"k": True}, {1: 1}]
        case ListSpec(cls=cls, min_items=low, max_items=high):
            item = BASES[cls]
            return [(item,) * n for n in {max(low - 1, 0), low, high, high + 1}] + [[item]]
        case StrListSpec(min_items=low, max_items=high):
            texts = [f"i{n}" for n in range(high + 1)]
            lists = [tuple(texts[:n]) for n in {max(low - 1, 0), low, high, high + 1}]
            return [*lists, ("a", "a"), ("",), ("a\x00",), ("a", 1), ["a"]]
        case NullableSpec(inner=inner):
            return _probes(inner)
        case _:
            return []


GENERIC_PROBES = [None, True, 0, -1, "", "a", 1.5, b"a", (), [], {}, *OTHERS]


def _reference_error(cls: type[Any], values: dict[str, Any]) -> str | None:
    """What `cls(**values)` must raise, by the specs alone ("Type: message"; None: nothing)."""
    # The values in an object of a plain class that has `cls`'s rule across fields.
    rules = {"NONEMPTY_ONE_OF": getattr(cls, "NONEMPTY_ONE_OF", ())}
    shim = type(cls.__name__, (types.SimpleNamespace,), rules)(**values)
    try:
        first_violation(tuple((field.name, spec) for field, spec in field_specs(cls)), shim)
        if rules["NONEMPTY_ONE_OF"]:
            check_nonempty_one_of(shim)
    except (TypeError, ConstraintViolation) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _error(cls: type[Any], values: dict[str, Any]) -> str | None:
    """What `cls(**values)` raises ("Type: message"; None: nothing)."""
    try:
        cls(**values)
    except (TypeError, ConstraintViolation) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize("cls", list(BASES), ids=lambda cls: cls.__name__)
def test_construction_refuses_exactly_what_the_specs_refuse(cls: type[Any]) -> None:
    # Every field of every class, set to values at and past its limits and to values of
    # other types: construction raises exactly the error the specs name (the first
    # field's, in declaration order), and accepts exactly what they accept. The check
    # a class runs is generated from its specs (`compile_check`); this is its reference.
    base = attrs.asdict(BASES[cls], recurse=False)
    accepted = refused = 0
    for field, spec in field_specs(cls):
        for probe in [*_probes(spec), *GENERIC_PROBES]:
            values = {**base, field.name: probe}
            expected = _reference_error(cls, values)
            assert _error(cls, values) == expected, (field.name, probe)
            accepted, refused = accepted + (expected is None), refused + (expected is not None)
    assert accepted
    assert refused


def test_the_first_broken_field_is_named() -> None:
    values = {**attrs.asdict(MESSAGE, recurse=False), "room": "", "seq": "1", "body": "\x00"}
    assert _error(Message, values) == "ConstraintViolation: room: must be 1 to 64 characters long"
    values["room"] = "r"
    assert _error(Message, values) == "TypeError: seq: expected an integer, got str"
