"""Checkpoints off the commit path: the WAL is copied back into the database file beside
the commits, not by one of them.

SQLite's automatic checkpoint runs inside the `COMMIT` that takes the log past
1,000 pages: that commit, and every write queued behind it, waits while the
pages are copied into the database file and the file is synced. The store's
writer connection turns it off (`PRAGMA wal_autocheckpoint = 0`); instead a
`Checkpointer`, on a connection of its own in a worker thread of its own,
runs a PASSIVE checkpoint a short while after writes, which takes no lock
that a writer needs: commits go on meanwhile. `cap_wal` bounds the log when
the checkpointer falls behind (long readers, a slow disk, a starved thread).

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

WAL_CAP: Final = 32 * 2**20
"""Bytes: a write finding the log larger than this checkpoints it itself, in full, and
truncates it, before it writes (see `cap_wal`)."""


class Checkpointer:
    """Copies the WAL back into the database file, off the commit path (see the module).

    `run` is a task of the store's: it owns `conn` (closing it when it ends)
    and raises what a checkpoint raised, so a failing disk is not ignored.
    Its checkpoints run in a worker thread of their own (its own limiter),
    never waiting for the store's writes, and never cut in half: cancelling
    `run` waits for a checkpoint in progress to finish.
    """

    def __init__(self, conn: sqlite3.Connection, *, interval: float = CHECKPOINT_INTERVAL) -> None:
        self._conn = conn
        self._interval = interval
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
        # When it copied them all, the next write starts the log over from its beginning.
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1


def cap_wal(conn: sqlite3.Connection, wal: Path, cap: int) -> None:
    """If the log file `wal` is larger than `cap` bytes, checkpoint it in full and truncate it.

    Called by the writer (in its worker thread, outside a transaction) before
    a group of writes, so the log stays under `cap` plus one group's pages
    however far the checkpointer fell behind: back-pressure, paid only then.
    A TRUNCATE checkpoint waits (up to the busy timeout) for other
    connections' readers of older pages; if they outlast it, it copies what
    it can and the next group tries again.
    """
    try:
        size = os.stat(wal).st_size
    except FileNotFoundError:  # not created yet
        return
    if size > cap:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
