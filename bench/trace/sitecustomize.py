"""Timestamps along the path of each sent message in a node: for finding a tail's cause.

Not part of Chorus: put this directory first on `PYTHONPATH` and name an output
file in `TRACE_SENDS`; every Python process started with both (the node, and
the bots, which record nothing) wraps a few methods at start-up. Without
`TRACE_SENDS` nothing is wrapped, and without this directory on the path
nothing of it is even loaded: no cost in the hot path of a normal node.

    TRACE_SENDS=/tmp/trace.jsonl PYTHONPATH=$PWD/bench/trace .venv/bin/python bench/run.py cluster-1

For every message a client sends, by its client id (`perf_counter` seconds,
CLOCK_MONOTONIC on Linux, the clock `chorus bots` stamps bodies with): `due`
when the bot was to send it (from the body), `text` the frame handed to the
connection (decoded off the socket), `post` its hand-off to the room (after
the rate limits), `batch` the room starting the batch that stores it,
`store`/`stored` the store call's start and end, `publish` the bus
publication queued, `delivered` the local deliveries and the sender's ack
queued on the outboxes, `flushed` the end of the
flusher pass that wrote them. Also every scheduler round longer than 2 ms
(`round`: start, seconds, and the trio thread's CPU seconds in it: less than
the round when other processes took the core) and every garbage collection longer than 1 ms
(`gc`: start, seconds, generation). Also, for the deliveries and the
connections (issue #15, session 13): every broadcast of stored events
(`delivery`: when, room, events, the earliest one's due time, and the path:
`own` batch, `heard`, `backfill`, `resync`, or `bus-now` in the bus's
callback), every backfill (`backfill`: start, seconds, room, delivered seq
before, up to, after), and the phases of connecting (`phase`: connection,
name, start, end: `created` after the WebSocket handshake, `_hello`,
`_report_presence`, `_subscribe` (a join), `membership`, `ask` and
`_send_presence_of_members` within it). With `TRACE_PROFILE_RAMP` set, yappi
(not a dependency: `pip install yappi`) profiles every thread from the first
connection to the first send and writes `TRACE_SENDS.yappi.<pid>` then (calls,
own and total CPU seconds, function, by own time). Written when the process exits
(`bench/run.py` stops nodes with SIGINT) to `TRACE_SENDS.<pid>`, one JSON object a line;
`bench/trace_report.py` reads it.
"""

from __future__ import annotations

import atexit
import bisect
import gc
import json
import os
import re
import time
from typing import Any

_PATH = os.environ.get("TRACE_SENDS")
_DUE = re.compile(r"(\d{9,}):")
_DUE_BYTES = re.compile(rb"(\d{9,}):")
"""`chorus bots` bodies carry the time each message was due, in `time.monotonic_ns()`."""


def _install(path: str) -> None:
    import trio

    from chorus.actors.connection import ChatConnection
    from chorus.actors.room import RoomActor
    from chorus.gateway._outbox import Flusher

    clock = time.perf_counter
    messages: dict[str, dict[str, float]] = {}
    rounds: list[tuple[float, float, float]] = []
    collections: list[tuple[float, float, int]] = []
    flushes: list[float] = []
    batches: dict[object, list[dict[str, float]]] = {}
    """The traced messages of the batch each room task is storing."""
    patched_stores: set[type] = set()
    deliveries: list[tuple[float, str, int, float, str]] = []
    """Every broadcast of stored events: when, room, events, the earliest one's due time
    (0 if none is a bot's), and the path (`bus-now` in the bus's callback)."""
    phases: list[tuple[int, str, float, float]] = []
    """Connection phases: connection id (0: unknown), name, start, end."""
    gaps: list[tuple[float, float, str, int, int, int]] = []
    """Every backfill: start, seconds, room, delivered before, up to, delivered after."""

    class Rounds(trio.abc.Instrument):
        started = 0.0
        started_cpu = 0.0

        def after_io_wait(self, timeout: float) -> None:
            self.started = clock()
            self.started_cpu = time.thread_time()

        def before_io_wait(self, timeout: float) -> None:
            if self.started:
                spent = clock() - self.started
                if spent > 0.002:
                    cpu = time.thread_time() - self.started_cpu
                    rounds.append((self.started, spent, cpu))

    instrument: list[Rounds] = []

    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = clock()
        else:
            spent = clock() - gc_started[0]
            if spent > 0.001:
                collections.append((gc_started[0], spent, info["generation"]))

    gc.callbacks.append(on_gc)

    on_text = ChatConnection.on_text

    async def traced_on_text(self: Any, text: str) -> None:
        if not instrument:
            instrument.append(Rounds())
            trio.lowlevel.add_instrument(instrument[0])
        self._trace_text = clock()
        await on_text(self, text)

    post = ChatConnection._post

    def traced_post(self: Any, send: Any, principal: Any) -> Any:
        if profile_state[0] == 1:  # the first send: the ramp is over
            import yappi  # not a dependency: pip install yappi

            profile_state[0] = 2
            yappi.stop()
            stats = sorted(yappi.get_func_stats(), key=lambda s: s.tsub, reverse=True)
            with open(f"{path}.yappi.{os.getpid()}", "w") as file:
                for s in stats:
                    file.write(
                        f"{s.ncall}\t{s.tsub:.6f}\t{s.ttot:.6f}\t{s.module}:{s.lineno} {s.name}\n"
                    )
        stamps = messages[send.client_id] = {"text": self._trace_text, "post": clock()}
        due = _DUE.search(send.body)
        if due is not None:  # a bot's message: when it was due (CLOCK_MONOTONIC, as ours)
            stamps["due"] = int(due.group(1)) / 1e9
        return post(self, send, principal)

    store_batch = RoomActor._store_batch

    async def plain_store_batch(self: Any, posts: list[Any]) -> None:
        store = type(self._store)
        if store not in patched_stores:
            patched_stores.add(store)
            store.append_admitted = _timed(store.append_admitted, batches, clock)
        now = clock()
        traced = [messages[p.client_id] for p in posts if p.client_id in messages]
        for message in traced:
            message["batch"] = now
            message["size"] = len(posts)
        task = trio.lowlevel.current_task()
        batches[task] = traced
        try:
            await store_batch(self, posts)
        finally:
            del batches[task]
        now = clock()
        for message in traced:
            message["delivered"] = now

    publish = RoomActor._publish

    async def traced_publish(self: Any, envelope: bytes) -> None:
        for message in batches.get(trio.lowlevel.current_task(), ()):
            message["publish"] = clock()
        await publish(self, envelope)

    flush = Flusher._flush

    def traced_flush(self: Any) -> None:
        had = bool(self.dirty)
        flush(self)
        if had:
            flushes.append(clock())

    paths: dict[object, str] = {}
    """What each task is delivering for (`own` batch, `heard`, `backfill`, `resync`)."""

    def in_path(name: str, method: Any) -> Any:
        async def traced(self: Any, *args: Any) -> Any:
            task = trio.lowlevel.current_task()
            outer = paths.get(task)
            paths[task] = name if outer is None else outer + ">" + name
            try:
                return await method(self, *args)
            finally:
                if outer is None:
                    del paths[task]
                else:
                    paths[task] = outer

        return traced

    broadcast_all = RoomActor._broadcast_all

    def traced_broadcast_all(self: Any, frames: list[bytes]) -> int:
        if frames:
            dues = [int(m.group(1)) for f in frames if (m := _DUE_BYTES.search(f))]
            path = paths.get(trio.lowlevel.current_task(), "bus-now")
            deliveries.append(
                (clock(), self.room_id, len(frames), min(dues) / 1e9 if dues else 0.0, path)
            )
        return broadcast_all(self, frames)

    backfill = RoomActor._backfill

    async def traced_backfill(self: Any, up_to: int) -> int:
        started, before = clock(), self._delivered
        try:
            return await backfill(self, up_to)
        finally:
            gaps.append((started, clock() - started, self.room_id, before, up_to, self._delivered))

    handle = RoomActor._handle

    async def traced_handle(self: Any, message: Any) -> None:
        name = type(message).__name__
        if name in ("Heard", "Resync"):
            await in_path(name.lower(), handle)(self, message)
        else:
            await handle(self, message)

    def phase(name: str, method: Any) -> Any:
        async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await method(self, *args, **kwargs)
            finally:
                key = id(self) if name not in ("membership", "ask") else 0
                phases.append((key, name, started, clock()))

        return traced

    from chorus import chat
    from chorus.actors.rooms import Rooms

    init = ChatConnection.__init__

    profiling = os.environ.get("TRACE_PROFILE_RAMP")
    profile_state = [0]

    def traced_init(self: Any, *args: Any) -> None:
        if profiling and profile_state[0] == 0:  # the first connection: the ramp starts
            import yappi

            profile_state[0] = 1
            yappi.set_clock_type("cpu")
            yappi.start(builtins=True, profile_threads=True)
        phases.append((id(self), "created", clock(), clock()))
        init(self, *args)

    membership = chat.membership

    async def traced_membership(*args: Any) -> Any:
        started = clock()
        try:
            return await membership(*args)
        finally:
            phases.append((0, "membership", started, clock()))

    chat.membership = traced_membership  # type: ignore[assignment]
    Rooms.ask = phase("ask", Rooms.ask)  # type: ignore[method-assign]
    ChatConnection.__init__ = traced_init  # type: ignore[method-assign, assignment]
    for name in ("_hello", "_subscribe", "_send_presence_of_members", "_report_presence"):
        setattr(ChatConnection, name, phase(name, getattr(ChatConnection, name)))
    ChatConnection.deliver_to_device = phase("deliver_to_device", ChatConnection.deliver_to_device)  # type: ignore[method-assign]

    RoomActor._broadcast_all = traced_broadcast_all  # type: ignore[method-assign]
    RoomActor._backfill = in_path("backfill", traced_backfill)  # type: ignore[method-assign]
    RoomActor._resync = in_path("resync", RoomActor._resync)  # type: ignore[method-assign]
    RoomActor._handle = traced_handle  # type: ignore[method-assign]
    ChatConnection.on_text = traced_on_text  # type: ignore[method-assign]
    ChatConnection._post = traced_post  # type: ignore[method-assign]
    RoomActor._store_batch = in_path("own", plain_store_batch)  # type: ignore[method-assign]
    RoomActor._publish = traced_publish  # type: ignore[method-assign]
    Flusher._flush = traced_flush  # type: ignore[method-assign]

    def write() -> None:
        if not messages:
            return  # not a node (the bots), or nothing was sent
        with open(f"{path}.{os.getpid()}", "w") as out:
            for client_id, stamps in messages.items():
                if "delivered" in stamps:
                    at = bisect.bisect_left(flushes, stamps["delivered"])
                    if at < len(flushes):
                        stamps["flushed"] = flushes[at]
                out.write(json.dumps({"kind": "message", "id": client_id, **stamps}) + "\n")
            for started, spent, cpu in rounds:
                round_ = {"kind": "round", "at": started, "seconds": spent, "cpu": cpu}
                out.write(json.dumps(round_) + "\n")
            for when, room, count, due, where in deliveries:
                delivery = {"kind": "delivery", "at": when, "room": room, "events": count}
                out.write(json.dumps(delivery | {"due": due, "path": where}) + "\n")
            for key, name, started, ended in phases:
                out.write(
                    json.dumps(
                        {"kind": "phase", "conn": key, "name": name, "at": started, "end": ended}
                    )
                    + "\n"
                )
            for when, spent, room, before, up_to, after in gaps:
                gap = {"kind": "backfill", "at": when, "seconds": spent, "room": room}
                out.write(json.dumps(gap | {"from": before, "to": up_to, "reached": after}) + "\n")
            for started, spent, generation in collections:
                out.write(
                    json.dumps({"kind": "gc", "at": started, "seconds": spent, "gen": generation})
                    + "\n"
                )

    atexit.register(write)


def _timed(append_admitted: Any, batches: dict[object, list[dict[str, float]]], clock: Any) -> Any:
    import trio

    async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        traced = batches.get(trio.lowlevel.current_task(), ())
        started = clock()
        try:
            return await append_admitted(self, *args, **kwargs)
        finally:
            ended = clock()
            for message in traced:
                message["store"] = started
                message["stored"] = ended

    return timed


if _PATH:
    _install(_PATH)
