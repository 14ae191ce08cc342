"""Uploaded files (issue #13): the content checks a file passes before it is delivered.

Names are display metadata only (`display_name`); the type is sniffed from the
bytes and checked against an allow-list (`check_type`); files are virus-scanned
(`ClamdScanner`, or `NoScanner` when scanning is explicitly off); images are
verified, stripped of metadata, re-encoded and thumbnailed (`process_image`).
"""

from chorus.files._images import ImageRejected as ImageRejected
from chorus.files._images import ProcessedImage as ProcessedImage
from chorus.files._images import Thumbnail as Thumbnail
from chorus.files._images import process_image as process_image
from chorus.files._names import display_name as display_name
from chorus.files._reasons import Rejection as Rejection
from chorus.files._scanner import ClamdScanner as ClamdScanner
from chorus.files._scanner import NoScanner as NoScanner
from chorus.files._scanner import Scanner as Scanner
from chorus.files._scanner import ScannerUnavailable as ScannerUnavailable
from chorus.files._scanner import ScanResult as ScanResult
from chorus.files._scanner import ScanStatus as ScanStatus
from chorus.files._types import ALLOWED as ALLOWED
from chorus.files._types import INLINE_SAFE as INLINE_SAFE
from chorus.files._types import TypeVerdict as TypeVerdict
from chorus.files._types import check_type as check_type
from chorus.files._types import inline_safe as inline_safe
from chorus.files._types import sniff as sniff
