"""The person's side of `chorus chat`: what they type, key by key where possible, and what we print.

On a POSIX terminal the keys are read one by one (the terminal's own line
editing is switched off while chatting, and `LineEditor` does backspace and
Ctrl+U instead), so the client knows someone is typing before they press
Enter. Without a terminal (pipes, as in tests) input arrives in whatever
pieces the writer sends; on terminals without `termios` (Windows) it arrives
a line at a time, so others only see typing once a line is sent.
"""

from __future__ import annotations

import codecs
import contextlib
import getpass
import os
from collections.abc import Iterator
from typing import Protocol, TextIO

import trio

try:
    import termios
except ImportError:  # pragma: no cover (Windows)
    termios = None  # type: ignore[assignment]

_ERASE = {"\x7f", "\b"}
_KILL_LINE = "\x15"  # Ctrl+U
_END_OF_INPUT = "\x04"  # Ctrl+D


class Keys(Protocol):
    """Where the person's input comes from (standard input, or a test's keyboard)."""

    def read(self) -> str:
        """The next keys typed, waiting for at least one; "" at the end of input."""
        ...

    def keystrokes(self) -> contextlib.AbstractContextManager[bool]:
        """While inside: keys one by one, not echoed (True), or as before (False)."""
        ...

    def isatty(self) -> bool: ...


class StdinKeys:
    """`Keys` from a file descriptor (standard input): raw reads, decoded as UTF-8."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str:
        while data := os.read(self._fd, 4096):
            if text := self._decoder.decode(data):
                return text
        return self._decoder.decode(b"", final=True)

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    @contextlib.contextmanager
    def keystrokes(self) -> Iterator[bool]:
        if termios is None or not self.isatty():
            yield False
            return
        saved = termios.tcgetattr(self._fd)
        changed = list(saved)
        changed[3] &= ~(termios.ICANON | termios.ECHO)  # lflags; ISIG stays: Ctrl+C works
        changed[6] = list(saved[6])
        changed[6][termios.VMIN], changed[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self._fd, termios.TCSANOW, changed)
        try:
            yield True
        finally:
            termios.tcsetattr(self._fd, termios.TCSANOW, saved)


class LineEditor:
    """Turns keys into lines; with `echo`, also edits and echoes like a terminal would.

    Understands Enter, backspace, Ctrl+U (erase the line) and Ctrl+D on an
    empty line (end of input); other control keys and escape sequences (arrow
    keys) are ignored while editing.
    """

    def __init__(self) -> None:
        self.partial = ""
        """What has been typed of the current line."""
        self.ended = False
        """True once the input ended (Ctrl+D on an empty line while editing)."""

    def feed(self, keys: str, *, editing: bool) -> tuple[list[str], str]:
        """The lines `keys` completed, and what to echo for them (only when `editing`)."""
        lines: list[str] = []
        if not editing:
            *lines, self.partial = (self.partial + keys).split("\n")
            return [line.removesuffix("\r") for line in lines], ""
        echo: list[str] = []
        escape = False
        for key in keys:
            if escape:  # ESC [ ... final byte: a cursor or function key
                escape = not ("@" <= key <= "~" and key != "[")
            elif key == "\x1b":
                escape = True
            elif key in "\r\n":
                lines.append(self.partial)
                self.partial = ""
                echo.append("\n")
            elif key in _ERASE:
                if self.partial:
                    self.partial = self.partial[:-1]
                    echo.append("\b \b")
            elif key == _KILL_LINE:
                echo.append("\b \b" * len(self.partial))
                self.partial = ""
            elif key == _END_OF_INPUT:
                if not self.partial:
                    self.ended = True
                    break
            elif key.isprintable():
                self.partial += key
                echo.append(key)
        return lines, "".join(echo)


class Console:
    """Reads what the person types and prints lines without garbling their input.

    While keys are read one by one, a printed line first erases the line
    being typed and redraws it after, so incoming messages never split it.
    """

    def __init__(self, keys: Keys, out: TextIO) -> None:
        self._keys = keys
        self._out = out
        self._editor = LineEditor()
        self._editing = False
        self._lines: list[str] = []

    @property
    def partial(self) -> str:
        """The line being typed (not sent yet)."""
        return self._editor.partial

    def say(self, text: str) -> None:
        if self._editing and self._editor.partial:
            text = f"\r\x1b[K{text}\n{self._editor.partial}"
            self._out.write(text)
            self._out.flush()
        else:
            print(text, file=self._out, flush=True)

    @contextlib.contextmanager
    def keystrokes(self) -> Iterator[None]:
        """Read key by key inside this block where the input allows it."""
        with self._keys.keystrokes() as self._editing:
            try:
                yield
            finally:
                self._editing = False

    async def typed(self) -> list[str]:
        """Wait for more keys; the lines they completed (maybe none).

        Raises `EOFError` at the end of input (a last line without a newline
        is returned first).
        """
        if self._lines:
            lines, self._lines = self._lines, []
            return lines
        if self._editor.ended:
            raise EOFError
        keys = await trio.to_thread.run_sync(self._keys.read, abandon_on_cancel=True)
        if not keys:
            self._editor.ended = True
            last, self._editor.partial = self._editor.partial, ""
            return [last] if last else await self.typed()
        lines, echo = self._editor.feed(keys, editing=self._editing)
        if echo:
            self._out.write(echo)
            self._out.flush()
        return lines

    async def ask(self, question: str) -> str:
        """Print `question` and return the line answered; `EOFError` at the end of input."""
        self._out.write(question)
        self._out.flush()
        while not self._lines:
            self._lines = await self.typed()
        if not self._keys.isatty():
            self._out.write("\n")  # a pipe's answer is not echoed: end the question's line
        return self._lines.pop(0).strip()

    async def ask_secret(self, question: str) -> str:
        """Like `ask`, but not echoed on a terminal (there it reads the terminal itself)."""
        if self._keys.isatty():
            return await trio.to_thread.run_sync(getpass.getpass, question)
        return await self.ask(question)
