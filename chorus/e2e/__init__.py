"""End-to-end encryption, the server's side: what it checks of keys it cannot use.

The server stores public keys, relays opaque ciphertext and verifies the
signatures devices put on their keys; it never encrypts or decrypts
(docs/e2e.md, docs/security.md).
"""

from ._signing import BASE64_PATTERN as BASE64_PATTERN
from ._signing import KEY_BYTES as KEY_BYTES
from ._signing import KEY_PATTERN as KEY_PATTERN
from ._signing import canonical_json as canonical_json
from ._signing import decode_base64 as decode_base64
from ._signing import is_base64 as is_base64
from ._signing import is_public_key as is_public_key
from ._signing import verify as verify
from ._wire import LOW_WATER as LOW_WATER
from ._wire import MAX_QUEUED as MAX_QUEUED
from ._wire import MAX_UNCLAIMED_KEYS as MAX_UNCLAIMED_KEYS
from ._wire import REQUEST_BURST as REQUEST_BURST
from ._wire import REQUESTS_PER_SECOND as REQUESTS_PER_SECOND
from ._wire import megolm_content as megolm_content
from ._wire import megolm_envelope as megolm_envelope
from ._wire import olm_content as olm_content
from ._wire import to_device_event as to_device_event
