"""A node's sends and room batches, second by second: for reading a fan-out run's counts.

Not part of Chorus: put this directory first on `PYTHONPATH` and name an output
file in `FANOUT_PROBE`; a `chorus serve` started with both (the bots are left
alone) counts, from start-up:

- `rounds`, `sends`, `bytes`: the flusher's end-of-round writes (one `send`
  per outbox that had something to write and was not waiting for its socket);
- `batches`, `events`, `deliveries`: the room actors' broadcasts of stored
  events (`RoomActor._broadcast_all`: one per stored batch, backfill or
  resync);
- `user`, `system`: the process's CPU seconds (`os.times`);

and appends them, with `time.monotonic()`, as one JSON object a line to
`FANOUT_PROBE.<pid>` at the end of the first round after each second, and at
exit. `bench/fanout_probe_report.py` prints the differences per second. The
cost is one Python call per scheduler round and per broadcast batch.

    FANOUT_PROBE=/tmp/probe PYTHONPATH=$PWD/bench/fanout_probe:$PWD \
        .venv/bin/python bench/run.py fanout-100-all
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

_PATH = os.environ.get("FANOUT_PROBE")


def _install(path: str) -> None:
    from chorus.actors import room
    from chorus.gateway import _outbox

    counts = dict.fromkeys(("rounds", "sends", "bytes", "batches", "events", "deliveries"), 0)
    file = f"{path}.{os.getpid()}"
    clock = time.monotonic
    next_line = clock() + 1.0

    def line() -> None:
        times = os.times()
        record = {"t": clock(), "user": times.user, "system": times.system, **counts}
        with open(file, "a") as out:
            out.write(json.dumps(record) + "\n")

    write = _outbox._write

    def counted_write(outboxes: list[_outbox.Outbox]) -> bool:
        nonlocal next_line
        counts["rounds"] += 1
        for outbox in outboxes:
            if not outbox._blocked and outbox._buffer:
                counts["sends"] += 1
                counts["bytes"] += len(outbox._buffer)
        done = write(outboxes)
        if clock() >= next_line:
            next_line = clock() + 1.0
            line()
        return done

    broadcast_all = room.RoomActor._broadcast_all

    def counted_broadcast_all(self: room.RoomActor, frames: list[bytes]) -> int:
        deliveries = broadcast_all(self, frames)
        if frames:
            counts["batches"] += 1
            counts["events"] += len(frames)
            counts["deliveries"] += deliveries
        return deliveries

    _outbox._write = counted_write
    room.RoomActor._broadcast_all = counted_broadcast_all  # type: ignore[method-assign]
    atexit.register(line)


if _PATH and sys.argv[1:2] == ["serve"]:
    _install(_PATH)
