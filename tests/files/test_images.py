"""Images are bounded, verified, stripped of metadata, re-encoded and thumbnailed (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageSequence, PngImagePlugin

from chorus.files import ImageRejected, ProcessedImage, Rejection, process_image
from tests.files.samples import (
    animated_gif,
    executable,
    image_bytes,
    jpeg_with_gps,
    png_bomb,
    png_header_only,
    write,
)

MAX_PIXELS = 40_000_000
MAX_FRAMES = 100
METADATA_KEYS = {"exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "Author"}


def process(
    source: Path,
    out_dir: Path,
    content_type: str,
    *,
    max_pixels: int = MAX_PIXELS,
    max_frames: int = MAX_FRAMES,
) -> ProcessedImage:
    out_dir.mkdir(exist_ok=True)
    return process_image(
        source, out_dir, content_type=content_type, max_pixels=max_pixels, max_frames=max_frames
    )


def rejected(
    source: Path,
    out_dir: Path,
    content_type: str,
    *,
    max_pixels: int = MAX_PIXELS,
    max_frames: int = MAX_FRAMES,
) -> Rejection:
    with pytest.raises(ImageRejected) as caught:
        process(source, out_dir, content_type, max_pixels=max_pixels, max_frames=max_frames)
    return caught.value.reason


def assert_no_metadata(path: Path) -> None:
    with Image.open(path) as image:
        image.load()
        assert not METADATA_KEYS & set(image.info), image.info.keys()
        assert not image.getexif()
        assert not image.getexif().get_ifd(0x8825)  # GPS


def test_gps_exif_and_all_metadata_are_gone_after_processing(tmp_path: Path) -> None:
    source = jpeg_with_gps(tmp_path / "photo.jpg")
    with Image.open(source) as original:  # the sample does carry it all
        assert original.getexif().get_ifd(0x8825)
        assert {"exif", "xmp", "comment", "icc_profile"} <= set(original.info)
    done = process(source, tmp_path / "out", "image/jpeg")
    assert done.content_type == "image/jpeg"
    assert_no_metadata(done.path)
    for thumbnail in done.thumbnails:
        assert_no_metadata(thumbnail.path)
    assert b"SpyCam" not in done.path.read_bytes()
    assert b"shot at home" not in done.path.read_bytes()


def test_the_exif_orientation_is_applied_before_it_is_dropped(tmp_path: Path) -> None:
    # 1600 x 1200 stored, orientation 6: shown (and now stored) as 1200 x 1600.
    done = process(jpeg_with_gps(tmp_path / "photo.jpg"), tmp_path / "out", "image/jpeg")
    assert (done.width, done.height) == (1200, 1600)
    with Image.open(done.path) as image:
        assert image.size == (1200, 1600)


def test_thumbnails_fit_their_bounds_and_record_their_size(tmp_path: Path) -> None:
    source = write(tmp_path / "wide.png", image_bytes((2000, 1000), "PNG"))
    done = process(source, tmp_path / "out", "image/png")
    assert (done.width, done.height, done.frames) == (2000, 1000, 1)
    assert [(t.bound, t.width, t.height) for t in done.thumbnails] == [
        (320, 320, 160),
        (1280, 1280, 640),
    ]
    for thumbnail in done.thumbnails:
        assert thumbnail.content_type == "image/png"
        with Image.open(thumbnail.path) as image:
            assert image.format == "PNG"
            assert image.size == (thumbnail.width, thumbnail.height)


def test_no_thumbnail_is_larger_than_the_image(tmp_path: Path) -> None:
    source = write(tmp_path / "small.webp", image_bytes((600, 400), "WEBP"))
    done = process(source, tmp_path / "out", "image/webp")
    assert [(t.bound, t.width, t.height, t.content_type) for t in done.thumbnails] == [
        (320, 320, 213, "image/webp")
    ]
    assert done.path.name == "image.webp"


def test_png_text_chunks_are_dropped_and_transparency_kept(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ann Example, 12 Home Street")
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(tmp_path / "a.png", pnginfo=info)
    done = process(tmp_path / "a.png", tmp_path / "out", "image/png")
    assert_no_metadata(done.path)
    with Image.open(done.path) as image:
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0)) == (255, 0, 0, 0)


def test_a_png_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")  # 20,000 x 20,000 pixels in ~50 KiB
    assert bomb.stat().st_size < 100_000
    assert rejected(bomb, tmp_path / "out", "image/png") is Rejection.IMAGE_TOO_LARGE


def test_a_pixel_flood_is_refused_from_the_header_before_decoding(tmp_path: Path) -> None:
    # 8,000 x 6,000 is under Pillow's own bomb limit but over ours; its pixel data is
    # garbage, so only a check made before decoding can say "too large".
    flood = png_header_only(tmp_path / "flood.png", 8_000, 6_000)
    assert rejected(flood, tmp_path / "out", "image/png") is Rejection.IMAGE_TOO_LARGE
    small = png_header_only(tmp_path / "small.png", 80, 60)
    assert rejected(small, tmp_path / "out", "image/png") is Rejection.IMAGE_INVALID


def test_an_animated_gif_with_too_many_frames_is_refused(tmp_path: Path) -> None:
    gif = animated_gif(tmp_path / "a.gif", frames=5)
    assert rejected(gif, tmp_path / "out", "image/gif", max_frames=4) is Rejection.TOO_MANY_FRAMES


def test_all_frames_together_are_bounded_in_pixels(tmp_path: Path) -> None:
    gif = animated_gif(tmp_path / "a.gif", frames=5, size=(100, 100))  # 50,000 pixels
    reason = rejected(gif, tmp_path / "out", "image/gif", max_pixels=40_000)
    assert reason is Rejection.IMAGE_TOO_LARGE


def test_an_animation_within_bounds_keeps_its_frames(tmp_path: Path) -> None:
    done = process(animated_gif(tmp_path / "a.gif", frames=5), tmp_path / "out", "image/gif")
    assert done.frames == 5
    with Image.open(done.path) as image:
        frames = [frame.convert("RGB").getpixel((0, 0)) for frame in ImageSequence.Iterator(image)]
    assert frames == [(index * 40 % 256, 0, 0) for index in range(5)]
    assert done.thumbnails == ()  # 64 x 48: smaller than every bound


def test_a_truncated_image_is_invalid(tmp_path: Path) -> None:
    data = image_bytes((400, 300), "JPEG")
    truncated = write(tmp_path / "cut.jpg", data[: len(data) // 2])
    assert rejected(truncated, tmp_path / "out", "image/jpeg") is Rejection.IMAGE_INVALID


def test_a_png_with_a_bad_checksum_is_invalid(tmp_path: Path) -> None:
    data = bytearray(image_bytes((40, 30), "PNG"))
    data[-13] ^= 0xFF  # the IDAT chunk's CRC (then IEND's 12 bytes): the pixels decode fine
    corrupt = write(tmp_path / "bad.png", bytes(data))
    assert rejected(corrupt, tmp_path / "out", "image/png") is Rejection.IMAGE_INVALID


def test_only_the_sniffed_format_is_decoded(tmp_path: Path) -> None:
    # A real GIF handed over as PNG: the PNG decoder alone is tried, and refuses it.
    gif = animated_gif(tmp_path / "a.gif", frames=1)
    assert rejected(gif, tmp_path / "out", "image/png") is Rejection.IMAGE_INVALID


def test_an_executable_is_not_an_image(tmp_path: Path) -> None:
    program = executable(tmp_path / "cat.png")
    assert rejected(program, tmp_path / "out", "image/png") is Rejection.IMAGE_INVALID


def test_only_raster_types_are_processed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an image type"):
        process(write(tmp_path / "x.svg", b"<svg/>"), tmp_path / "out", "image/svg+xml")
