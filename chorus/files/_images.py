"""Images: verified, bounded, stripped of every metadata, re-encoded, thumbnailed (Pillow).

`process_image` is blocking (it decodes): run it with `trio.to_thread.run_sync`.
It guarantees, for a file it accepts:

- the format is the sniffed one (only that decoder is tried);
- the header's pixel count, all frames together, is at most `max_pixels`,
  checked *before* any pixel is decoded (pixel floods, decompression bombs),
  and there are at most `max_frames` frames (animations above are refused,
  not cut: a cut animation would be a different picture);
- the output holds pixels only: the EXIF orientation is applied, then the
  pixels are copied into new images, so EXIF (GPS included), XMP, IPTC,
  comments, text chunks and ICC profiles are all gone;
- the image is re-encoded in its own format (JPEG quality 85, PNG optimised,
  WebP quality 85, GIF), animations kept, and each thumbnail fits within its
  bound (made only when the image is larger), from the first frame.

Refusals raise `ImageRejected` with a `Rejection` code, counted in
`chorus_file_rejections_total`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from PIL import Image, ImageOps, ImageSequence

from chorus.files._reasons import Rejection
from chorus.files._types import normalize
from chorus.metrics import FILE_REJECTIONS

_FORMATS: Final = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
_EXTENSIONS: Final = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
_CONTENT_TYPES: Final = {pillow: mime for mime, pillow in _FORMATS.items()}
# Thumbnails are still images: a GIF's first frame is thumbnailed as PNG.
_THUMBNAIL_FORMATS: Final = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "PNG", "WEBP": "WEBP"}
_SAVE_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "JPEG": {"quality": 85},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 85},
    "GIF": {},
}
# What Pillow raises on hostile or broken input, besides its own DecompressionBombError.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, TypeError, IndexError, EOFError,
                         struct.error, zlib.error)  # fmt: skip


class ImageRejected(Exception):
    """The image is refused; `reason` is the stable code, the message a short explanation."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


@attrs.frozen
class Thumbnail:
    """A still image fitting within `bound` x `bound` pixels."""

    bound: int
    path: Path
    content_type: str
    width: int
    height: int


@attrs.frozen
class ProcessedImage:
    """The re-encoded image (`path`, its size after orientation) and its thumbnails."""

    path: Path
    content_type: str
    width: int
    height: int
    frames: int
    thumbnails: tuple[Thumbnail, ...]


def _reject(reason: Rejection, detail: str) -> ImageRejected:
    FILE_REJECTIONS.labels(reason.value).inc()
    return ImageRejected(reason, detail)


def _check_header(image: Image.Image, *, max_pixels: int, max_frames: int) -> int:
    """The frame count, once the header's size and frame count are within bounds."""
    width, height = image.size
    frames: int = getattr(image, "n_frames", 1)
    if frames > max_frames:
        raise _reject(Rejection.TOO_MANY_FRAMES, f"{frames} frames (at most {max_frames})")
    if width * height * frames > max_pixels:
        raise _reject(
            Rejection.IMAGE_TOO_LARGE,
            f"{width} x {height} pixels x {frames} frames (at most {max_pixels} pixels)",
        )
    return frames


def _mode(image: Image.Image, pillow_format: str) -> str:
    """The mode the pixels are kept in: what the output format stores, alpha when there is one."""
    if pillow_format == "JPEG":
        return "L" if image.mode == "L" else "RGB"
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return "RGBA" if alpha else "RGB"


def _pixels_only(frame: Image.Image, mode: str) -> Image.Image:
    """`frame` oriented by its EXIF, as a new image holding its pixels and nothing else."""
    oriented = ImageOps.exif_transpose(frame.convert(mode))
    return Image.frombytes(oriented.mode, oriented.size, oriented.tobytes())


def _decode(image: Image.Image, pillow_format: str) -> tuple[list[Image.Image], dict[str, Any]]:
    """Every frame as a clean image, and the animation's timing to save them with."""
    mode = _mode(image, pillow_format)
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        frames.append(_pixels_only(frame, mode))
    if len(frames) == 1:
        return frames, {}
    return frames, {"save_all": True, "append_images": frames[1:], "duration": durations,
                    "loop": image.info.get("loop", 0)}  # fmt: skip


def _thumbnails(
    first: Image.Image, pillow_format: str, out_dir: Path, sizes: Sequence[int]
) -> tuple[Thumbnail, ...]:
    thumbnail_format = _THUMBNAIL_FORMATS[pillow_format]
    made = []
    for bound in sizes:
        if max(first.size) <= bound:
            continue
        thumbnail = first.copy()
        thumbnail.thumbnail((bound, bound), Image.Resampling.LANCZOS)
        path = out_dir / f"thumb-{bound}.{_EXTENSIONS[thumbnail_format]}"
        thumbnail.save(path, format=thumbnail_format, **_SAVE_OPTIONS[thumbnail_format])
        made.append(Thumbnail(bound, path, _CONTENT_TYPES[thumbnail_format], *thumbnail.size))
    return tuple(made)


def process_image(
    source: Path,
    out_dir: Path,
    *,
    content_type: str,
    max_pixels: int,
    max_frames: int,
    thumbnail_sizes: Sequence[int] = (320, 1280),
) -> ProcessedImage:
    """Check, clean and re-encode the image at `source` into `out_dir` (see the module).

    Blocking. `content_type` is the *sniffed* type, one of `INLINE_SAFE`
    (`ValueError` otherwise: a caller's mistake). Writes `image.<ext>` and
    `thumb-<bound>.<ext>` files into the existing folder `out_dir`. Raises
    `ImageRejected` (`image_too_large`, `too_many_frames`, `image_invalid`: a read
    error while decoding counts as invalid); `OSError` when `source` cannot be
    opened or `out_dir` written.
    """
    pillow_format = _FORMATS.get(normalize(content_type))
    if pillow_format is None:
        raise ValueError(f"not an image type process_image handles: {content_type!r}")
    with source.open("rb") as file:
        try:
            with Image.open(file, formats=[pillow_format]) as image:
                frame_count = _check_header(image, max_pixels=max_pixels, max_frames=max_frames)
                image.verify()
            file.seek(0)
            with Image.open(file, formats=[pillow_format]) as image:
                frames, animation = _decode(image, pillow_format)
        except Image.DecompressionBombError as error:
            raise _reject(Rejection.IMAGE_TOO_LARGE, str(error)) from None
        except _DECODE_ERRORS as error:
            raise _reject(Rejection.IMAGE_INVALID, f"{type(error).__name__}: {error}") from None
    first = frames[0]
    path = out_dir / f"image.{_EXTENSIONS[pillow_format]}"
    first.save(path, format=pillow_format, **_SAVE_OPTIONS[pillow_format], **animation)
    return ProcessedImage(
        path=path,
        content_type=_CONTENT_TYPES[pillow_format],
        width=first.width,
        height=first.height,
        frames=frame_count,
        thumbnails=_thumbnails(first, pillow_format, out_dir, thumbnail_sizes),
    )
