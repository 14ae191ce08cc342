"""Files (issue #13): storage backends and signed, expiring delivery URLs."""

from ._cloudfront import CdnUrlSigner as CdnUrlSigner
from ._delivery import INLINE_TYPES as INLINE_TYPES
from ._delivery import SANDBOX_POLICY as SANDBOX_POLICY
from ._delivery import Disposition as Disposition
from ._delivery import content_disposition as content_disposition
from ._delivery import delivery_headers as delivery_headers
from ._delivery import disposition_for as disposition_for
from ._local_storage import LocalStorage as LocalStorage
from ._local_storage import RangeReader as RangeReader
from ._s3_storage import S3Storage as S3Storage
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
