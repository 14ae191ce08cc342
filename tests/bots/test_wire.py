"""The bots' frame reader and masked client frames."""

from __future__ import annotations

import struct

import pytest

from chorus.bots._wire import (
    OP_CLOSE,
    OP_TEXT,
    FrameReader,
    WireError,
    check_handshake_response,
    client_frame,
    handshake_request,
    unmask,
)
from chorus.gateway._wire import close_frame, text_frame


def collect() -> tuple[FrameReader, list[tuple[int, bytes]]]:
    frames: list[tuple[int, bytes]] = []

    def on_frame(opcode: int, buf: bytearray, start: int, end: int) -> None:
        frames.append((opcode, bytes(buf[start:end])))

    return FrameReader(on_frame, capacity=1024), frames


def feed_in_chunks(reader: FrameReader, data: bytes, chunk: int) -> None:
    for offset in range(0, len(data), chunk):
        reader.feed_bytes(data[offset : offset + chunk])


def test_many_frames_in_one_read() -> None:
    reader, frames = collect()
    payloads = [f'{{"n":{n}}}'.encode() for n in range(50)]
    reader.feed_bytes(b"".join(text_frame(p) for p in payloads))
    assert frames == [(OP_TEXT, p) for p in payloads]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_7_16_and_64_bit_lengths(size: int) -> None:
    reader, frames = collect()
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    reader.feed_bytes(text_frame(payload) + text_frame(b"after"))
    assert frames == [(OP_TEXT, payload), (OP_TEXT, b"after")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100, 1023])
def test_frames_split_across_reads(chunk: int) -> None:
    reader, frames = collect()
    payloads = [b"a" * 10, b"b" * 300, b"c" * 70_000, b"d"]
    feed_in_chunks(reader, b"".join(text_frame(p) for p in payloads) + close_frame(4004), chunk)
    assert frames[:-1] == [(OP_TEXT, p) for p in payloads]
    assert frames[-1] == (OP_CLOSE, struct.pack("!H", 4004))


def test_fragmented_message_is_reassembled() -> None:
    reader, frames = collect()
    first = bytes((0x01, 3)) + b"abc"  # text, FIN clear
    middle = bytes((0x00, 2)) + b"de"  # continuation
    last = bytes((0x80, 1)) + b"f"  # continuation, FIN
    feed_in_chunks(reader, first + middle + last + text_frame(b"next"), 2)
    assert frames == [(OP_TEXT, b"abcdef"), (OP_TEXT, b"next")]


def test_masked_server_frame_is_refused() -> None:
    reader, _ = collect()
    with pytest.raises(WireError):
        reader.feed_bytes(bytes((0x81, 0x81)) + b"mask" + b"x")


@pytest.mark.parametrize("size", [0, 5, 125, 126, 70_000])
def test_client_frames_are_masked_and_round_trip(size: int) -> None:
    payload = b"y" * size
    frame = client_frame(payload)
    assert frame[0] == 0x81
    assert frame[1] & 0x80
    length = frame[1] & 0x7F
    header = 2 if length < 126 else 4 if length == 126 else 10
    mask = frame[header : header + 4]
    assert unmask(frame[header + 4 :], mask) == payload


def test_handshake_answer_is_checked() -> None:
    _request, accept = handshake_request("h", 1, "/", "chorus.v1")
    good = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: chorus.v1"
    )
    assert check_handshake_response(good, accept, "chorus.v1") is None
    assert check_handshake_response(b"HTTP/1.1 403 Forbidden", accept, "chorus.v1") == "http_403"
    assert check_handshake_response(good.replace(accept, b"x"), accept, "chorus.v1") == (
        "bad_accept"
    )
