"""Field rules: every field declares its limits, and only supported shapes compile."""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Annotated, Any

import attrs
import pytest

from chorus.protocol import Message
from chorus.protocol._fields import (
    SPACE_OR_CONTROL,
    BoolSpec,
    Entries,
    IntSpec,
    MapSpec,
    NullableSpec,
    ObjectSpec,
    Range,
    StrSpec,
    Text,
    constrain,
    spec_for,
)


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
