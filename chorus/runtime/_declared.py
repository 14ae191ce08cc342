"""The server settings an admin may change while nodes run: one declaration each.

Each is a field of `RuntimeValues`: its type is the field's, its bounds are
its metadata, and its default and help text are those of the node's
`Settings` field of the same name (so the configuration file, the
environment or a flag still give the default; a value stored by an admin
overrides it, see `LiveSettings`). `check` and `parse` are the only ways a
value gets in, over HTTP, from the CLI and from the store alike.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any, Final, cast

import attrs

from chorus.config import Settings
from chorus.protocol import MAX_BODY_CHARS, MAX_TEXT_CHARS

_BOUNDS: Final = "chorus.runtime.bounds"


@attrs.frozen
class Bounds:
    """Smallest and largest value of a number (for a string: its most characters)."""

    minimum: float | None = None
    maximum: float | None = None


def _runtime(minimum: float | None = None, maximum: float | None = None) -> Any:
    return attrs.field(metadata={_BOUNDS: Bounds(minimum, maximum)})


@attrs.frozen(kw_only=True)
class RuntimeValues:
    """The value of every run-time setting that a node applies now.

    Each setting is read where it applies, at each use, so a change reaches
    requests and open WebSockets at once (see docs/operations.md).
    """

    registration_open: bool = _runtime()
    """`POST /auth/register` answers 403 `registration_closed` when false."""
    max_message_chars: int = _runtime(1, MAX_BODY_CHARS)
    """Longest body of a message sent or edited (HTTP and WebSocket)."""
    sends_per_second: float = _runtime(0.01, 10_000)
    """Writes per second of one user, over all their connections and nodes."""
    send_burst: int = _runtime(1, 100_000)
    """Writes one user may make at once before `sends_per_second` applies."""
    files_max_bytes: int = _runtime(1, 1 << 40)
    """Largest upload, in bytes."""
    audit_retention_days: int = _runtime(1, 36_500)
    """Days audit events are kept (applied at the next hourly pass of every node)."""
    server_notice: str = _runtime(0, MAX_TEXT_CHARS)
    """Sent as an `info` notice after `ready`, and to every open socket when it changes."""

    def body_problem(self, body: str) -> str | None:
        """Why a message body is refused by `max_message_chars`, or None."""
        if len(body) > self.max_message_chars:
            return f"body: at most {self.max_message_chars} characters (max_message_chars)"
        return None

    @classmethod
    def configured(cls, settings: Settings) -> RuntimeValues:
        """The defaults: the node's configured value of each setting."""
        return cls(**{field.name: getattr(settings, field.name) for field in attrs.fields(cls)})


@attrs.frozen(kw_only=True)
class Declaration:
    """One run-time setting as the admin API and `chorus admin settings` describe it."""

    name: str
    kind: str
    """`bool`, `int`, `float` or `str`."""
    bounds: Bounds
    help: str
    """The help text of the `Settings` field of the same name."""


def _declarations() -> tuple[Declaration, ...]:
    helps = {field.name: field.metadata["help"] for field in attrs.fields(Settings)}
    return tuple(
        Declaration(
            name=field.name,
            # `from __future__ import annotations` keeps the types as their source text.
            kind=cast(str, field.type),
            bounds=field.metadata[_BOUNDS],
            help=helps[field.name],
        )
        for field in attrs.fields(RuntimeValues)
    )


DECLARATIONS: Final = _declarations()
"""Every run-time setting, in declaration order."""
_BY_NAME: Final = {declaration.name: declaration for declaration in DECLARATIONS}


def declaration(name: str) -> Declaration:
    """The setting called `name`; `ValueError` naming the known ones if there is none."""
    found = _BY_NAME.get(name)
    if found is None:
        known = ", ".join(_BY_NAME)
        raise ValueError(f"unknown setting {name[:64]!r}; run-time settings are: {known}")
    return found


def check(name: str, value: object) -> bool | int | float | str:
    """`value` if setting `name` may take it (an integer is a valid `float`); otherwise
    `ValueError` naming the setting and what it takes."""
    found = declaration(name)
    bounds = found.bounds
    match found.kind, value:
        case "bool", bool():
            return value
        case "int", int() if not isinstance(value, bool):
            number: int | float = value
        case "float", int() | float() if not isinstance(value, bool) and math.isfinite(value):
            number = float(value)
        case "str", str():
            if bounds.maximum is not None and len(value) > bounds.maximum:
                raise ValueError(f"{name}: at most {bounds.maximum:g} characters")
            if "\x00" in value:  # PostgreSQL text cannot hold it
                raise ValueError(f"{name}: must not contain U+0000")
            return value
        case _:
            raise ValueError(f"{name}: expected {_EXPECTED[found.kind]}, got {value!r:.64}")
    if not _within(number, bounds):
        raise ValueError(f"{name}: must be from {bounds.minimum:g} to {bounds.maximum:g}")
    return number


_EXPECTED: Final = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
}


def _within(number: float, bounds: Bounds) -> bool:
    low = -math.inf if bounds.minimum is None else bounds.minimum
    high = math.inf if bounds.maximum is None else bounds.maximum
    return low <= number <= high


def parse(name: str, text: str) -> bool | int | float | str:
    """A value written on a command line (`true`, `500`, `0.5`, any text), checked."""
    kind = declaration(name).kind
    value: object = text
    if kind == "bool":
        value = {"true": True, "false": False}.get(text.strip().lower(), text)
    elif kind in ("int", "float"):
        with contextlib.suppress(ValueError):  # `check` names what it expected
            value = int(text) if kind == "int" else float(text)
    return check(name, value)


def to_json(value: bool | int | float | str) -> str:
    """A checked value as the store keeps it."""
    return json.dumps(value)


def from_json(name: str, text: str) -> bool | int | float | str:
    """A stored value, checked again (`ValueError` when it no longer fits: the stored row
    predates a tighter bound, or was written by hand)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{name}: stored value is not JSON") from None
    return check(name, value)
