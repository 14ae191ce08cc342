"""Server-to-client WebSocket frames built by hand (RFC 6455 §5.2).

Server frames are never masked and Chorus negotiates no extensions, so one
frame's bytes are the same for every recipient: a broadcast is encoded once.
"""

from __future__ import annotations

import struct

_TEXT = 0x81  # FIN + opcode 1 (text)
_CLOSE = 0x88  # FIN + opcode 8 (close)
_PONG = 0x8A  # FIN + opcode 10 (pong)
_MAX_CLOSE_REASON = 123  # a control frame's payload is at most 125 bytes, 2 of them the code


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame carrying `payload` (already UTF-8 JSON)."""
    size = len(payload)
    if size < 126:
        return bytes((_TEXT, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", _TEXT, 126, size) + payload
    return struct.pack("!BBQ", _TEXT, 127, size) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with `code` and a reason cut to fit a control frame."""
    body = struct.pack("!H", code) + reason.encode()[:_MAX_CLOSE_REASON]
    return bytes((_CLOSE, len(body))) + body


def pong_frame(payload: bytes) -> bytes:
    """The answer to a WebSocket ping (its payload is at most 125 bytes)."""
    return bytes((_PONG, len(payload))) + payload
