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
(`gc`: start, seconds, generation). Written when the process exits
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
        stamps = messages[send.client_id] = {"text": self._trace_text, "post": clock()}
        due = _DUE.search(send.body)
        if due is not None:  # a bot's message: when it was due (CLOCK_MONOTONIC, as ours)
            stamps["due"] = int(due.group(1)) / 1e9
        return post(self, send, principal)

    store_batch = RoomActor._store_batch

    async def traced_store_batch(self: Any, posts: list[Any]) -> None:
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

    ChatConnection.on_text = traced_on_text  # type: ignore[method-assign]
    ChatConnection._post = traced_post  # type: ignore[method-assign]
    RoomActor._store_batch = traced_store_batch  # type: ignore[method-assign]
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
