"""The actor runtime: tasks that own their state and read a bounded mailbox.

An actor is an async `Behaviour` reading an `Inbox`; callers hold its
`ActorRef` and `send` (waits when full), `try_send` (never waits) or `ask`
(request/reply with a timeout). Actors run under supervisors (`actor_spec`)
and can be found by unique name in a `Registry`.
"""

from ._errors import ActorDead as ActorDead
from ._errors import ActorError as ActorError
from ._errors import AskTimeout as AskTimeout
from ._errors import NameTaken as NameTaken
from ._metrics import LIVE as LIVE
from ._ref import ActorRef as ActorRef
from ._ref import Inbox as Inbox
from ._registry import Registry as Registry
from ._reply import Reply as Reply
from ._spawn import Behaviour as Behaviour
from ._spawn import actor_spec as actor_spec
from ._spawn import run_actor as run_actor
