"""The size limits of protocol v1. Each is enforced by the codec and published in the schema."""

from __future__ import annotations

from typing import Final

MAX_FRAME_BYTES: Final = 65_536
"""Largest frame, in bytes of UTF-8; checked before the frame is parsed."""
MAX_DEPTH: Final = 8
"""Deepest nesting of arrays and objects; the frame's own object is depth 1."""
MAX_SAFE_INT: Final = 2**53 - 1
"""Largest integer in any field: every JSON implementation represents it exactly."""

MAX_ID_CHARS: Final = 64
"""Longest identifier (room, user, message, session, notification, `ref`, `client_id`)."""
MAX_TOKEN_CHARS: Final = 4096
"""Longest `hello` token."""
MAX_CLIENT_CHARS: Final = 128
"""Longest `hello` client description (e.g. "chorus-web/1.4")."""
MAX_NONCE_CHARS: Final = 64
"""Longest `ping` nonce."""
MAX_BODY_CHARS: Final = 4000
"""Longest message body, in characters (Unicode code points)."""
MAX_EMOJI_CHARS: Final = 64
"""Longest reaction emoji (an emoji sequence or a `:shortcode:`)."""
MAX_ROOM_NAME_CHARS: Final = 100
"""Longest room name (direct rooms have an empty name)."""
MAX_PREVIEW_CHARS: Final = 200
"""Longest `notification.preview` (the first characters of the message)."""
MAX_RESUME_ROOMS: Final = 1000
"""Most rooms in one `resume` frame."""
MAX_TEXT_CHARS: Final = 1024
"""Longest human-readable text from the server (`error` and `notice` messages)."""
MAX_FILE_NAME_CHARS: Final = 255
"""Longest file display name (as sanitised by the server)."""
MAX_CONTENT_TYPE_CHARS: Final = 255
"""Longest media type of a file."""
MAX_THUMBNAILS: Final = 4
"""Most thumbnails a file lists."""
MAX_ATTACHMENTS: Final = 10
"""Most files one message carries (`send.attachments`, `message.attachments`)."""
MAX_URL_CHARS: Final = 2048
"""Longest URL (`notice.reconnect_url`)."""
MAX_KEY_CHARS: Final = 128
"""Longest public key, signature or Megolm session id (base64) in end-to-end encryption."""
MAX_CIPHERTEXT_CHARS: Final = 32_768
"""Longest ciphertext (base64) of an encrypted message, edit or to-device message: room
for a body of MAX_BODY_CHARS characters of 4 bytes each, encrypted, within a frame."""
MAX_ACK_IDS: Final = 100
"""Most to-device message ids one `to_device_ack` acknowledges."""
