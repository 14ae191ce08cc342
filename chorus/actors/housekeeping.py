"""File housekeeping: expired uploads, deleted files' bytes, a crashed node's spool (issue #13).

Every `interval` seconds (jittered, so that nodes started together do not
sweep together) the housekeeper, in bounded batches:

- expires uploads never attached to a message `unattached_ttl` after their
  upload: the row is marked deleted (a `deleted` transition with reason
  `unattached`, `Store.expire_unattached`) and the bytes of every variant are
  removed from storage at once (nobody but the uploader ever saw them);
- purges files deleted `retention` ago or more (with their message, by their
  owner, or expired above): the bytes of every variant, then the row and its
  transitions. The row goes rather than staying as a tombstone: nothing reads
  a deleted file's row (history, delivery and quotas skip it), it holds the
  display name and checksum of something the user deleted, and without it the
  next sweep's query finds only what is left to do (no "purged" flag to keep).

At start, before the HTTP API takes uploads (it is started after this actor),
it sweeps this node's spool once per process: `*.part` files of uploads a
crash interrupted, and spooled files (or their `.work` folders) whose file is
finished, deleted or unknown. Spooled files the store says this node has not
finished are the pipeline's, which queues them again (and rejects those whose
bytes are gone, `interrupted`); another node's files are never touched, the
spool is per node (`StoredFile.node`).

Each sweep also deletes the to-device messages (end-to-end encryption) that
expired unread (`Store.purge_to_device`): they are never delivered anyway,
and their ciphertext should not outlive its use.

Idempotent: a second run, or another node's at the same time, finds less or
nothing to do; a missing object is not an error. A failure (store or storage
down) is logged and the work is found again at the next sweep; the actor
itself only stops when cancelled.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from pathlib import Path

import attrs
import structlog
import trio

from chorus.actors.files import WORK_SUFFIX, original_key, variant_key
from chorus.files import ObjectNotFound, Storage
from chorus.metrics import FILE_HOUSEKEEPING_BYTES, FILE_HOUSEKEEPING_FILES
from chorus.persistence import FileState, Store, StoredFile, now_ms
from chorus.services import FileServices

_log = structlog.get_logger("chorus.files")

PART_SUFFIX = ".part"
"""Suffix of an upload being streamed to the spool (`chorus.http._files`)."""


@attrs.frozen(kw_only=True)
class HousekeepingLimits:
    """How often the housekeeper sweeps and what it removes."""

    interval: float
    """Mean seconds between two sweeps (each wait is drawn from ±20% around it)."""
    unattached_ttl: float
    """Seconds after its upload a file never attached is deleted."""
    retention: float
    """Seconds a deleted file's bytes are kept (0: removed at the next sweep)."""
    batch: int = 100
    """Files each sweep takes per kind at a time (it goes on until none is left)."""
    max_batches: int = 50
    """Batches of a kind per sweep: a backlog is worked off over several sweeps."""


@attrs.define
class Swept:
    """What one sweep did."""

    expired: int = 0
    """Uploads never attached, deleted."""
    purged: int = 0
    """Deleted files whose bytes and row were removed."""
    bytes_freed: int = 0
    """Bytes removed from storage (measured before removal)."""
    to_device_expired: int = 0
    """To-device messages deleted because they expired unread."""
    failed: int = 0
    """Files (or queries) left for the next sweep because the store or the storage failed."""


class Housekeeper:
    """Sweeps one node's share of file housekeeping; `run` is a supervised child."""

    def __init__(self, store: Store, files: FileServices, limits: HousekeepingLimits) -> None:
        self._store = store
        self._files = files
        self._limits = limits
        # Once per process: a restarted actor must not remove the .part files of
        # uploads streaming now.
        self._spool_swept = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep the spool (first start only), then sweep every jittered interval, forever."""
        if not self._spool_swept:
            try:
                await self.sweep_spool()
            except Exception as exc:  # the node serves anyway; the files wait for a restart
                _log.error("files.spool_sweep_failed", exc_info=exc)
            self._spool_swept = True
        task_status.started()
        while True:
            await trio.sleep(self._limits.interval * random.uniform(0.8, 1.2))
            await self.sweep(now_ms())

    async def sweep(self, now: int) -> Swept:
        """Expire unattached uploads and purge deleted files as of `now` (ms).

        Never raises but for cancellation: failures are logged and counted in
        `Swept.failed`, and what failed is found again by the next sweep.
        """
        limits, done = self._limits, Swept()
        try:
            for _ in range(limits.max_batches):
                before = now - int(limits.unattached_ttl * 1000)
                batch = await self._store.unattached_files(before, limits.batch)
                failed = done.failed
                for file in batch:
                    await self._expire(file, now, done)
                if len(batch) < limits.batch or done.failed > failed:
                    break  # all done, or a failure: the rest waits for the next sweep
            for _ in range(limits.max_batches):
                # + 1: with retention 0, what was deleted this very millisecond goes too
                before = now - int(limits.retention * 1000) + 1
                batch = await self._store.deleted_files(before, limits.batch)
                failed = done.failed
                for file in batch:
                    await self._purge(file, done)
                if len(batch) < limits.batch or done.failed > failed:
                    break
            done.to_device_expired = await self._store.purge_to_device(now)
        except Exception as exc:  # the store failed: all of it is found again next time
            done.failed += 1
            _log.error("files.housekeeping_failed", exc_info=exc)
        if done.expired or done.purged or done.failed or done.to_device_expired:
            _log.info("files.housekept", **attrs.asdict(done))
        return done

    async def _expire(self, file: StoredFile, now: int, done: Swept) -> None:
        """Delete an upload never attached, and its bytes. Failures logged, not raised."""
        try:
            if await self._store.expire_unattached(file.id, now) is None:
                return  # attached or deleted meanwhile, or expired by another node
            done.expired += 1
            FILE_HOUSEKEEPING_FILES.labels("unattached").inc()
            freed = await remove_bytes(self._files.storage, file)
        except Exception as exc:  # bytes left: purged after the retention (deleted_at is set)
            done.failed += 1
            _log.warning("files.expire_failed", file_id=file.id, error=str(exc))
            return
        done.bytes_freed += freed
        FILE_HOUSEKEEPING_BYTES.inc(freed)

    async def _purge(self, file: StoredFile, done: Swept) -> None:
        """Remove a deleted file's bytes, then its row. Failures logged, not raised."""
        try:
            freed = await remove_bytes(self._files.storage, file)
            # False: another node was first; its bytes are gone either way.
            await self._store.remove_file(file.id)
        except Exception as exc:  # the row stays: the next sweep tries again
            done.failed += 1
            _log.warning("files.purge_failed", file_id=file.id, error=str(exc))
            return
        done.purged += 1
        done.bytes_freed += freed
        FILE_HOUSEKEEPING_FILES.labels("deleted").inc()
        FILE_HOUSEKEEPING_BYTES.inc(freed)

    async def sweep_spool(self) -> int:
        """Remove what a crash left in this node's spool; the number of entries removed.

        Call it only while no upload streams to this node (at start).
        """
        spool = trio.Path(self._files.spool_dir)
        removed = freed = 0
        for entry in sorted(await spool.iterdir()):
            if entry.name.endswith(PART_SUFFIX):
                pass  # an upload the crash interrupted: never recorded
            else:
                file_id = entry.name.removesuffix(WORK_SUFFIX)
                file = await self._store.get_file(file_id)
                if (
                    file is not None
                    and file.deleted_at is None
                    and file.state in (FileState.PENDING, FileState.SCANNING)
                    and file.node == self._files.node_name
                ):
                    continue  # the pipeline's: it queues it again
            freed += await trio.to_thread.run_sync(_remove, Path(entry))
            removed += 1
        if removed:
            FILE_HOUSEKEEPING_FILES.labels("spool").inc(removed)
            FILE_HOUSEKEEPING_BYTES.inc(freed)
            _log.info("files.spool_swept", removed=removed, bytes_freed=freed)
        return removed


async def remove_bytes(storage: Storage, file: StoredFile) -> int:
    """Remove every stored variant of `file`; the bytes they took (0 if already gone)."""
    freed = 0
    for key in (original_key(file.id), *(variant_key(file.id, v.name) for v in file.variants)):
        with contextlib.suppress(ObjectNotFound):  # gone already: 0 bytes freed
            freed += await storage.size(key)
    # The whole prefix, not only the keys above: a crash may have left a thumbnail
    # stored before its file was READY (and its variants recorded).
    await storage.delete_prefix(f"files/{file.id}")
    return freed


def _remove(path: Path) -> int:
    """Delete a spool entry (file or folder); the bytes it took. Missing: 0."""
    try:
        if path.is_dir():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path, ignore_errors=True)
            return size
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        return size
    except FileNotFoundError:
        return 0
