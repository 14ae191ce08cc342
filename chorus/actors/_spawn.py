"""Running an actor as a supervised child."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from chorus.supervisors import ChildSpec, Restart

from ._metrics import LIVE
from ._ref import ActorRef, Inbox
from ._registry import Registry

M = TypeVar("M")

Behaviour = Callable[[Inbox[M]], Awaitable[None]]
"""An actor's body: reads its inbox, owns its state, returns to exit normally."""


def kind_of(name: str) -> str:
    """The metrics kind of an actor name: the part before the first colon ("room:7" -> "room")."""
    return name.partition(":")[0]


async def run_actor(
    name: str,
    behaviour: Behaviour[M],
    *,
    mailbox_size: int,
    registry: Registry | None = None,
    task_status: trio.TaskStatus[ActorRef[M]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one actor: a fresh bounded mailbox, a registered name, then `behaviour`.

    Signals readiness with the actor's `ActorRef`. Raises `NameTaken` before
    readiness if `registry` already has a live actor called `name`. When the
    behaviour ends, however it ends, the name is released, queued messages are
    dropped, blocked senders get `ActorDead` and unanswered asks fail with it.
    """
    send, receive = trio.open_memory_channel[M](mailbox_size)
    ref = ActorRef(send, name=name, kind=kind_of(name))
    if registry is not None:
        registry.register(name, ref)
    LIVE.add(ref)
    try:
        with receive:
            task_status.started(ref)
            await behaviour(Inbox(receive, ref))
    finally:
        LIVE.discard(ref)
        if registry is not None:
            registry.unregister(name, ref)
        ref._exited()


def actor_spec(
    name: str,
    behaviour: Behaviour[Any],
    *,
    mailbox_size: int = 64,
    registry: Registry | None = None,
    restart: Restart = Restart.TRANSIENT,
    shutdown: float = 5.0,
) -> ChildSpec:
    """A `ChildSpec` that runs `behaviour` as an actor called `name` (also the child id).

    `Supervisor.start_child` returns the actor's `ActorRef`. Stopping it closes
    the mailbox, so the actor handles what is queued within `shutdown` seconds
    before it is cancelled. Transient by default: an actor that returns is
    done, one that crashes is restarted with an empty mailbox and a new ref.
    """
    if mailbox_size < 1:
        raise ValueError("an actor's mailbox must hold at least one message")
    start = functools.partial(
        run_actor, name, behaviour, mailbox_size=mailbox_size, registry=registry
    )
    return ChildSpec(id=name, start=start, restart=restart, shutdown=shutdown, kind=kind_of(name))
