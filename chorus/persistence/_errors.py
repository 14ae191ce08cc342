"""Errors every `Store` backend raises; callers never see a driver's own exceptions."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by `chorus.persistence`."""


class Conflict(StoreError):
    """The write would break a uniqueness rule (e.g. the username is taken); nothing changed."""


class NotFound(StoreError, LookupError):
    """A row the operation needs (room, user, membership) does not exist; nothing changed."""


class Forbidden(StoreError):
    """The acting user may not do this to the message (not its sender, moderator or a member).

    Nothing changed.
    """


class FileNotReady(Forbidden):
    """A file to attach is still being checked (pending or scanning); nothing changed.

    Unlike its parent's other refusals, retrying once the file is ready succeeds.
    """


class Gone(StoreError):
    """The message was deleted, so it cannot be edited, reacted to or deleted again.

    Nothing changed.
    """


class StoreUnavailable(StoreError):
    """The database cannot be reached, is locked past the busy timeout, or is closed.

    Nothing was stored by the failed call, so callers answer "unavailable,
    retry" and must not acknowledge anything it was meant to store. Retrying
    an append is safe: client ids make it idempotent.
    """


class SchemaTooNew(StoreError):
    """The database was migrated by a newer Chorus than this one; it is refused untouched."""

    def __init__(self, database: str, found: int, known: int) -> None:
        super().__init__(
            f"{database}: schema version {found} is newer than this Chorus knows "
            f"(up to {known}); upgrade Chorus, or point it at another database"
        )
        self.found = found
        self.known = known
