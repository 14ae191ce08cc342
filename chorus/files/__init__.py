"""Uploaded files (issue #13): content checks, storage, and signed delivery URLs.

Names are display metadata only (`display_name`); the type is sniffed from the
bytes and checked against an allow-list (`check_type`); files are virus-scanned
(`ClamdScanner`, or `NoScanner` when scanning is explicitly off); images are
verified, stripped of metadata, re-encoded and thumbnailed (`process_image`).
Files that pass are kept in a `Storage` (`LocalStorage`, `S3Storage`) and
delivered through signed, expiring URLs (`UrlSigner` for the node itself, S3
presigned URLs, `CdnUrlSigner` for CloudFront) with the headers of
`delivery_headers`.

`S3Storage` and `CdnUrlSigner` are loaded on first use: a node that keeps its
files on local disk never imports boto3 (tests/files/test_wiring.py).
"""

from typing import TYPE_CHECKING, Any

from chorus.filenames import display_name as display_name

from ._delivery import SANDBOX_POLICY as SANDBOX_POLICY
from ._delivery import Disposition as Disposition
from ._delivery import content_disposition as content_disposition
from ._delivery import delivery_headers as delivery_headers
from ._delivery import disposition_for as disposition_for
from ._images import ImageRejected as ImageRejected
from ._images import ProcessedImage as ProcessedImage
from ._images import Thumbnail as Thumbnail
from ._images import process_image as process_image
from ._local_storage import LocalStorage as LocalStorage
from ._local_storage import RangeReader as RangeReader
from ._reasons import Rejection as Rejection
from ._scanner import ClamdScanner as ClamdScanner
from ._scanner import NoScanner as NoScanner
from ._scanner import Scanner as Scanner
from ._scanner import ScannerUnavailable as ScannerUnavailable
from ._scanner import ScanResult as ScanResult
from ._scanner import ScanStatus as ScanStatus
from ._signing import InvalidSignature as InvalidSignature
from ._signing import UrlExpired as UrlExpired
from ._signing import UrlRefused as UrlRefused
from ._signing import UrlSigner as UrlSigner
from ._storage import InvalidKey as InvalidKey
from ._storage import ObjectNotFound as ObjectNotFound
from ._storage import Storage as Storage
from ._storage import StorageError as StorageError
from ._storage import StorageUnavailable as StorageUnavailable
from ._storage import check_key as check_key
from ._types import ALLOWED as ALLOWED
from ._types import INLINE_SAFE as INLINE_SAFE
from ._types import TypeVerdict as TypeVerdict
from ._types import check_type as check_type
from ._types import inline_safe as inline_safe
from ._types import sniff as sniff

if TYPE_CHECKING:
    from ._cloudfront import CdnUrlSigner as CdnUrlSigner
    from ._s3_storage import S3Storage as S3Storage

_LAZY = {"S3Storage": "._s3_storage", "CdnUrlSigner": "._cloudfront"}


def __getattr__(name: str) -> Any:
    """Import the S3 and CloudFront modules (boto3, botocore) only when asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
