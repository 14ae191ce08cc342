"""Checkpoints off the commit path: the WAL is copied back into the database file beside
the commits, not by one of them.

SQLite's automatic checkpoint runs inside the `COMMIT` that takes the log past
1,000 pages: that commit, and every write queued behind it, waits while the
pages are copied into the database file and the file is synced. The store's
writer connection turns it off (`PRAGMA wal_autocheckpoint = 0`); instead a
`Checkpointer`, on a connection of its own in a worker thread beside the
writer's, runs a PASSIVE checkpoint a short while after writes, which takes no lock
that a writer needs: commits go on meanwhile.

The log starts over from its beginning only when a write finds every frame
of it copied, which a checkpoint beside a steady stream of commits never
achieves (commits land while it copies): the log would grow until its cap.
So once the log is long (`RESTART_FRAMES`), the writer itself, before its
next group, copies the few frames that came in since the checkpointer's
last run (`Checkpointer.before_writes`): the bulk is copied off the commit
path, the rest and the database file's sync on it, and the next write
starts the log over. A cap bounds the log when the checkpointer falls
behind (long readers, a slow disk, a starved thread).

Durability is not changed by any of this: a commit is acknowledged once its
frames are in the log and the log is synced as `synchronous` says; a
checkpoint only moves committed pages from the log into the database file
(syncing the log before and the file after), and a crash between the two is
recovered from the log when the database is next opened.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final, NoReturn

import trio

CHECKPOINT_INTERVAL: Final = 0.2
"""Seconds from a write to the checkpoint that copies it into the database file (one
checkpoint per interval at most, none while no write comes)."""

RESTART_FRAMES: Final = 1000
"""A log of this many frames (pages) is started over (SQLite's own checkpoint threshold)."""

WAL_CAP: Final = 32 * 2**20
"""Bytes: a write finding the log file larger than this checkpoints it itself, in full,
and truncates it, before it writes (see `Checkpointer.before_writes`)."""


class Checkpointer:
    """Copies the WAL back into the database file, off the commit path (see the module).

    `run` is a task of the store's: it owns `conn` (closing it when it ends)
    and raises what a checkpoint raised, so a failing disk is not ignored.
    Its checkpoints run in a worker thread (trio's) under a limiter of its
    own, so beside the store's writes rather than queued with them, and are
    never cut in half: cancelling `run` waits for one in progress to finish.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        wal: Path,
        *,
        interval: float = CHECKPOINT_INTERVAL,
        cap: int = WAL_CAP,
    ) -> None:
        self._conn = conn
        self._wal = wal
        self._interval = interval
        self._cap = cap
        # Set by the checkpointer's thread, read and cleared by the writer's (a bool:
        # a late read only defers the restart by a group).
        self._restart_wanted = False
        self._written = trio.Event()
        self._limiter = trio.CapacityLimiter(1)
        self.checkpoints = 0
        """How many checkpoints ran (they may have found nothing to copy)."""

    def wrote(self) -> None:
        """Tell the checkpointer that a write was committed (from the trio thread)."""
        self._written.set()

    async def run(self) -> NoReturn:
        """Checkpoint `interval` after writes, until cancelled; then close the connection."""
        try:
            while True:
                await self._written.wait()
                self._written = trio.Event()
                # The writes of the next `interval` share this checkpoint.
                await trio.sleep(self._interval)
                await trio.to_thread.run_sync(self._checkpoint, limiter=self._limiter)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._conn.close, limiter=self._limiter)

    def _checkpoint(self) -> None:
        # PASSIVE: copies the frames no reader still needs, without waiting for a lock.
        _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if frames >= RESTART_FRAMES:
            self._restart_wanted = True

    def before_writes(self, writer: sqlite3.Connection) -> None:
        """Keep the log short; called by the store's writer, in its worker thread, outside
        a transaction, before each group of writes.

        When the checkpointer found the log long, copy what it could not (the
        frames committed since it started), so that this group's transaction
        starts the log over. And if the log file is larger than `cap` bytes
        (the checkpointer fell behind), checkpoint it in full and truncate it:
        the log stays under `cap` plus one group's pages, by back-pressure
        paid only then. A TRUNCATE checkpoint waits (up to the busy timeout)
        for other connections' readers of older pages; if they outlast it, it
        copies what it can and a later group tries again.
        """
        if self._restart_wanted:
            self._restart_wanted = False
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        try:
            size = os.stat(self._wal).st_size
        except FileNotFoundError:  # not created yet
            return
        if size > self._cap:
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
