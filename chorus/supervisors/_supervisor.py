"""`Supervisor`: runs children in a trio nursery with Erlang/OTP restart semantics."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import structlog
import trio

from ._budget import RestartBudget
from ._errors import (
    ChildStartFailed,
    DuplicateChild,
    RestartIntensityExceeded,
    SupervisorNotRunning,
    UnknownChild,
)
from ._metrics import EXITS, RESTARTS
from ._spec import (
    Backoff,
    ChildSpec,
    ExitReason,
    Restart,
    Shutdown,
    StartedValue,
    Stoppable,
    Strategy,
    should_restart,
)

_log = structlog.get_logger("chorus.supervisors")


@attrs.define(eq=False)
class _Child:
    """One run of one child: replaced by a fresh instance on every restart."""

    spec: ChildSpec
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    exited: bool = False
    """Its task has ended (set by `_supervise` only, through `mark_exited`)."""
    _done: trio.Event | None = attrs.field(default=None, init=False)
    """Made only when someone waits for the exit: thousands of children (one per
    connection) never have anyone waiting, and an event costs a set."""
    value: StartedValue = None
    stopping: bool = False
    reason: ExitReason | None = None
    """How it ended, set as it ends (before its exit is handled)."""

    def mark_exited(self) -> None:
        self.exited = True
        if self._done is not None:
            self._done.set()

    async def wait_exited(self) -> None:
        """Return once its task has ended (at once if it has)."""
        if self.exited:
            return
        if self._done is None:
            self._done = trio.Event()
        await self._done.wait()

    @property
    def finished(self) -> bool:
        """Exited and not to be restarted: gone, even while its exit waits to be handled."""
        return self.reason is not None and not should_restart(self.spec.restart, self.reason)


@attrs.frozen
class _Exit:
    child: _Child
    reason: ExitReason
    error: BaseException | None


class _StopRequested:
    """Sentinel on the exit channel: `request_stop()` was called."""


class _Readiness:
    """The `task_status` a child sees: forwards the value, then shields the child.

    Before readiness the child can still be cancelled by whoever is starting
    it; after it, only its supervisor stops it (and in its own order). If the
    starter was cancelled meanwhile, trio leaves the child where it was to be
    cancelled there, so the shield must not go up.

    Once used, it lets go of trio's task status: that holds the nursery the
    child was started in (a cancel scope and its sets), which a long-lived
    child would otherwise keep alive, about 1 KiB for each connection.
    """

    __slots__ = ("_child", "_outer", "_task", "ready")

    def __init__(self, child: _Child, outer: trio.TaskStatus[StartedValue]) -> None:
        self._child = child
        self._outer: trio.TaskStatus[StartedValue] | None = outer
        self._task = trio.lowlevel.current_task()
        self.ready = False

    def started(self, value: StartedValue = None) -> None:
        outer = self._outer
        if outer is None:
            raise RuntimeError("called 'started' twice on the same task status")
        self._child.value = value
        self.ready = True
        self._outer = None
        parent_before = self._task.parent_nursery
        outer.started(value)
        if self._task.parent_nursery is not parent_before:
            self._child.scope.shield = True


class Supervisor:
    """Starts children in order, restarts them by strategy, stops them in reverse order.

    Semantics follow Erlang/OTP `supervisor`:

    - `run()` starts the static children one at a time, each signalling
      readiness with `task_status.started(value)` before the next starts, then
      signals its own readiness with itself as the value.
    - When a child exits, its `Restart` type decides whether it is restarted and
      the `Strategy` decides which siblings are restarted with it; every
      restart event is checked against the restart budget (`intensity` events
      per `period` seconds). Past the budget the supervisor stops all children
      and `run()` raises `RestartIntensityExceeded`.
    - Stopping a child: if its started value is `Stoppable`, call
      `request_stop()` and wait up to `ChildSpec.shutdown` seconds; then cancel.
    - Cancelling `run()` (or calling `request_stop()`) stops every child in
      reverse start order before `run()` returns or re-raises.
    - Children can also be started, terminated and looked up at run time
      (`start_child`, `terminate_child`, `which_child`), e.g. one per room.

    All structural changes are serialised, as in OTP's single supervisor
    process: a restart (including its backoff delay) delays concurrent
    `start_child` calls.
    """

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        ids = [spec.id for spec in children]
        if len(set(ids)) != len(ids):
            raise ValueError(f"supervisor {name!r}: child ids must be unique, got {ids}")
        self.name = name
        self.strategy = strategy
        self._specs = tuple(children)
        self._intensity = intensity
        self._period = period
        self._backoff = backoff
        self._rng = rng if rng is not None else random.Random()
        self._log = _log.bind(supervisor=name)
        self._lock = trio.Lock()
        self._children: dict[str, _Child] = {}
        self._nursery: trio.Nursery | None = None
        self._exits_in: trio.MemorySendChannel[_Exit | _StopRequested] | None = None
        self._closing = False

    # -- running ---------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until cancelled, `request_stop()`, or escalation.

        Raises `ChildStartFailed` if a static child fails to start (the ones
        already started are stopped first) and `RestartIntensityExceeded` when
        the restart budget is spent. Returns normally after `request_stop()`.
        """
        if self._nursery is not None:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        budget = RestartBudget(self._intensity, self._period)
        exits_in, exits_out = trio.open_memory_channel[_Exit | _StopRequested](math.inf)
        failure: Exception | None = None
        self._closing = False
        async with trio.open_nursery() as nursery:
            self._nursery, self._exits_in = nursery, exits_in
            try:
                async with self._lock:
                    for spec in self._specs:
                        await self._start(spec)
                task_status.started(self)
                async for event in exits_out:
                    if isinstance(event, _StopRequested):
                        break
                    async with self._lock:
                        await self._handle_exit(event, budget)
            except (ChildStartFailed, RestartIntensityExceeded) as exc:
                # Raised after the nursery closes, so the parent sees this
                # typed error rather than an exception group around it.
                failure = exc
            finally:
                with trio.CancelScope(shield=True):
                    self._closing = True
                    async with self._lock:
                        await self._stop_all()
                self._nursery = self._exits_in = None
                self._children = {}
        if failure is not None:
            raise failure

    def request_stop(self) -> None:
        """Ask `run()` to stop every child in reverse order and return normally."""
        if self._exits_in is not None:
            self._exits_in.send_nowait(_StopRequested())

    # -- dynamic children ------------------------------------------------------

    async def start_child(self, spec: ChildSpec) -> StartedValue:
        """Start one more child (last in start order) and return its started value.

        Raises `DuplicateChild` if the id is taken, `ChildStartFailed` if the
        child raises before readiness, `SupervisorNotRunning` if not running.
        An id is taken by a child that runs or is about to be restarted; one
        that exited for good frees it at once, even if its exit is still queued
        behind other work (under load the supervisor handles exits late, and a
        caller that just saw the child exit must be able to start it afresh).
        """
        async with self._lock:
            self._check_running()
            current = self._children.get(spec.id)
            if current is not None and not current.finished:
                raise DuplicateChild(f"supervisor {self.name!r}: child {spec.id!r} is running")
            if current is not None:
                # Forgotten now: its queued exit report then finds it replaced and is dropped.
                del self._children[spec.id]
            return (await self._start(spec)).value

    async def terminate_child(self, child_id: str) -> None:
        """Stop a child (grace, then cancel) and forget it; it is not restarted.

        Raises `UnknownChild` if no child has that id.
        """
        async with self._lock:
            self._check_running()
            child = self._children.pop(child_id, None)
            if child is None:
                raise UnknownChild(f"supervisor {self.name!r}: no child {child_id!r}")
            await self._stop_child(child)

    def which_child(self, child_id: str) -> StartedValue | None:
        """The started value of the running child `child_id`, or None."""
        child = self._children.get(child_id)
        if child is None or child.exited:
            return None
        return child.value

    def child_ids(self) -> list[str]:
        """Ids of the running children, in start order."""
        return [cid for cid, child in self._children.items() if not child.exited]

    # -- internals -------------------------------------------------------------

    def _check_running(self) -> None:
        if self._nursery is None or self._closing:
            raise SupervisorNotRunning(f"supervisor {self.name!r} is not running")

    async def _start(self, spec: ChildSpec) -> _Child:
        """Start `spec` at its place in start order (new ids go last)."""
        assert self._nursery is not None
        child = _Child(spec)
        is_new = spec.id not in self._children
        self._children[spec.id] = child
        try:
            await self._nursery.start(self._supervise, child)
        except BaseException as exc:
            if is_new:
                del self._children[spec.id]
            if isinstance(exc, Exception):
                self._log.error("child.start_failed", child=spec.id, error=_describe(exc))
                raise ChildStartFailed(self.name, spec.id) from exc
            raise
        self._routine_log(spec)("child.started", child=spec.id, restart=spec.restart.value)
        return child

    async def _supervise(
        self, child: _Child, *, task_status: trio.TaskStatus[StartedValue]
    ) -> None:
        """Run one child and report how it ended; errors before readiness go to the starter."""
        readiness = _Readiness(child, task_status)
        del task_status  # only `readiness` may hold it (see `_Readiness`)
        reason, error = ExitReason.NORMAL, None
        try:
            with child.scope:
                await child.spec.start(task_status=readiness)
        except Shutdown:
            reason = ExitReason.SHUTDOWN
        except Exception as exc:
            if not readiness.ready:
                raise
            reason, error = ExitReason.CRASH, exc
        finally:
            child.mark_exited()
        if child.scope.cancelled_caught or (child.stopping and reason is ExitReason.NORMAL):
            reason = ExitReason.SHUTDOWN
        child.reason = reason  # no await since `mark_exited`: nobody saw it exited without it
        if not readiness.ready:
            raise RuntimeError(f"child {child.spec.id!r} returned without signalling readiness")
        EXITS.labels(self.name, child.spec.label, reason.value).inc()
        log = self._log.error if reason is ExitReason.CRASH else self._routine_log(child.spec)
        log("child.exited", child=child.spec.id, reason=reason.value, error=_describe(error))
        if not child.stopping and self._exits_in is not None:
            self._exits_in.send_nowait(_Exit(child, reason, error))

    def _routine_log(self, spec: ChildSpec) -> Any:
        """Info for lasting children; debug for temporary ones, which come and go by
        the thousand (one per connection). Crashes are always errors."""
        return self._log.debug if spec.restart is Restart.TEMPORARY else self._log.info

    async def _handle_exit(self, event: _Exit, budget: RestartBudget) -> None:
        child = event.child
        if self._children.get(child.spec.id) is not child:
            return  # already replaced or removed: a restart overtook this report
        if not should_restart(child.spec.restart, event.reason):
            del self._children[child.spec.id]
            return
        affected = self._affected_by(child.spec.id)
        siblings = [self._children[cid] for cid in affected if cid != child.spec.id]
        await self._stop_children(siblings)
        for sibling in siblings:
            if sibling.spec.restart is Restart.TEMPORARY:
                del self._children[sibling.spec.id]
        in_start_order = [self._children[cid].spec for cid in affected if cid in self._children]
        await self._restart(in_start_order, event, budget)

    def _affected_by(self, child_id: str) -> list[str]:
        """Ids the strategy restarts when `child_id` must restart, in start order."""
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [child_id]
        ids = list(self._children)
        if self.strategy is Strategy.REST_FOR_ONE:
            return ids[ids.index(child_id) :]
        return ids

    async def _restart(
        self, in_start_order: list[ChildSpec], event: _Exit, budget: RestartBudget
    ) -> None:
        """One restart event; on start failure try again until the budget is spent."""
        while True:
            now = trio.current_time()
            if not budget.allow(now):
                self._log.error("supervisor.giving_up", child=event.child.spec.id)
                raise RestartIntensityExceeded(
                    self.name, event.child.spec.id, self._intensity, self._period
                ) from event.error
            delay = 0.0
            if self._backoff is not None:
                delay = self._backoff.delay(budget.recent(now), self._rng)
            for spec in in_start_order:
                RESTARTS.labels(self.name, spec.label).inc()
            self._log.warning(
                "child.restarting",
                children=[spec.id for spec in in_start_order],
                cause=event.child.spec.id,
                delay=round(delay, 3),
            )
            await trio.sleep(delay)
            started: list[_Child] = []
            try:
                for spec in in_start_order:
                    started.append(await self._start(spec))
                return
            except ChildStartFailed as exc:
                await self._stop_children(started)
                event = _Exit(self._children[exc.child], ExitReason.CRASH, exc.__cause__)

    async def _stop_all(self) -> None:
        await self._stop_children(self._children.values())

    async def _stop_children(self, children: Iterable[_Child]) -> None:
        for child in reversed(list(children)):
            await self._stop_child(child)

    async def _stop_child(self, child: _Child) -> None:
        """Grace period for `Stoppable` children, then cancellation; returns once it ended."""
        if child.exited:
            return
        child.stopping = True
        if isinstance(child.value, Stoppable) and child.spec.shutdown > 0:
            child.value.request_stop()
            with trio.move_on_after(child.spec.shutdown):
                await child.wait_exited()
        child.scope.cancel()
        await child.wait_exited()


def _describe(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def supervisor_child(supervisor: Supervisor, *, restart: Restart = Restart.PERMANENT) -> ChildSpec:
    """A `ChildSpec` running `supervisor` under another one, with an unlimited grace period.

    Its id is the supervisor's name.
    """
    return ChildSpec(id=supervisor.name, start=supervisor.run, restart=restart, shutdown=math.inf)
