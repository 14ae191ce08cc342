"""The byte-level conventions of docs/e2e.md: canonical JSON, base64 and Ed25519 signatures."""

from __future__ import annotations

import base64
import json
from typing import Any

import vodozemac

OLM_ALGORITHM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM_ALGORITHM = "m.megolm.v1.aes-sha2"
ALGORITHMS = (OLM_ALGORITHM, MEGOLM_ALGORITHM)


def canonical_json(obj: dict[str, Any]) -> bytes:
    """What a signature covers: `obj` without `signature`, keys sorted, no spaces, UTF-8."""
    unsigned = {key: value for key, value in obj.items() if key != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, as vodozemac prints keys."""
    return base64.b64encode(data).decode().rstrip("=")


def b64decode(text: str) -> bytes:
    """Standard base64 with or without padding; `ValueError` if it is not base64."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def sign(account: vodozemac.Account, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with a `signature` by the account's Ed25519 key over its canonical JSON."""
    return {**obj, "signature": account.sign(canonical_json(obj)).to_base64()}


def signature_valid(ed25519: str, obj: dict[str, Any]) -> bool:
    """Whether `obj["signature"]` is the Ed25519 signature of `ed25519` over `obj`."""
    signature = obj.get("signature")
    if not isinstance(signature, str):
        return False
    try:
        key = vodozemac.Ed25519PublicKey.from_base64(ed25519)
        key.verify_signature(canonical_json(obj), vodozemac.Ed25519Signature.from_base64(signature))
    except (vodozemac.KeyException, vodozemac.SignatureException, vodozemac.DecodeException):
        return False
    return True
