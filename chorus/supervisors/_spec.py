"""What a supervisor needs to know about each child, and why a child exited."""

from __future__ import annotations

import enum
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import attrs


class Strategy(enum.Enum):
    """What a supervisor restarts when one child must be restarted (as in OTP)."""

    ONE_FOR_ONE = "one_for_one"
    """Restart only the child that exited."""
    ONE_FOR_ALL = "one_for_all"
    """Stop every other child (in reverse start order), then restart them all in order."""
    REST_FOR_ONE = "rest_for_one"
    """Stop the children started after the one that exited, then restart it and them."""


class Restart(enum.Enum):
    """When a child is restarted after it exits (as in OTP)."""

    PERMANENT = "permanent"
    """Always restarted, whatever the exit reason."""
    TRANSIENT = "transient"
    """Restarted only after a crash; a normal or shutdown exit removes it."""
    TEMPORARY = "temporary"
    """Never restarted; removed when it exits or when a sibling's restart stops it."""


class ExitReason(enum.Enum):
    """Why a child's task ended."""

    NORMAL = "normal"
    """The child function returned on its own."""
    SHUTDOWN = "shutdown"
    """The supervisor stopped it, or it raised `Shutdown`."""
    CRASH = "crash"
    """It raised any other exception."""


class Shutdown(Exception):
    """Raise inside a child to exit with reason "shutdown" (a transient child is not restarted)."""


@runtime_checkable
class Stoppable(Protocol):
    """A started value that can be asked to finish its work and return.

    When a child passes such a value to `task_status.started()`, the supervisor
    stops it by calling `request_stop()` and waiting up to the child's grace
    period before cancelling it. Other children are cancelled at once.
    """

    def request_stop(self) -> None: ...


ChildStart = Callable[..., Awaitable[object]]
"""An async function called as `start(task_status=...)`.

It must call `task_status.started(value)` when it is ready; `value` is what
`Supervisor.start_child` and `Supervisor.which_child` return for it.
"""


@attrs.frozen(kw_only=True)
class Backoff:
    """Delay before a restart: grows with the restarts in the current budget window.

    The n-th restart inside the window waits `initial * multiplier ** (n - 1)`
    seconds, capped at `maximum`, then spread by ±`jitter` (a fraction) so
    that many supervisors restarting at once do not stampede.
    """

    initial: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    maximum: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(
        default=0.2, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before restart number `attempt` (1-based) of the window."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))
        return base * (1 + rng.uniform(-self.jitter, self.jitter))


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How to start, restart and stop one child of a supervisor."""

    id: str
    """Unique among the supervisor's children; used to look the child up."""
    start: ChildStart
    restart: Restart = Restart.PERMANENT
    shutdown: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    """Grace period in seconds between `request_stop()` and cancellation.

    Use `math.inf` for a child that is itself a supervisor, so that its own
    children get their full grace periods.
    """
    kind: str | None = None
    """Label for logs and metrics (e.g. "room" for every `room:<id>` child).

    Defaults to `id`; set it for dynamic children so that metrics keep a
    bounded number of label values.
    """

    @property
    def label(self) -> str:
        """The metrics label of this child: `kind`, or `id` when no kind is set."""
        return self.kind if self.kind is not None else self.id


def should_restart(restart: Restart, reason: ExitReason) -> bool:
    """The OTP rule: permanent always, transient only after a crash, temporary never."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return reason is ExitReason.CRASH
    return False


StartedValue = Any
"""Whatever a child passed to `task_status.started()` (often an `ActorRef`)."""
