"""The server side of RFC 6455 framing: client frames parsed in place, text messages out.

wsproto turns every frame into event objects and unmasks its payload byte by
byte in Python; for the small messages of chat that was a large part of a
message's cost on the node. `InboundFrames` walks the frame headers over the
bytes read, unmasks each payload with one XOR of two integers and hands out
complete text messages as `str`, pings and the close frame as small objects,
and every violation as `Violation` with the close code to answer with.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from chorus.protocol import CloseCode

_CONTINUATION = 0x0
_TEXT = 0x1
_BINARY = 0x2
_CLOSE = 0x8
_PING = 0x9
_PONG = 0xA
_MAX_CONTROL_PAYLOAD = 125
_RESERVED_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})
"""Codes RFC 6455 §7.4 reserves for describing a close: never valid on the wire."""


@attrs.frozen
class Ping:
    """A ping frame; the pong must carry the same `payload`."""

    payload: bytes


@attrs.frozen
class Close:
    """The client's close frame: `code` None when it carried none (the echo is then 1000)."""

    code: int | None
    reason: str


Event = str | Ping | Close
"""A complete text message (the common case, so a bare `str`), a ping or the close frame."""


class Violation(Exception):
    """The client broke RFC 6455 (or sent what Chorus does not take); close with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class InboundFrames:
    """Parses the masked frames a client sends, without extensions.

    Feed every byte read to `receive_data`, then iterate `events()` to the end
    before feeding more. Guarantees: text messages come out whole and in order
    (fragments reassembled, control frames between fragments handled on their
    own), as valid UTF-8; nothing comes out after a `Close`. `events()` raises
    `Violation` (and then yields nothing more) for:

    - 1002 `PROTOCOL_ERROR`: an unmasked frame, reserved bits or opcodes, a
      fragmented or oversized (> 125 bytes) control frame, a continuation
      without a first fragment or a new message inside a fragmented one, a
      malformed close frame (1 byte, or an invalid code);
    - 1007: a text message or close reason that is not UTF-8;
    - 1009 `MESSAGE_TOO_BIG`: a message over `max_message_bytes` (seen in the
      frame header, before its payload is buffered);
    - 1003 `UNSUPPORTED_DATA`: a binary message.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._buffer = b""
        self._parts: list[bytes] = []
        """The unmasked fragments of the text message in progress."""
        self._size = 0
        self._fragmented = False
        self._closed = False

    def receive_data(self, data: bytes) -> None:
        """More bytes from the socket."""
        # The common case (the previous read ended on a frame boundary) copies nothing.
        self._buffer = self._buffer + data if self._buffer else data

    def events(self) -> Iterator[Event]:
        """Every complete event in the bytes received so far, in order."""
        buffer = self._buffer
        end = len(buffer)
        start = 0
        try:
            while not self._closed and end - start >= 2:
                first = buffer[start]
                second = buffer[start + 1]
                length = second & 0x7F
                header = 6
                if length == 126:
                    header = 8
                    if end - start < header:
                        break
                    length = int.from_bytes(buffer[start + 2 : start + 4], "big")
                elif length == 127:
                    header = 14
                    if end - start < header:
                        break
                    length = int.from_bytes(buffer[start + 2 : start + 10], "big")
                self._check_header(first, second, length)
                frame_end = start + header + length
                if frame_end > end:
                    break
                payload = _unmask(buffer, start + header, frame_end)
                start = frame_end
                if (event := self._frame(first, payload)) is not None:
                    yield event
        finally:
            # What is left is an incomplete frame (or nothing): keep it for the next read.
            self._buffer = buffer[start:] if start < end else b""

    def _check_header(self, first: int, second: int, length: int) -> None:
        opcode = first & 0x0F
        if first & 0x70:
            raise Violation(CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension")
        if not second & 0x80:
            raise Violation(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
        if opcode >= _CLOSE:
            if opcode > _PONG:
                raise Violation(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode}")
            if not first & 0x80:
                raise Violation(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
            if length > _MAX_CONTROL_PAYLOAD:
                raise Violation(CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes")
            return
        if opcode == _CONTINUATION:
            if not self._fragmented:
                raise Violation(CloseCode.PROTOCOL_ERROR, "continuation without a first fragment")
        elif opcode == _BINARY:
            raise Violation(CloseCode.UNSUPPORTED_DATA, "binary messages are not supported")
        elif opcode != _TEXT:
            raise Violation(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode}")
        elif self._fragmented:
            raise Violation(CloseCode.PROTOCOL_ERROR, "a new message inside a fragmented one")
        if self._size + length > self._max:
            raise Violation(CloseCode.MESSAGE_TOO_BIG, "message too big")

    def _frame(self, first: int, payload: bytes) -> Event | None:
        opcode = first & 0x0F
        if opcode == _TEXT and first & 0x80:  # the common case: one whole message
            return _text(payload)
        if opcode <= _TEXT:
            self._parts.append(payload)
            self._size += len(payload)
            self._fragmented = not first & 0x80
            if self._fragmented:
                return None
            whole = b"".join(self._parts)
            self._parts, self._size = [], 0
            return _text(whole)
        if opcode == _PING:
            return Ping(payload)
        if opcode == _CLOSE:
            self._closed = True
            return _close(payload)
        return None  # a pong: nothing to do


def _unmask(buffer: bytes, start: int, end: int) -> bytes:
    """The payload `buffer[start:end]` unmasked with the 4-byte key just before it.

    One XOR of two integers over the whole payload instead of a Python loop per
    byte (RFC 6455 §5.3: byte i is XORed with key byte i mod 4).
    """
    size = end - start
    if size == 0:
        return b""
    key = buffer[start - 4 : start] * (size // 4 + 1)
    masked = int.from_bytes(buffer[start:end], "little")
    return (masked ^ int.from_bytes(key[:size], "little")).to_bytes(size, "little")


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Violation(CloseCode.INVALID_PAYLOAD, "text message is not valid UTF-8") from None


def _close(payload: bytes) -> Close:
    if not payload:
        return Close(None, "")
    if len(payload) == 1:
        raise Violation(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code < 1000 or code in _RESERVED_CLOSE_CODES or 1016 <= code < 3000 or code >= 5000:
        raise Violation(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise Violation(CloseCode.INVALID_PAYLOAD, "close reason is not valid UTF-8") from None
    return Close(code, reason)
