"""Test children that record their lives in a shared journal."""

from __future__ import annotations

from collections.abc import Callable

import trio

from chorus.supervisors import ChildSpec, Restart


class Boom(Exception):
    """The crash our test children raise."""


class Journal:
    """Ordered record of child events that tests can wait on (no sleeps)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._changed = trio.Event()

    def add(self, event: str) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 10) -> None:
        """Wait until `predicate(events)` holds; fail the test if it never does."""
        with trio.fail_after(timeout):
            while not predicate(self.events):
                await self._changed.wait()

    async def next_event(self) -> None:
        """Wait for the next event to be added."""
        await self._changed.wait()

    async def wait_count(self, event: str, count: int) -> None:
        await self.wait_for(lambda events: events.count(event) >= count)


class Handle:
    """What a test child passes to `task_status.started()`: the test's remote control."""

    def __init__(self, name: str, run: int) -> None:
        self.name = name
        self.run = run
        self._exit = trio.Event()
        self._crash = False

    def crash(self) -> None:
        self._crash = True
        self._exit.set()

    def finish(self) -> None:
        self._exit.set()

    async def wait_exit(self) -> None:
        await self._exit.wait()
        if self._crash:
            raise Boom(f"{self.name} crashed")


class StoppableHandle(Handle):
    """A handle the supervisor can ask to stop; `honour=False` ignores the request."""

    def __init__(self, name: str, run: int, honour: bool) -> None:
        super().__init__(name, run)
        self.honour = honour
        self.stop_requested = False

    def request_stop(self) -> None:
        self.stop_requested = True
        if self.honour:
            self.finish()


class Worker:
    """A child whose runs are numbered and journalled as "start x", "ready x", "stop x"."""

    def __init__(
        self,
        name: str,
        journal: Journal,
        *,
        stoppable: bool = False,
        honour_stop: bool = True,
        fail_start: Callable[[int], bool] = lambda _run: False,
        gate: trio.Event | None = None,
    ) -> None:
        self.name = name
        self.journal = journal
        self.stoppable = stoppable
        self.honour_stop = honour_stop
        self.fail_start = fail_start
        self.gate = gate
        """If given, each run waits for it before readiness (a slow start)."""
        self.runs = 0

    async def __call__(self, *, task_status: trio.TaskStatus[Handle]) -> None:
        self.runs += 1
        self.journal.add(f"start {self.name}")
        if self.fail_start(self.runs):
            raise Boom(f"{self.name} cannot start")
        handle = (
            StoppableHandle(self.name, self.runs, self.honour_stop)
            if self.stoppable
            else Handle(self.name, self.runs)
        )
        try:
            # Yield once so a test can see that the next child waits for readiness.
            await trio.lowlevel.checkpoint()
            if self.gate is not None:
                await self.gate.wait()
            self.journal.add(f"ready {self.name}")
            task_status.started(handle)
            await handle.wait_exit()
        finally:
            self.journal.add(f"stop {self.name}")

    def spec(self, restart: Restart = Restart.PERMANENT, shutdown: float = 5.0) -> ChildSpec:
        return ChildSpec(id=self.name, start=self, restart=restart, shutdown=shutdown)
