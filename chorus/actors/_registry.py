"""`Registry`: unique names (such as `room:<id>`) for live actors."""

from __future__ import annotations

from typing import Any

from ._errors import NameTaken
from ._ref import ActorRef


class Registry:
    """Maps names to the refs of live actors; an entry vanishes when its actor exits.

    The runtime registers an actor before it signals readiness and removes it
    after its task ends, so `whereis` never returns a ref whose actor has
    already finished (it may return one that is stopping: sends then raise
    `ActorDead`, and the caller looks up again).
    """

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef[Any]] = {}

    def __len__(self) -> int:
        return len(self._refs)

    def register(self, name: str, ref: ActorRef[Any]) -> None:
        """Bind `name` to `ref`; raises `NameTaken` if a live actor holds it."""
        current = self._refs.get(name)
        if current is not None and current is not ref and current.alive:
            raise NameTaken(f"{name!r} is already registered to a live actor")
        self._refs[name] = ref

    def unregister(self, name: str, ref: ActorRef[Any]) -> None:
        """Remove `name` if it is still bound to `ref` (a successor's entry stays)."""
        if self._refs.get(name) is ref:
            del self._refs[name]

    def whereis(self, name: str) -> ActorRef[Any] | None:
        """The live actor registered under `name`, or None."""
        return self._refs.get(name)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._refs)
