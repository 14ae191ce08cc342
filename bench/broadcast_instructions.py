"""The per-recipient cost of a broadcast, without the store: for instruction counts.

Usage: python bench/broadcast_instructions.py [--recipients N] [--rounds K]

A room actor's `_broadcast` of one frame to N subscribers backed by gateway
outboxes over Unix socket pairs, then the flusher's end-of-round writes
(`Flusher._flush`), K times; nothing reads the other ends (the kernel buffers
hold K frames). No trio run, no store, no threads: every instruction counted
is the per-recipient path, so `valgrind --tool=callgrind` of `--rounds K`
minus `--rounds 0`, divided by N*K, is that path's cost per delivery, the
same from run to run (unlike `fanout_instructions.py`, whose store thread
groups differently each run).
"""

from __future__ import annotations

import argparse
import socket

from chorus.actors.room import RoomActor, RoomConfig
from chorus.gateway import text_frame
from chorus.gateway._outbox import Flusher, Outbox


def _never() -> None:
    raise AssertionError("not expected here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    flusher = Flusher()
    room = RoomActor("r_bench", store=None, config=RoomConfig())  # type: ignore[arg-type]
    pairs = [socket.socketpair() for _ in range(args.recipients)]
    for n, (ours, _) in enumerate(pairs):
        ours.setblocking(False)
        outbox = Outbox(ours, flusher, limit=1 << 24, on_overflow=_never, on_broken=_never)
        room._fanout.add(f"c{n}", outbox.offer_bytes)  # `Connection.send_frame`
    frame = text_frame(b'{"type":"message","message":{"seq":1,"body":"' + b"x" * 200 + b'"}}')
    for _ in range(args.rounds):
        room._broadcast(frame)
        flusher._flush()
    assert not flusher.dirty
    print(f"{args.recipients * args.rounds} deliveries")


if __name__ == "__main__":
    main()
