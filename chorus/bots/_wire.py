"""The bots' side of RFC 6455: masked client frames out, server frames parsed in place.

A generic WebSocket library decodes every frame into an object; the swarm
receives far more frames than it sends, so its receive path only walks frame
headers over one large buffer and hands each payload's position to a callback
that looks at the bytes where they lie (`FrameReader.feed`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WireError(Exception):
    """The server broke RFC 6455 framing (a masked frame, an oversized control frame...)."""


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One masked, unfragmented client frame (RFC 6455 §5.3: clients always mask).

    The XOR runs on one big integer instead of byte by byte: a few hundred
    nanoseconds for a typical chat message.
    """
    size = len(payload)
    mask = os.urandom(4)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    if size == 0:
        return header + mask
    repeated = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        size, "big"
    )
    return header + mask + masked


def unmask(masked: bytes, mask: bytes) -> bytes:
    """Undo `client_frame`'s masking (used by tests)."""
    size = len(masked)
    repeated = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(masked, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def handshake_request(host: str, port: int, path: str, subprotocol: str) -> tuple[bytes, bytes]:
    """The upgrade request and the `Sec-WebSocket-Accept` value the server must answer."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    request = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
        "\r\n"
    ).encode()
    return request, accept


def check_handshake_response(head: bytes, accept: bytes, subprotocol: str) -> str | None:
    """None if `head` (status line and headers) accepts the upgrade, else why not."""
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or status[1] != b"101":
        return f"http_{status[1].decode(errors='replace') if len(status) > 1 else 'bad'}"
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"sec-websocket-accept") != accept:
        return "bad_accept"
    if headers.get(b"sec-websocket-protocol") != subprotocol.encode():
        return "bad_subprotocol"
    return None


# (buffer, start, end): the payload is buffer[start:end]; valid only during the call.
OnFrame = Callable[[int, bytearray, int, int], None]


class FrameReader:
    """Splits a byte stream of server frames into payloads without copying them.

    Read into `writable()` (e.g. `sock.recv_into`), then call `feed(n)` with
    the number of bytes read: `on_frame(opcode, buffer, start, end)` is called
    for each complete frame, in order. A partial frame stays buffered for the
    next read; the buffer grows when one frame is bigger than it. Fragmented
    messages are reassembled (Chorus servers never fragment, but RFC 6455
    allows it) and delivered with the first fragment's opcode.
    """

    def __init__(self, on_frame: OnFrame, capacity: int = 256 * 1024) -> None:
        self._on_frame = on_frame
        self._buffer = bytearray(capacity)
        self._start = 0
        self._end = 0
        self._fragments: bytearray | None = None
        self._fragment_opcode = 0

    def writable(self) -> memoryview:
        """Where the next read should land (never empty)."""
        if self._end == len(self._buffer):
            self._compact()
        return memoryview(self._buffer)[self._end :]

    def feed_bytes(self, data: bytes) -> None:
        """Copy `data` in and parse it (for data read elsewhere, e.g. after the handshake)."""
        offset = 0
        while offset < len(data):
            view = self.writable()
            chunk = min(len(view), len(data) - offset)
            view[:chunk] = data[offset : offset + chunk]
            view.release()
            self.feed(chunk)
            offset += chunk

    def feed(self, count: int) -> None:
        """`count` more bytes were written at `writable()`: parse every complete frame."""
        buffer = self._buffer
        end = self._end + count
        self._end = end
        start = self._start
        on_frame = self._on_frame
        while end - start >= 2:
            first = buffer[start]
            second = buffer[start + 1]
            if second & 0x80:
                raise WireError("the server sent a masked frame")
            length = second & 0x7F
            if length < 126:
                header = 2
            elif length == 126:
                if end - start < 4:
                    break
                header = 4
                length = (buffer[start + 2] << 8) | buffer[start + 3]
            else:
                if end - start < 10:
                    break
                header = 10
                length = int.from_bytes(buffer[start + 2 : start + 10], "big")
            frame_end = start + header + length
            if frame_end > end:
                needed = header + length
                if needed > len(buffer):
                    self._start = start
                    self._grow(needed)
                    buffer = self._buffer
                    start = self._start
                    end = self._end
                break
            opcode = first & 0x0F
            if first & 0x80 and opcode != OP_CONTINUATION:
                on_frame(opcode, buffer, start + header, frame_end)
            else:
                self._fragment(first, buffer, start + header, frame_end)
            start = frame_end
        if start == end:
            self._start = self._end = 0
        else:
            self._start = start

    def _fragment(self, first: int, buffer: bytearray, start: int, end: int) -> None:
        opcode = first & 0x0F
        if opcode != OP_CONTINUATION:
            if opcode >= OP_CLOSE:
                raise WireError("a control frame was fragmented")
            self._fragments = bytearray(buffer[start:end])
            self._fragment_opcode = opcode
            return
        if self._fragments is None:
            raise WireError("a continuation frame without a first fragment")
        self._fragments += buffer[start:end]
        if first & 0x80:
            whole, self._fragments = self._fragments, None
            self._on_frame(self._fragment_opcode, whole, 0, len(whole))

    def _compact(self) -> None:
        pending = self._end - self._start
        if self._start:
            self._buffer[:pending] = self._buffer[self._start : self._end]
        self._start, self._end = 0, pending
        if pending == len(self._buffer):
            self._buffer.extend(bytes(len(self._buffer)))

    def _grow(self, needed: int) -> None:
        self._compact()
        if needed > len(self._buffer):
            self._buffer.extend(bytes(needed - len(self._buffer)))
