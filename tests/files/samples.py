"""Files the content-check tests upload: each built here, small and cheap to make."""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import ExifTags, Image, ImageCms

from tests.clamdserver import EICAR

SVG_WITH_SCRIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>fetch('/api/me').then(r => r.text()).then(alert)</script></svg>\n"
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def eicar_zip(path: Path) -> Path:
    """A zip archive holding the EICAR test file (deflated, under a harmless name)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/readme.txt", EICAR)
    return path


def executable(path: Path) -> Path:
    """A real ELF executable (this machine's `true`), under whatever name `path` has."""
    true = shutil.which("true")
    assert true is not None
    shutil.copyfile(true, path)
    return path


def image_bytes(size: tuple[int, int], image_format: str, *, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "teal").save(buffer, format=image_format)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A real decompression bomb: a `side` x `side` black 1-bit PNG, a few dozen KiB on disk.

    Decoded it is `side`² pixels (400 million by default); the IDAT stream is
    made row by row, so building it holds one row in memory.
    """
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then the packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    return write(path, png + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says `width` x `height` and whose pixel data is garbage.

    Refused as too large, it proves the size is checked before any decoding
    (decoding would fail as invalid instead).
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    return write(path, png + _png_chunk(b"IDAT", b"not zlib") + _png_chunk(b"IEND", b""))


GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
}


def jpeg_with_gps(path: Path, size: tuple[int, int] = (1600, 1200)) -> Path:
    """A photo with GPS EXIF, camera make, rotate-90 orientation, a comment, XMP and ICC."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Orientation] = 6  # shown rotated 90° clockwise
    exif[ExifTags.IFD.GPSInfo] = GPS
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGB", size, "orange")
    image.save(
        path,
        format="JPEG",
        exif=exif.tobytes(),
        comment=b"shot at home",
        icc_profile=icc,
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret</x:xmpmeta>",
    )
    return path


def animated_gif(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> Path:
    """An animated GIF of `frames` frames of different colours."""
    images = [Image.new("RGB", size, (index * 40 % 256, 0, 0)) for index in range(frames)]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return path
