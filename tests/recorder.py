"""A room subscriber standing in for a WebSocket connection: it decodes and keeps every frame."""

from __future__ import annotations

import attrs
import trio

from chorus import protocol


@attrs.define(eq=False)
class Recorder:
    """A subscriber that keeps the decoded frames it was sent."""

    id: str
    user_id: str = "u_reader"
    open: bool = True
    closed_with: int | None = None
    frames: list[protocol.ServerFrame] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def send(self, payload: bytes) -> bool:
        if self.open:
            self.frames.append(protocol.decode_server_frame(payload))
            self.changed.set()
            self.changed = trio.Event()
        return self.open

    async def wait_for(self, count: int, kind: type[protocol.ServerFrame]) -> None:
        """Wait (store calls run in threads, so not for quiescence) for `count` such frames."""
        with trio.fail_after(10):
            while sum(isinstance(f, kind) for f in self.frames) < count:
                await self.changed.wait()

    def send_frame(self, frames: bytes) -> bool:
        """One or more whole broadcast frames: each a WebSocket header, then its JSON payload."""
        if not self.open:
            return False
        view = memoryview(frames)
        while view:
            length, header = view[1], 2
            if length == 126:
                length, header = int.from_bytes(view[2:4]), 4
            elif length == 127:
                length, header = int.from_bytes(view[2:10]), 10
            self.send(bytes(view[header : header + length]))
            view = view[header + length :]
        return self.open

    def close(self, code: int, reason: str) -> None:
        self.open = False
        self.closed_with = code
        self.changed.set()
        self.changed = trio.Event()

    def messages(self) -> list[protocol.Message]:
        return [f.message for f in self.frames if isinstance(f, protocol.MessageEvent)]
