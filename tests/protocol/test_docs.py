"""docs/protocol.md stays true to the code: its examples decode, its tables list every code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

import chorus.protocol
from chorus.actors.connection import ChatLimits
from chorus.config import Settings
from chorus.http import MAX_BODY_BYTES
from chorus.protocol import (
    MAX_BODY_CHARS,
    MAX_FRAME_BYTES,
    Ack,
    CloseCode,
    ErrorCode,
    Frame,
    Message,
    MessageEvent,
    ProtocolError,
    decode_client_frame,
    decode_server_frame,
    encode,
    encode_send_ack,
)
from tests.protocol.examples import CLIENT_CLASSES, SERVER_CLASSES

DOC = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```json\n(.*?)\n```", DOC, flags=re.DOTALL)


def decode_either(text: str) -> Frame:
    try:
        return decode_client_frame(text)
    except ProtocolError:
        return decode_server_frame(text)


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_json_example_is_a_valid_frame(text: str) -> None:
    frame = decode_either(text)
    if isinstance(frame, SERVER_CLASSES):
        # The server writes every field, so its examples show every field.
        assert orjson.loads(encode(frame)) == orjson.loads(text)


def test_every_frame_type_has_an_example() -> None:
    documented = {type(decode_either(text)) for text in EXAMPLES}
    assert documented == set(CLIENT_CLASSES + SERVER_CLASSES)


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_error_code_is_documented(code: ErrorCode) -> None:
    assert f"| `{code.value}` |" in DOC


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda code: code.name)
def test_every_close_code_is_documented(code: CloseCode) -> None:
    assert f"| {code.value} | `{code.name}` |" in DOC


@pytest.mark.parametrize(
    "name", sorted(name for name in vars(chorus.protocol) if name.startswith("MAX_"))
)
def test_every_limit_is_documented(name: str) -> None:
    value = getattr(chorus.protocol, name)
    assert re.search(rf"^\| [^|]+ \| {value}\b[^|]* \| `{name}` \|$", DOC, flags=re.MULTILINE)


def section(heading: str) -> str:
    """The text under the `### heading` of DOC, up to the next heading."""
    start = DOC.index(f"\n### {heading}\n")
    end = DOC.find("\n#", start + 1)
    return DOC[start:end]


@pytest.mark.parametrize("cls", CLIENT_CLASSES + SERVER_CLASSES, ids=lambda cls: cls.__name__)
def test_every_field_is_in_its_frame_s_table(cls: type[Any]) -> None:
    shared = cls.TYPE in {"typing", "presence"}
    side = "client" if cls in CLIENT_CLASSES else "server"
    text = section(f"{cls.TYPE} ({side})" if shared else cls.TYPE)
    rows = re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE)
    expected = [field.name for field in attrs.fields(cls)]
    if cls is Ack:
        expected += [field.name for field in attrs.fields(Message)]
    if cls is MessageEvent:
        expected = []  # its fields are the message object's, tabled under ack
    assert rows == expected


RUNTIME_LIMITS = {
    "frames_per_second": "20",
    "frame_burst": "40",
    "sends_per_second": "20",
    "send_burst": "50",
    "heartbeat_interval": "30 s",
    "auth_timeout": "10 s",
    "resume_limit": "1000",
    "max_outbox_bytes": "1048576",
}


@pytest.mark.parametrize(("setting", "shown"), RUNTIME_LIMITS.items())
def test_per_connection_limits_show_the_settings_defaults(setting: str, shown: str) -> None:
    default = getattr(Settings(), setting)
    assert float(shown.removesuffix(" s")) == default
    limits = section("Per-connection limits")
    assert re.search(rf"^\| [^|]+ \| {re.escape(shown)} \| `{setting}` \|", limits, re.MULTILINE)


def test_per_connection_limits_show_the_frame_and_body_limits() -> None:
    limits = section("Per-connection limits")
    assert f"| frame size | {MAX_FRAME_BYTES} bytes |" in limits
    assert f"| message `body` | {MAX_BODY_CHARS} chars |" in limits
    assert f"| HTTP request body | {MAX_BODY_BYTES} bytes |" in limits
    strikes = ChatLimits().strikes_before_close
    assert f"| refused frames in a row before the connection is closed | {strikes} |" in limits


def test_a_send_ack_built_from_the_broadcast_event_is_the_documented_ack() -> None:
    """The gateway copies a new message's `message` event into its ack
    (`encode_send_ack`): byte for byte the documented `ack` of a `send`,
    in the server's compact form (no spaces, the documented key order)."""
    documented = next(text for text in EXAMPLES if '"type": "ack"' in text and '"body"' in text)
    ack = decode_server_frame(documented)
    assert isinstance(ack, Ack)
    assert ack.message is not None
    assert ack.room is not None
    assert ack.seq is not None
    event = encode(MessageEvent(message=ack.message))
    built = encode_send_ack(ack.ref, ack.room, ack.seq, event)
    assert built == orjson.dumps(orjson.loads(documented))
