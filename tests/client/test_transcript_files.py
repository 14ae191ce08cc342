"""How `chorus chat` names files: sizes for people, attachment lines, /upload's path."""

from __future__ import annotations

import pytest

from chorus import protocol
from chorus.client._file_commands import split_path
from chorus.client._message_commands import UsageError
from chorus.client._transcript import attachment_line, human_size


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (10 * 1024, "10 KiB"),
        (5 * 1024 * 1024 + 1, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2048 * 1024**4, "2048 TiB"),
    ],
)
def test_sizes_read_like_people_write_them(size: int, shown: str) -> None:
    assert human_size(size) == shown


def info(**changes: object) -> protocol.FileInfo:
    fields: dict[str, object] = {
        "id": "f_1",
        "name": "cat.png",
        "size": 1536,
        "content_type": "image/png",
        "state": "ready",
        "reason": None,
        "scan": "unscanned",
        "width": 640,
        "height": 480,
        "thumbnails": (),
        "created_at": 0,
    }
    return protocol.FileInfo(**(fields | changes))  # type: ignore[arg-type]


def test_an_attachment_shows_its_name_size_type_and_dimensions() -> None:
    assert attachment_line(info()) == "[file] cat.png, 1.5 KiB, image/png, 640x480 (f_1)"
    document = info(name="a.pdf", content_type="application/pdf", width=None, height=None)
    assert attachment_line(document) == "[file] a.pdf, 1.5 KiB, application/pdf (f_1)"


def test_a_hostile_name_cannot_drive_the_terminal() -> None:
    line = attachment_line(info(name="\x1b[2Jevil\u202egnp.exe"))
    assert "\x1b" not in line
    assert "\u202e" not in line


@pytest.mark.parametrize(
    ("argument", "parts"),
    [
        ("a.png", ("a.png", "")),
        ("a.png  hello there ", ("a.png", "hello there")),
        ('"my cat.png" look', ("my cat.png", "look")),
        ("'x y.txt' cap", ("x y.txt", "cap")),
        ("~/x.txt", ("~/x.txt", "")),
    ],
)
def test_upload_takes_a_path_then_a_caption(argument: str, parts: tuple[str, str]) -> None:
    assert split_path(argument) == parts


@pytest.mark.parametrize("argument", ["", "   ", '"unclosed.png', '""'])
def test_upload_without_a_path_is_a_usage_error(argument: str) -> None:
    with pytest.raises(UsageError):
        split_path(argument)
