"""Errors raised by the actor runtime."""

from __future__ import annotations


class ActorError(Exception):
    """Base class of every error raised by `chorus.actors`."""


class ActorDead(ActorError):
    """The actor has exited or is stopping: it takes no more messages and sends no replies.

    Holders of a stale `ActorRef` should look the actor up again (it may have
    been restarted under the same name) or start a new one.
    """


class AskTimeout(ActorError, TimeoutError):
    """`ask` got no reply within its timeout (the actor may still be alive)."""


class NameTaken(ActorError):
    """Another live actor is registered under that name."""
