"""The restart intensity limit of a supervisor."""

from __future__ import annotations

from collections import deque

import attrs


@attrs.define
class RestartBudget:
    """At most `intensity` restart events within any `period` seconds (OTP semantics).

    A one_for_all or rest_for_one restart of several children is one event.
    """

    intensity: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    period: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    _stamps: deque[float] = attrs.field(factory=deque, init=False)

    def allow(self, now: float) -> bool:
        """Record one restart event at `now`; False means the supervisor must give up."""
        self._forget_before(now - self.period)
        self._stamps.append(now)
        return len(self._stamps) <= self.intensity

    def recent(self, now: float) -> int:
        """How many restart events fall within the last `period` seconds."""
        self._forget_before(now - self.period)
        return len(self._stamps)

    def _forget_before(self, horizon: float) -> None:
        while self._stamps and self._stamps[0] <= horizon:
            self._stamps.popleft()
