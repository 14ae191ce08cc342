"""`Reply`: the one-shot answer slot that `ActorRef.ask` puts inside its message."""

from __future__ import annotations

from typing import Generic, TypeVar

import outcome
import trio

R = TypeVar("R")


class Reply(Generic[R]):
    """Where an actor puts its answer to one `ask`.

    Answering never waits and never raises: if the asker already gave up (or
    an answer was already given) the answer is dropped and False is returned.
    """

    __slots__ = ("_done", "_result")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._result: outcome.Outcome[R] | None = None

    def send(self, value: R) -> bool:
        """Answer with `value`; False if nobody is waiting any more."""
        return self._settle(outcome.Value(value))

    def fail(self, error: Exception) -> bool:
        """Answer by raising `error` in the asker; False if nobody is waiting any more."""
        return self._settle(outcome.Error(error))

    @property
    def settled(self) -> bool:
        """True once answered, failed, or abandoned by the asker."""
        return self._done.is_set()

    def abandon(self) -> None:
        """The asker stopped waiting: later answers are dropped."""
        self._done.set()

    async def wait(self) -> R:
        await self._done.wait()
        assert self._result is not None, "an abandoned reply is never awaited"
        return self._result.unwrap()

    def _settle(self, result: outcome.Outcome[R]) -> bool:
        if self._done.is_set():
            return False
        self._result = result
        self._done.set()
        return True
