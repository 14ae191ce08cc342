"""`chorus chat` against a real node, typed into line by line."""

from __future__ import annotations

import io
import queue
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from chorus.client import Room
from chorus.client.terminal import run_chat
from tests.e2e.node import PASSWORD, ChatUser, chat_user, open_node


@asynccontextmanager
async def bob_in_general(
    tmp_path: Path,
) -> AsyncIterator[tuple[ChatUser, Room, Keyboard, Screen]]:
    """A node, ada (SDK) in her room "general", and bob in `chorus chat` having joined it."""
    async with open_node(tmp_path) as running, chat_user(running, "ada") as ada:
        room = await ada.api.create_room("general", "public")
        await ada.client.join(room.id)
        keyboard, screen = Keyboard(), Screen()
        async with trio.open_nursery() as nursery:

            async def chat() -> None:
                await run_chat(running.http_url, "bob", PASSWORD, keyboard, screen)

            nursery.start_soon(chat)
            keyboard.type("/join general")
            await screen.wait_for("== general ==")
            yield ada, room, keyboard, screen
            keyboard.type("/quit")


class Keyboard(io.TextIOBase):
    """Standard input the test types into; `readline` blocks (in a thread) like a terminal."""

    def __init__(self) -> None:
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def type(self, line: str) -> None:
        self._lines.put(line + "\n")

    def readline(self) -> str:  # type: ignore[override]
        return self._lines.get()


class Screen(io.StringIO):
    """Standard output the test can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = trio.Event()

    def write(self, text: str, /) -> int:
        written = super().write(text)
        self.changed.set()
        return written

    async def wait_for(self, text: str) -> None:
        with trio.move_on_after(15):
            while text not in self.getvalue():
                self.changed = trio.Event()
                await self.changed.wait()
        assert text in self.getvalue(), f"{text!r} never appeared on:\n{self.getvalue()}"


async def test_a_newcomer_registers_joins_chats_and_quits(tmp_path: Path) -> None:
    async with open_node(tmp_path) as running, chat_user(running, "ada") as ada:
        room = await ada.api.create_room("general", "public")
        await ada.client.join(room.id)
        keyboard, screen = Keyboard(), Screen()
        async with trio.open_nursery() as nursery:
            result: list[int] = []

            async def chat() -> None:
                result.append(await run_chat(running.http_url, "bob", PASSWORD, keyboard, screen))

            nursery.start_soon(chat)
            await screen.wait_for("created account 'bob'")
            await screen.wait_for("public rooms: general")
            keyboard.type("/join general")
            await screen.wait_for("== general ==")
            keyboard.type("hello from the terminal")
            await ada.wait_for_messages(1, room.id)
            assert ada.messages(room.id)[0].body == "hello from the terminal"
            await ada.client.send(room.id, "hi bob")
            await screen.wait_for("ada: hi bob")
            # Presence arrives on joining if ada was already announced, live otherwise.
            await screen.wait_for("* ada is online")
            keyboard.type("/who")
            await screen.wait_for("ada (owner, online)")
            keyboard.type("/nonsense")
            await screen.wait_for("unknown command /nonsense")
            keyboard.type("/quit")
        assert result == [0]


async def test_threads_edits_reactions_and_mentions_from_the_terminal(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path) as (ada, room, keyboard, screen):
        await ada.client.send(room.id, "lunch @bob?")
        await screen.wait_for("! ada mentioned you in general #1: lunch @bob?")
        await screen.wait_for("#1 ")
        keyboard.type("/reply 1 sure")
        await screen.wait_for("bob ↳#1: sure")
        keyboard.type("/edit 2 sure, at noon")
        await screen.wait_for("* bob edited #2: sure, at noon")
        keyboard.type("/react 1 👍")
        await screen.wait_for("* bob reacted 👍 on #1")
        keyboard.type("/react 1 👍")
        await screen.wait_for("nothing to change")
        keyboard.type("/delete 1")
        await screen.wait_for("(forbidden)")  # ada's message, and bob is no moderator
        keyboard.type("/delete 2")
        await screen.wait_for("* bob deleted #2")
        keyboard.type("/read")
        await screen.wait_for("read up to #5")
        keyboard.type("/edits 2")
        await screen.wait_for("never edited")  # deleting erased its history
        keyboard.type("/reactions 1")
        await screen.wait_for("  👍 1: bob")
        keyboard.type("/threads")
        await screen.wait_for("[general] #1 ada: lunch @bob? (0 replies)")
        keyboard.type("/who")
        await screen.wait_for("(member, online, read up to #5)")
        keyboard.type("/notify mentions")
        await screen.wait_for("notifications for general: mentions")
        keyboard.type("/edit 99 nothing")
        await screen.wait_for("no message #99 shown in this room")
        kinds = [type(frame).TYPE for frame in await ada.wait_for_room_events(room.id, 5)]
        assert kinds == ["message", "message", "edited", "reaction", "deleted"]


async def test_search_unread_notifications_and_threads_from_the_terminal(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path) as (ada, room, keyboard, screen):
        root = await ada.client.send(room.id, "where is the quarterly report?")
        await ada.client.send(room.id, "in the wiki @bob", thread=root.id)
        await screen.wait_for("! ada mentioned you in general #2")
        keyboard.type("/unread")
        await screen.wait_for("general: 2 unread, 1 mentions")
        keyboard.type("/read")
        await screen.wait_for("read up to #2")
        keyboard.type("/unread")
        await screen.wait_for("all read")
        keyboard.type("/thread 1")
        await screen.wait_for("1 reply")
        await screen.wait_for("  #2 ")
        keyboard.type("/search quarterly")
        await screen.wait_for("[general] #1 ada: where is the ⟦quarterly⟧ report?")
        keyboard.type("/search nothing-like-this")
        await screen.wait_for("no messages found")
        keyboard.type("/notifications")
        await screen.wait_for("mention in general #2 (new)")
        keyboard.type("/notifications")
        await screen.wait_for("mention in general #2\n")
