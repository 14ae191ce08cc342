"""What `chorus chat` makes of keys: lines, line editing, and when typing is signalled."""

from __future__ import annotations

import trio
import trio.testing

from chorus.client._console import LineEditor
from chorus.client.terminal import TYPING_EVERY, TypingThrottle


async def test_typing_is_signalled_at_most_every_few_seconds_per_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    throttle = TypingThrottle()
    assert throttle.due("general")
    assert not throttle.due("general")  # the next key, right away
    assert throttle.due("random")  # another room has its own pace
    await trio.sleep(TYPING_EVERY - 0.1)
    assert not throttle.due("general")
    await trio.sleep(0.1)
    assert throttle.due("general")
    throttle.sent("general")  # a message ends the indicator: the next key tells again
    assert throttle.due("general")
    assert 2.0 <= TYPING_EVERY <= 3.0  # the server forwards one per 2 s; receivers show 6 s


def test_keys_become_lines_in_the_pieces_they_arrive_in() -> None:
    editor = LineEditor()
    assert editor.feed("hel", editing=False) == ([], "")
    assert editor.partial == "hel"
    assert editor.feed("lo\r\nsecond\nthi", editing=False) == (["hello", "second"], "")
    assert editor.partial == "thi"


def test_keys_one_by_one_are_edited_and_echoed() -> None:
    editor = LineEditor()
    assert editor.feed("hellp\x7fo", editing=True) == ([], "hellp\b \bo")
    assert editor.feed("\x1b[D!\r", editing=True) == (["hello!"], "!\n")  # arrow key ignored
    assert editor.feed("oops\x15ok\n", editing=True) == (["ok"], "oops" + "\b \b" * 4 + "ok\n")
    assert editor.feed("\x04", editing=True) == ([], "")
    assert editor.ended
