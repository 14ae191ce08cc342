"""CloudFront signed URLs: files delivered by a CDN in front of the S3 bucket.

A URL is signed with a canned policy (one resource, one expiry) by the RSA
key of a CloudFront key group, using botocore's `CloudFrontSigner`.
CloudFront checks the signature and the expiry at its edge; like S3
presigned URLs, a URL keeps working until it expires even after its message
is deleted (cached copies too), so the TTL is the revocation delay. The
response headers come from the S3 object (stored by `S3Storage.put`) plus
the distribution's response headers policy (nosniff, CSP: see docs).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class CdnUrlSigner:
    """Signs `https://<domain>/<object key>` URLs with a CloudFront key pair.

    `key_id` is the public key's id in CloudFront; `private_key_pem` its RSA
    private key in PEM (unencrypted). A key that does not load, or is not RSA,
    is a `ValueError` at construction, not at the first request.
    """

    def __init__(self, domain: str, key_id: str, private_key_pem: bytes) -> None:
        if not domain or any(char in domain for char in "/?#@ "):
            raise ValueError(f"a CDN domain is a host name, not {domain!r}")
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a CloudFront signing key must be an RSA private key")
        self._domain = domain
        self._signer = CloudFrontSigner(key_id, lambda message: _sign(key, message))

    def signed_url(self, object_key: str, *, expires_at: datetime) -> str:
        """A URL for the S3 object `object_key` (as `S3Storage.object_key` names it).

        Valid until `expires_at` (an aware datetime); CloudFront refuses it after.
        """
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        url = f"https://{self._domain}/{quote(object_key, safe='/')}"
        return self._signer.generate_presigned_url(url, date_less_than=expires_at)


def _sign(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    # CloudFront's signed URLs are RSA-SHA1 (PKCS#1 v1.5): its format, not our choice.
    return key.sign(message, padding.PKCS1v15(), hashes.SHA1())
