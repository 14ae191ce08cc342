"""Erlang/OTP-style supervisors for trio tasks.

A `Supervisor` runs `ChildSpec` children in its own nursery, starts them in
order (each signals readiness with `task_status.started(value)`), restarts
them by `Strategy` and `Restart` type within a `RestartBudget`, and stops them
in reverse order with a grace period. See `Supervisor` for the exact rules.
"""

from ._budget import RestartBudget as RestartBudget
from ._errors import ChildStartFailed as ChildStartFailed
from ._errors import DuplicateChild as DuplicateChild
from ._errors import RestartIntensityExceeded as RestartIntensityExceeded
from ._errors import SupervisorError as SupervisorError
from ._errors import SupervisorNotRunning as SupervisorNotRunning
from ._errors import UnknownChild as UnknownChild
from ._spec import Backoff as Backoff
from ._spec import ChildSpec as ChildSpec
from ._spec import ChildStart as ChildStart
from ._spec import ExitReason as ExitReason
from ._spec import Restart as Restart
from ._spec import Shutdown as Shutdown
from ._spec import Stoppable as Stoppable
from ._spec import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor
from ._supervisor import supervisor_child as supervisor_child
