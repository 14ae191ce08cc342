"""The server-side frame parser on hand-built client frames (RFC 6455 §5)."""

from __future__ import annotations

import os
import struct

import pytest

from chorus.gateway._frames import Close, Event, InboundFrames, Ping, Violation
from chorus.protocol import CloseCode

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
LIMIT = 1000


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """One client frame, masked byte by byte (an independent implementation of §5.3)."""
    size = len(payload)
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def parse(*chunks: bytes, limit: int = LIMIT) -> list[Event]:
    """Feed `chunks` one read at a time; every event that comes out."""
    frames = InboundFrames(limit)
    events: list[Event] = []
    for chunk in chunks:
        frames.receive_data(chunk)
        events.extend(frames.events())
    return events


def violation(*chunks: bytes, limit: int = LIMIT) -> int:
    with pytest.raises(Violation) as raised:
        parse(*chunks, limit=limit)
    return raised.value.code


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 127, 999, 1000])
def test_a_masked_text_frame_comes_out_unmasked(size: int) -> None:
    text = "".join(chr(0x61 + i % 26) for i in range(size))
    assert parse(frame(TEXT, text.encode())) == [text]


def test_64_bit_lengths_are_read() -> None:
    text = "ü" * 40_000  # 80,000 bytes: a 64-bit length field
    assert parse(frame(TEXT, text.encode()), limit=100_000) == [text]


def test_frames_split_over_reads_at_every_byte_come_out_whole_and_in_order() -> None:
    stream = frame(TEXT, b"first") + frame(TEXT, "zweite ü".encode()) + frame(TEXT, b"x" * 300)
    for cut in range(1, len(stream)):
        assert parse(stream[:cut], stream[cut:]) == ["first", "zweite ü", "x" * 300]
    assert parse(*(bytes((b,)) for b in stream)) == ["first", "zweite ü", "x" * 300]


def test_fragments_are_reassembled_with_control_frames_between_them() -> None:
    stream = (
        frame(TEXT, b"hel", fin=False)
        + frame(PING, b"p1")
        + frame(CONTINUATION, b"lo ", fin=False)
        + frame(PONG, b"")
        + frame(CONTINUATION, b"world")
        + frame(TEXT, b"next")
    )
    assert parse(stream) == [Ping(b"p1"), "hello world", "next"]


def test_a_character_split_between_fragments_is_valid() -> None:
    encoded = "ü".encode()
    stream = frame(TEXT, encoded[:1], fin=False) + frame(CONTINUATION, encoded[1:])
    assert parse(stream) == ["ü"]


def test_the_close_frame_ends_the_stream() -> None:
    stream = frame(CLOSE, struct.pack("!H", 1000) + b"bye") + frame(TEXT, b"after the close")
    assert parse(stream) == [Close(1000, "bye")]
    assert parse(frame(CLOSE, b"")) == [Close(None, "")]
    assert parse(frame(CLOSE, struct.pack("!H", 4321))) == [Close(4321, "")]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(frame(TEXT, b"hi", masked=False), id="unmasked"),
        pytest.param(frame(TEXT, b"hi", rsv=4), id="reserved bit"),
        pytest.param(frame(0x3, b"hi"), id="reserved data opcode"),
        pytest.param(frame(0xB, b"hi"), id="reserved control opcode"),
        pytest.param(frame(PING, b"p", fin=False), id="fragmented ping"),
        pytest.param(frame(PING, b"p" * 126), id="ping over 125 bytes"),
        pytest.param(frame(CONTINUATION, b"orphan"), id="continuation first"),
        pytest.param(frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), id="message inside one"),
        pytest.param(frame(CLOSE, b"\x03"), id="1-byte close"),
        pytest.param(frame(CLOSE, struct.pack("!H", 999)), id="close code 999"),
        pytest.param(frame(CLOSE, struct.pack("!H", 1005)), id="close code 1005"),
        pytest.param(frame(CLOSE, struct.pack("!H", 2000)), id="close code 2000"),
        pytest.param(frame(CLOSE, struct.pack("!H", 5000)), id="close code 5000"),
    ],
)
def test_protocol_violations_are_1002(stream: bytes) -> None:
    assert violation(stream) == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(frame(TEXT, b"\xff\xfe"), id="not UTF-8"),
        pytest.param(frame(TEXT, b"\xed\xa0\x80"), id="a surrogate"),
        pytest.param(frame(TEXT, "ü".encode()[:1]), id="cut character"),
        pytest.param(
            frame(TEXT, "ü".encode()[:1], fin=False) + frame(CONTINUATION, b"x"),
            id="cut character over fragments",
        ),
        pytest.param(frame(CLOSE, struct.pack("!H", 1000) + b"\xff"), id="close reason"),
    ],
)
def test_invalid_utf8_is_1007(stream: bytes) -> None:
    assert violation(stream) == CloseCode.INVALID_PAYLOAD


def test_a_message_over_the_limit_is_1009_as_soon_as_its_header_is_read() -> None:
    assert parse(frame(TEXT, b"x" * LIMIT)) == ["x" * LIMIT]
    # Only the header of a huge frame has arrived: refused before buffering the rest.
    header = frame(TEXT, b"x" * (LIMIT + 1))[:8]
    assert violation(header) == CloseCode.MESSAGE_TOO_BIG
    fragments = frame(TEXT, b"x" * 600, fin=False) + frame(CONTINUATION, b"x" * 401)[:8]
    assert violation(fragments) == CloseCode.MESSAGE_TOO_BIG


def test_binary_messages_are_1003() -> None:
    assert violation(frame(BINARY, b"\x00\x01")) == CloseCode.UNSUPPORTED_DATA


def test_nothing_is_lost_after_a_partial_frame_at_the_end_of_a_read() -> None:
    frames = InboundFrames(LIMIT)
    stream = frame(TEXT, b"one") + frame(TEXT, b"two")
    frames.receive_data(stream[:-2])
    assert list(frames.events()) == ["one"]
    frames.receive_data(stream[-2:])
    assert list(frames.events()) == ["two"]
    assert list(frames.events()) == []
