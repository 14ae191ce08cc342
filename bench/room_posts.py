"""The room actors' and the store's cost per message, without sockets: for instruction counts.

Usage: python bench/room_posts.py [--rooms N] [--rounds K] [--data-dir DIR]

Opens a SQLite store and the room actors as a node does, then posts K
rounds of one message to each of N rooms (all rooms at once, like busy
one-to-one rooms), waiting for every acknowledgement before the next round.
Run it under `valgrind --tool=callgrind` twice, with `--rounds K` and with
`--rounds 0`: the difference in instructions over N*K is the cost of one
message through the room actor and the store (checks, append, group commit,
worker-thread hand-offs), which does not depend on the machine's load the
way timings do. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import trio

from chorus.actors import Registry
from chorus.actors.room import Post, RoomConfig
from chorus.actors.rooms import Rooms
from chorus.persistence import RoomKind, open_sqlite_store
from chorus.supervisors import Supervisor


class Acks:
    """The room `Responder` of one round: counts the answers; `done` once all have come."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.refusals = 0
        self.done = trio.Event()

    def accepted(self, result: object) -> None:
        self._answered()

    def refused(self, error: Exception) -> None:
        self.refusals += 1
        self._answered()

    def _answered(self) -> None:
        self.expected -= 1
        if self.expected == 0:
            self.done.set()


async def run(data_dir: Path, room_count: int, rounds: int) -> None:
    async with open_sqlite_store(data_dir / "chorus.db") as store, trio.open_nursery() as nursery:
        sender = await store.create_user("sender", "Sender", "hash", 0)
        rooms = [
            (await store.create_room(f"room{n}", RoomKind.PUBLIC, sender.id, 0)).id
            for n in range(room_count)
        ]
        supervisor = await nursery.start(Supervisor("rooms").run)
        actors = Rooms(supervisor, Registry(), store, RoomConfig())
        for number in range(-1, rounds):  # round -1 starts the actors: counted in both runs
            acks = Acks(room_count)
            for room_id in rooms:
                post = Post(
                    sender_id=sender.id,
                    body=f"message {number} of room {room_id}",
                    client_id=f"{room_id}-{number}",
                    created_at=1,
                    responder=acks,
                )
                await actors.send(room_id, post)
            with trio.fail_after(60):
                await acks.done.wait()
            if acks.refusals:
                raise SystemExit(f"{acks.refusals} posts were refused")
        supervisor.request_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        trio.run(run, args.data_dir, args.rooms, args.rounds)
        return
    with tempfile.TemporaryDirectory(prefix="chorus-room-posts-") as folder:
        trio.run(run, Path(folder), args.rooms, args.rounds)


if __name__ == "__main__":
    main()
