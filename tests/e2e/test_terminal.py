"""`chorus chat` against a real node, typed into as a person would (lines, keys, a terminal)."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import queue
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from chorus import protocol
from chorus.client import ApiError, Room
from chorus.client.terminal import run_chat
from tests.cli.test_serve import CHORUS
from tests.e2e.node import (
    PASSWORD,
    ChatUser,
    RunningNode,
    chat_user,
    connected_user,
    open_node,
)
from tests.ports import free_port

NEW_ACCOUNT = [PASSWORD, "y", PASSWORD]
"""The answers of a newcomer: the password, yes (create the account), the password again."""


@asynccontextmanager
async def bob_in_general(
    tmp_path: Path,
) -> AsyncIterator[tuple[ChatUser, Room, Keyboard, Screen]]:
    """A node, ada (SDK) in her room "general", and bob in `chorus chat` having joined it."""
    async with open_node(tmp_path) as running, chat_user(running, "ada") as ada:
        room = await ada.api.create_room("general", "public")
        await ada.client.join(room.id)
        async with chatting(running, "bob", *NEW_ACCOUNT) as (keyboard, screen):
            keyboard.type("/join general")
            await screen.wait_for("== general ==")
            yield ada, room, keyboard, screen


@asynccontextmanager
async def chatting(
    running: RunningNode, username: str, *answers: str
) -> AsyncIterator[tuple[Keyboard, Screen]]:
    """`chorus chat` as `username`, given the log-in `answers`; /quit when the block ends."""
    keyboard, screen = Keyboard(), Screen()
    for answer in answers:
        keyboard.type(answer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_chat, running.http_url, username, keyboard, screen)
        await screen.wait_for("/help lists the commands")
        yield keyboard, screen
        keyboard.type("/quit")


class Keyboard:
    """Standard input the test types into; `read` blocks (in a thread) like a terminal."""

    def __init__(self) -> None:
        self._keys: queue.SimpleQueue[str] = queue.SimpleQueue()

    def type(self, line: str) -> None:
        """Type a line and press Enter."""
        self._keys.put(line + "\n")

    def press(self, keys: str) -> None:
        """Type without pressing Enter."""
        self._keys.put(keys)

    def close(self) -> None:
        """End the input (Ctrl+D)."""
        self._keys.put("")

    def read(self) -> str:
        return self._keys.get()

    def keystrokes(self) -> contextlib.AbstractContextManager[bool]:
        return contextlib.nullcontext(False)

    def isatty(self) -> bool:
        return False


class Screen(io.StringIO):
    """Standard output the test can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = trio.Event()

    def write(self, text: str, /) -> int:
        written = super().write(text)
        self.changed.set()
        return written

    def clear(self) -> None:
        """Forget what was shown so far (to wait for something shown again)."""
        self.truncate(0)
        self.seek(0)

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
        for answer in NEW_ACCOUNT:
            keyboard.type(answer)
        async with trio.open_nursery() as nursery:
            result: list[int] = []

            async def chat() -> None:
                result.append(await run_chat(running.http_url, "bob", keyboard, screen))

            nursery.start_soon(chat)
            await screen.wait_for("no account 'bob': create it? [y/N] \n")
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
            keyboard.close()  # Ctrl+D
        assert result == [0]


async def test_an_account_is_created_only_when_asked_with_a_confirmed_valid_password(
    tmp_path: Path,
) -> None:
    async with open_node(tmp_path) as running:

        async def chat(*answers: str) -> tuple[int, str]:
            keyboard, screen = Keyboard(), Screen()
            for answer in [*answers, "/quit"]:
                keyboard.type(answer)
            return await run_chat(running.http_url, "bob", keyboard, screen), screen.getvalue()

        status, screen = await chat(PASSWORD, "n")
        assert (status, screen.splitlines()[-1]) == (1, "not logged in")
        status, screen = await chat("short", "y", "short", PASSWORD, "typo", PASSWORD, PASSWORD)
        assert status == 0
        assert screen.count("new password: ") == 2
        assert "password" in screen.split("the same password again: ")[1]  # the server's rule
        assert "the two passwords differ" in screen
        assert "created account 'bob'" in screen
        status, screen = await chat("wrong but long", "y", "wrong but long")
        assert (status, screen.splitlines()[-1]) == (1, "'bob' exists: the password was wrong")
        status, screen = await chat(PASSWORD)
        assert status == 0
        assert "create it?" not in screen


async def test_a_closed_sign_up_is_told_not_thrown(tmp_path: Path) -> None:
    async with open_node(tmp_path, registration_open=False) as running:
        keyboard, screen = Keyboard(), Screen()
        for answer in [PASSWORD, "y", PASSWORD, "/quit"]:
            keyboard.type(answer)
        status = await run_chat(running.http_url, "bob", keyboard, screen)
        assert (status, screen.getvalue().splitlines()[-1]) == (
            1,
            "sign-up is closed on this server: ask an admin for an account",
        )


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
        await screen.wait_for("read up to #2")
        keyboard.type("/edits 2")
        await screen.wait_for("never edited")  # deleting erased its history
        keyboard.type("/reactions 1")
        await screen.wait_for("  👍 1: bob")
        keyboard.type("/threads")
        await screen.wait_for("[general] #1 ada: lunch @bob? (0 replies)")
        keyboard.type("/who")
        await screen.wait_for("(member, online, read up to #2)")
        keyboard.type("/notify mentions")
        await screen.wait_for("notifications for general: mentions")
        keyboard.type("/edit 99 nothing")
        await screen.wait_for("no message 99; messages show as #N before their text")
        kinds = [type(frame).TYPE for frame in await ada.wait_for_room_events(room.id, 5)]
        assert kinds == ["message", "message", "edited", "reaction", "deleted"]
        # Numbers are per message: the edit, reaction and delete took none (seq 6 is #3).
        await ada.client.send(room.id, "still there?")
        await screen.wait_for("#3 ")
        assert "ada: still there?" in screen.getvalue().split("#3 ")[1]


async def test_search_unread_notifications_and_threads_from_the_terminal(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path) as (ada, room, keyboard, screen):
        root = await ada.client.send(room.id, "where is the quarterly report?")
        await screen.wait_for("ada: where is the quarterly report?")
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
        await screen.wait_for("ada mentioned you in general #2: in the wiki @bob (new)")
        keyboard.type("/notifications")
        await screen.wait_for("ada mentioned you in general #2: in the wiki @bob\n")


async def test_every_command_given_a_wrong_argument_shows_its_usage(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path) as (ada, room, keyboard, screen):
        await ada.client.send(room.id, "hello")
        await screen.wait_for("ada: hello")
        wrong = {
            "/reply": "usage: /reply N TEXT",
            "/reply 1": "usage: /reply N TEXT",
            "/edit x": "usage: /edit N TEXT",
            "/react 1": "usage: /react N EMOJI",
            "/unreact one 👍": "usage: /unreact N EMOJI",
            "/thread": "usage: /thread N",
            "/delete 1 now": "usage: /delete N",
            "/edits x": "usage: /edits N",
            "/reactions": "usage: /reactions N",
            "/history all": "usage: /history [COUNT]",
            "/notify loudly": "usage: /notify all|mentions|none",
            "/search": "usage: /search TEXT",
            "/create": "usage: /create NAME [private]",
            "/create x secret": "usage: /create NAME [private]",
            "/join": "usage: /join NAME",
            "/dm": "usage: /dm NAME[,NAME...]",
            "/invite": "usage: /invite NAME",
            "/invites all": "usage: /invites",
            "/accept": "usage: /accept ROOM",
            "/decline a b": "usage: /decline ROOM",
            "/rooms all": "usage: /rooms",
            "/read 3": "usage: /read",
            "/help me": "usage: /help",
            "/kick": "usage: /kick NAME",
            "/ban": "usage: /ban NAME [REASON]",
            "/mute ada soon": "usage: /mute NAME [MINUTES]",
            "/role ada owner": "usage: /role NAME moderator|member",
            "/lock now": "usage: /lock",
            "/block": "usage: /block NAME",
        }
        for line, usage in wrong.items():
            keyboard.type(line)
            keyboard.type("/nonsense")  # a marker: the answer to `line` is printed before it
            await screen.wait_for(f"{usage}\nunknown command /nonsense")
            screen.clear()
        keyboard.type("/help")
        await screen.wait_for("anything else is sent to the current room")
        assert all(usage.removeprefix("usage: ") in screen.getvalue() for usage in wrong.values())


async def test_direct_messages_are_opened_and_entered_by_name(tmp_path: Path) -> None:
    async with (
        open_node(tmp_path) as running,
        chat_user(running, "ada") as ada,
        chat_user(running, "carol") as carol,
    ):
        await ada.api.create_room("general", "public")
        async with chatting(running, "bob", *NEW_ACCOUNT) as (keyboard, screen):
            keyboard.type("/dm ada")
            await screen.wait_for("== ada (direct) ==")
            keyboard.type("psst")
            await screen.wait_for("bob: psst")
            bob = await ada.api.user_by_name("BOB")
            direct = await ada.api.direct_room(bob.id)
            assert [m.body for m in await ada.api.history(direct.id)] == ["psst"]
            keyboard.type("/dm ada,carol")
            await screen.wait_for("== ada, carol (direct) ==")
            keyboard.type("all three of us")
            await screen.wait_for("bob: all three of us")
            group = await carol.api.group_room([ada.id, bob.id])
            assert [m.body for m in await carol.api.history(group.id)] == ["all three of us"]
            keyboard.type("/rooms")
            await screen.wait_for("your rooms: ")
            keyboard.type("/join general")
            await screen.wait_for("== general ==")
            screen.clear()
            keyboard.type("/join ada")  # as /rooms shows the direct room
            await screen.wait_for("== ada (direct) ==")
            await screen.wait_for("bob: psst")
            keyboard.type("/join nobody")
            await screen.wait_for("no room or person called 'nobody'")
            keyboard.type("/dm ada,nobody")
            await screen.wait_for("nobody is called 'nobody'")


async def test_two_terminals_see_each_other_typing(tmp_path: Path) -> None:
    async with (
        open_node(tmp_path) as running,
        chatting(running, "ada", *NEW_ACCOUNT) as (ada_keys, ada_screen),
        chatting(running, "bob", *NEW_ACCOUNT) as (bob_keys, bob_screen),
    ):
        ada_keys.type("/create general")
        await ada_screen.wait_for("== general ==")
        bob_keys.type("/join general")
        await bob_screen.wait_for("== general ==")
        ada_keys.press("hel")
        await bob_screen.wait_for("(ada is typing…)")
        ada_keys.type("lo")
        await bob_screen.wait_for("ada: hello")
        bob_keys.press("hi a")
        await ada_screen.wait_for("(bob is typing…)")
        bob_keys.type("da")
        await ada_screen.wait_for("bob: hi ada")


async def test_an_outage_shows_as_status_lines_and_the_missed_messages(tmp_path: Path) -> None:
    ports = {"http_port": free_port(), "gateway_port": free_port()}
    async with trio.open_nursery() as nursery:
        async with open_node(tmp_path, **ports) as first:
            ada: ChatUser = await nursery.start(connected_user, first, "ada")
            room = await ada.api.create_room("general", "public")
            keyboard, screen = Keyboard(), Screen()
            for answer in [*NEW_ACCOUNT, "/join general", "/nonsense"]:
                keyboard.type(answer)
            nursery.start_soon(run_chat, first.http_url, "bob", keyboard, screen)
            await screen.wait_for("unknown command /nonsense")  # joined, history shown
        await screen.wait_for("* connection lost, reconnecting…")
        # While bob retries, an API-only node stores two messages.
        async with open_node(tmp_path, role="api", **ports):
            for n in range(2):
                await ada.api.post(room.id, f"missed {n}", client_id=f"missed-{n}")
        async with open_node(tmp_path, **ports):
            await screen.wait_for("* reconnected, caught up 2 messages")
            assert "ada: missed 1" in screen.getvalue()
            assert screen.getvalue().count("reconnecting") == 1
            keyboard.type("/quit")
        nursery.cancel_scope.cancel()


async def test_chorus_chat_through_pipes_shows_the_outage_without_log_lines(
    tmp_path: Path,
) -> None:
    ports = {"http_port": free_port(), "gateway_port": free_port()}
    async with trio.open_nursery() as nursery:
        async with open_node(tmp_path, **ports) as first:
            chat = functools.partial(
                trio.run_process,
                [*CHORUS, "chat", "--server", first.http_url, "--user", "bob", "--no-e2e"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
            process: trio.Process = await nursery.start(chat)  # killed if the test fails
            assert process.stdin is not None
            assert process.stdout is not None
            assert process.stderr is not None
            output = Output(process.stdout)
            answers = [*NEW_ACCOUNT, "/create general", ""]
            await process.stdin.send_all("\n".join(answers).encode())
            await output.wait_for("== general ==")
        # Stopped gracefully: the connection is closed with 4007 (drained).
        await output.wait_for("* connection lost, reconnecting…")
        async with open_node(tmp_path, **ports):
            await output.wait_for("* reconnected, caught up 0 messages")
            await process.stdin.aclose()  # Ctrl+D
            with trio.fail_after(15):
                assert await process.wait() == 0
        errors = await process.stderr.receive_some()
    assert "client.disconnected" not in output.seen  # nor any other log line
    assert output.seen.count("reconnect") == 2
    assert errors == b""


class Output:
    """What a process printed, waited on as it arrives."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self.seen = ""

    async def wait_for(self, text: str) -> None:
        with trio.fail_after(15):
            while text not in self.seen:
                chunk = await self._stream.receive_some()
                assert chunk, f"output ended before {text!r}:\n{self.seen}"
                self.seen += chunk.decode()


async def test_on_a_terminal_keys_are_read_one_by_one_and_typing_is_told(tmp_path: Path) -> None:
    termios = pytest.importorskip("termios")  # POSIX terminals only
    async with open_node(tmp_path) as running, chat_user(running, "ada") as ada:
        room = await ada.api.create_room("general", "public")
        await ada.client.join(room.id)
        controller, terminal = os.openpty()
        async with trio.open_nursery() as nursery:
            chat = functools.partial(
                trio.run_process,
                [*CHORUS, "chat", "--server", running.http_url, "--user", "bob", "--no-e2e"],
                stdin=terminal,
                stdout=terminal,
                stderr=terminal,
                start_new_session=True,  # never the test's own terminal
                check=False,
            )
            process: trio.Process = await nursery.start(chat)
            os.close(terminal)
            screen = Output(trio.lowlevel.FdStream(os.dup(controller)))
            keys = trio.lowlevel.FdStream(os.dup(controller))
            for question, answer in [
                ("password: ", PASSWORD),
                ("create it? [y/N] ", "y"),
                ("the same password again: ", PASSWORD),
                ("public rooms: general", "/join general"),
            ]:
                await screen.wait_for(question)
                await keys.send_all(f"{answer}\r".encode())
            await screen.wait_for("== general ==")
            await keys.send_all(b"hepl")
            typing = await ada.wait_for(lambda f: isinstance(f, protocol.TypingEvent))
            assert isinstance(typing, protocol.TypingEvent)
            await screen.wait_for("hepl")  # echoed by chorus chat, not by the terminal
            await keys.send_all(b"\x7f\x7flp me\r")  # backspace twice
            await ada.wait_for_messages(1, room.id)
            assert ada.messages(room.id)[0].body == "help me"
            await ada.client.typing(room.id)
            await screen.wait_for("(ada is typing…)")
            await keys.send_all(b"wai")
            await screen.wait_for("wai")
            await ada.client.send(room.id, "sure")
            await screen.wait_for("ada: sure\r\nwai")  # the line being typed, drawn again
            await keys.send_all(b"\x15\x04")  # Ctrl+U, then Ctrl+D on the empty line
            with trio.fail_after(15):
                assert await process.wait() == 0
            assert termios.tcgetattr(controller)[3] & termios.ICANON  # the terminal restored
            os.close(controller)


async def test_rooms_the_user_is_added_to_or_removed_from_are_shown_and_followed(
    tmp_path: Path,
) -> None:
    async with (
        open_node(tmp_path) as running,
        chat_user(running, "ada") as ada,
        chatting(running, "bob", *NEW_ACCOUNT) as (keyboard, screen),
    ):
        bob = await ada.api.user_by_name("bob")
        direct = await ada.api.direct_room(bob.id)
        await ada.client.join(direct.id)
        await ada.client.send(direct.id, "are you there?")
        await screen.wait_for("* ada started a conversation with you: /join ada")
        await screen.wait_for("ada: are you there?")  # live, without joining
        assert "[ada] #1 " in screen.getvalue()
        ops = await ada.api.create_room("ops", "private")
        await ada.api.invite(ops.id, bob.id)
        await screen.wait_for("* ada added you to ops: /join ops")
        keyboard.type("/join ops")
        await screen.wait_for("== ops ==")
        await ada.api.remove_member(ops.id, bob.id)
        await screen.wait_for("* ada removed you from ops")
        keyboard.type("still here?")
        await screen.wait_for("join a room first")


async def test_invitations_are_listed_accepted_declined_and_made_from_the_terminal(
    tmp_path: Path,
) -> None:
    async with (
        open_node(tmp_path) as running,
        chat_user(running, "ada") as ada,
        chatting(running, "bob", *NEW_ACCOUNT) as (keyboard, screen),
    ):
        bob = await ada.api.user_by_name("bob")
        ops = await ada.api.create_room("ops", "private")
        lab = await ada.api.create_room("lab", "private")
        await ada.api.create_invite(ops.id, bob.id)
        await ada.api.create_invite(lab.id, bob.id)
        await screen.wait_for("* ada invited you to lab: /accept lab or /decline lab")
        keyboard.type("/invites")
        await screen.wait_for("  lab  (from ada; /accept or /decline it)")
        keyboard.type("/accept ops")
        await screen.wait_for("== ops ==")
        await ada.client.join(ops.id)
        await ada.client.send(ops.id, "welcome")
        await screen.wait_for("ada: welcome")
        keyboard.type("/decline lab")
        await screen.wait_for("declined the invitation to lab")
        assert await ada.api.room_invites(lab.id) == []
        keyboard.type("/accept lab")
        await screen.wait_for("no pending invitation to 'lab'")
        keyboard.type("/create den private")
        await screen.wait_for("== den ==")
        keyboard.type("/invite ada")
        await screen.wait_for("invited ada (they /accept den)")
        assert [i.room.name for i in await ada.api.my_invites()] == ["den"]


async def test_other_peoples_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    async with bob_in_general(tmp_path) as (ada, room, _keyboard, screen):
        await ada.client.send(room.id, "\x1b[2Jwiped\u202e\n* ada removed you from general")
        await screen.wait_for("ada: <U+001B>[2Jwiped<U+202E>↵* ada removed you from general")
        assert "\x1b[2J" not in screen.getvalue()


async def test_moderation_commands_act_on_the_current_room(tmp_path: Path) -> None:
    async with (
        open_node(tmp_path) as running,
        chat_user(running, "ada") as ada,
        chatting(running, "bob", *NEW_ACCOUNT) as (keyboard, screen),
    ):
        keyboard.type("/create ops")
        await screen.wait_for("== ops ==")
        (room,) = [r for r in await ada.api.public_rooms() if r.name == "ops"]
        await ada.api.join_room(room.id)
        await ada.client.join(room.id)
        keyboard.type("/mute ada 5")
        await screen.wait_for(" for 5 min")
        with pytest.raises(ApiError) as muted:
            await ada.client.send(room.id, "can I?")
        assert muted.value.code == protocol.ErrorCode.FORBIDDEN
        keyboard.type("/unmute ada")
        await screen.wait_for("unmuted ")
        keyboard.type("/lock")
        await screen.wait_for("only moderators post")
        with pytest.raises(ApiError) as locked:
            await ada.client.send(room.id, "locked?")
        assert locked.value.code == protocol.ErrorCode.FORBIDDEN
        keyboard.type("/role ada moderator")
        await screen.wait_for("is now moderator of")
        await ada.client.send(room.id, "moderators post in a locked room")
        keyboard.type("/role ada member")
        await screen.wait_for("is now member of")
        keyboard.type("/unlock")
        await screen.wait_for("unlocked ")
        keyboard.type("/kick ada")
        await screen.wait_for("removed ")
        await ada.wait_for(lambda f: isinstance(f, protocol.RoomRemoved))
        await ada.api.join_room(room.id)
        keyboard.type("/ban ada flooding")
        await screen.wait_for("banned ")
        with pytest.raises(ApiError) as banned:
            await ada.api.join_room(room.id)
        assert banned.value.status == 403
        keyboard.type("/unban ada")
        await screen.wait_for("unbanned ")
        await ada.api.join_room(room.id)
        keyboard.type("/block ada")
        await screen.wait_for("no direct messages from them")
        bob = await ada.api.user_by_name("bob")
        with pytest.raises(ApiError) as blocked:
            await ada.api.direct_room(bob.id)
        assert blocked.value.status == 403
        keyboard.type("/help")
        await screen.wait_for("anything else is sent to the current room")
        for usage in ("/kick NAME", "/ban NAME [REASON]", "/mute NAME [MINUTES]", "/lock"):
            assert usage in screen.getvalue()
