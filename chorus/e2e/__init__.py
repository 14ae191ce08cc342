"""End-to-end encryption, the server's side: what it checks of keys it cannot use.

The server stores public keys, relays opaque ciphertext and verifies the
signatures devices put on their keys; it never encrypts or decrypts
(docs/e2e.md, docs/security.md).
"""

from ._signing import KEY_BYTES as KEY_BYTES
from ._signing import canonical_json as canonical_json
from ._signing import decode_base64 as decode_base64
from ._signing import is_public_key as is_public_key
from ._signing import verify as verify
