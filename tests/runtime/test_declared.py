"""The run-time settings' declarations: what `check`, `parse` and stored values accept."""

from __future__ import annotations

import math
import re

import attrs
import pytest

from chorus.config import Settings
from chorus.runtime import DECLARATIONS, RuntimeValues, check, parse
from chorus.runtime._declared import from_json, to_json


def test_each_setting_takes_its_default_and_help_from_the_configuration() -> None:
    settings = Settings(max_message_chars=123, registration_open=False)
    values = RuntimeValues.configured(settings)
    assert (values.max_message_chars, values.registration_open) == (123, False)
    helps = {field.name: field.metadata["help"] for field in attrs.fields(Settings)}
    assert {d.name: d.help for d in DECLARATIONS} == {d.name: helps[d.name] for d in DECLARATIONS}
    assert [d.name for d in DECLARATIONS] == [f.name for f in attrs.fields(RuntimeValues)]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_message_chars", True, "expected an integer"),  # a bool is not a number
        ("max_message_chars", 10.0, "expected an integer"),
        ("sends_per_second", math.nan, "expected a number"),
        ("sends_per_second", math.inf, "expected a number"),
        ("sends_per_second", 0.001, "must be from 0.01 to 10000"),
        ("registration_open", 1, "expected true or false"),
        ("server_notice", "a\x00b", "must not contain U+0000"),
        ("server_notice", "x" * 1025, "at most 1024 characters"),
        ("heartbeat_interval", 5, "unknown setting 'heartbeat_interval'"),
    ],
)
def test_values_are_refused_naming_the_setting(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        check(name, value)
    assert str(refused.value).startswith(name) or "unknown setting" in message


def test_an_integer_is_a_valid_float_and_text_is_parsed_to_each_type() -> None:
    assert check("sends_per_second", 3) == 3.0
    assert isinstance(check("sends_per_second", 3), float)
    assert parse("registration_open", " False ") is False
    assert parse("send_burst", "7") == 7
    assert parse("sends_per_second", "0.5") == 0.5
    assert parse("server_notice", "Back at 10") == "Back at 10"
    with pytest.raises(ValueError, match=re.escape("send_burst: expected an integer, got '7.5'")):
        parse("send_burst", "7.5")


def test_a_stored_value_is_checked_again_when_read() -> None:
    assert from_json("send_burst", to_json(7)) == 7
    with pytest.raises(ValueError, match="send_burst: must be from 1 to 100000"):
        from_json("send_burst", "0")
    with pytest.raises(ValueError, match="not JSON"):
        from_json("send_burst", "{")


def test_a_body_over_the_limit_is_named() -> None:
    values = RuntimeValues.configured(Settings(max_message_chars=3))
    assert values.body_problem("abc") is None
    assert values.body_problem("abcd") == "body: at most 3 characters (max_message_chars)"
