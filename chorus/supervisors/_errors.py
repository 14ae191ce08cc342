"""Errors a supervisor raises to its caller or its parent."""

from __future__ import annotations


class SupervisorError(Exception):
    """Base class of every error raised by `chorus.supervisors`."""


class RestartIntensityExceeded(SupervisorError):
    """More restarts than `intensity` within `period`: the supervisor gave up.

    Raised out of `Supervisor.run()` after every child has been stopped in
    reverse start order. `__cause__` is the last child's crash, if it crashed.
    """

    def __init__(self, supervisor: str, child: str, intensity: int, period: float) -> None:
        super().__init__(
            f"supervisor {supervisor!r}: more than {intensity} restarts in {period:g}s "
            f"(last: child {child!r}); giving up"
        )
        self.supervisor = supervisor
        self.child = child


class ChildStartFailed(SupervisorError):
    """A child raised before signalling readiness; `__cause__` is its exception."""

    def __init__(self, supervisor: str, child: str) -> None:
        super().__init__(f"supervisor {supervisor!r}: child {child!r} failed to start")
        self.supervisor = supervisor
        self.child = child


class DuplicateChild(SupervisorError):
    """`start_child` was given an id that a running child already has."""


class UnknownChild(SupervisorError, LookupError):
    """No child with that id is running under this supervisor."""


class SupervisorNotRunning(SupervisorError):
    """The supervisor is not running (not started yet, or shutting down)."""
