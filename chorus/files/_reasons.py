"""Why a file is refused: stable codes, shared by every check and used as a metrics label."""

from __future__ import annotations

from enum import StrEnum


class Rejection(StrEnum):
    """A refusal's stable reason code (API answers, file metadata and metrics carry it).

    The values never change once released: clients and dashboards match on them.
    """

    EMPTY = "empty"
    """The file has no bytes."""
    TYPE_NOT_ALLOWED = "type_not_allowed"
    """The sniffed content type is not on the allow-list (executables, HTML, SVG, unknown)."""
    TYPE_MISMATCH = "type_mismatch"
    """The declared content type is not the one sniffed from the bytes."""
    IMAGE_TOO_LARGE = "image_too_large"
    """The image header declares more pixels than allowed (pixel flood, decompression bomb)."""
    TOO_MANY_FRAMES = "too_many_frames"
    """An animated image has more frames than allowed."""
    IMAGE_INVALID = "image_invalid"
    """The image cannot be decoded: corrupt, truncated, or not the format it claims."""
    INFECTED = "infected"
    """The virus scanner found something in the file."""
    INTERRUPTED = "interrupted"
    """The upload's bytes were lost before they were checked (its spool file is gone)."""
