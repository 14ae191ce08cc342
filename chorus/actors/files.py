"""The file pipeline: every upload is checked, scanned and stored, or rejected (issue #13).

An upload's bytes wait in this node's spool (`<spool>/<file id>`) while its
record is PENDING. The pipeline takes file ids from a queue and, for each:
sniffs and checks the type (PENDING -> SCANNING, or REJECTED), verifies and
re-encodes images with their thumbnails (CPU work in worker threads, a few
at a time), then has the original bytes virus-scanned. The type and image
checks run first: clamd decodes images too and took 84 s on a PNG bomb
(docs/decisions.md). Then the file (the re-encoded image for images) and its
thumbnails go to storage under `files/<id>/original` and `files/<id>/<bound>`
and the file becomes READY with what was found, or REJECTED with a stable
reason (`chorus.files.Rejection`). Only then is its spool file deleted.

Fail closed: while the scanner or the storage cannot be reached the file
stays SCANNING (never delivered) and the step is retried with a capped
exponential backoff. While the store is unavailable the whole file is
retried the same way, its spooled bytes kept. When a node starts, the pipeline queues again every
file its spool still holds (`Store.unfinished_files(node)`); a file whose
spool bytes are gone is REJECTED `interrupted`.

Each final state is passed to `on_done`: `FileNotices.checked` tells the
uploader's connections on every node with a `file` frame. Logs name
files by id and reason only: never their contents, names or URLs.
"""

from __future__ import annotations

import math
import secrets
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, Literal, Protocol, TypeVar

import attrs
import structlog
import trio

from chorus import protocol
from chorus.cluster import Bus
from chorus.files import (
    INLINE_SAFE,
    ImageRejected,
    ProcessedImage,
    Rejection,
    ScannerUnavailable,
    ScanResult,
    ScanStatus,
    StorageUnavailable,
    check_type,
    content_disposition,
    process_image,
)
from chorus.metrics import (
    FILE_OUTCOMES,
    FILE_PIPELINE_QUEUE,
    FILE_PIPELINE_RETRIES,
    FILE_REJECTIONS,
)
from chorus.persistence import (
    FileChecks,
    FileState,
    FileVariant,
    Store,
    StoredFile,
    StoreUnavailable,
    now_ms,
)
from chorus.services import FileServices

from .events import file_info

_log = structlog.get_logger("chorus.files")

T = TypeVar("T")

WORK_SUFFIX = ".work"
"""The folder beside a spooled file where its re-encoded image and thumbnails are made."""

FileDone = Callable[[StoredFile], Awaitable[None]]
"""Called with a file's row once it is READY or REJECTED."""


@attrs.frozen(kw_only=True)
class PipelineLimits:
    """How hard the pipeline works and how patiently it retries."""

    max_pixels: int
    max_frames: int
    workers: int = 2
    """Files checked at once (each may hold one CPU in a thread)."""
    retry_first: float = 1.0
    """Seconds before the first retry of an unreachable scanner or storage."""
    retry_max: float = 60.0
    """The longest wait between two retries."""


OPAQUE: Final = "application/octet-stream"
"""The type an end-to-end encrypted file is stored and served with: bytes, nothing more."""


def spool_path(spool_dir: Path, file_id: str) -> Path:
    """Where an upload's bytes wait for the pipeline."""
    return spool_dir / file_id


def original_key(file_id: str) -> str:
    """The storage key of a file's delivered bytes."""
    return f"files/{file_id}/original"


def variant_key(file_id: str, variant: str) -> str:
    """The storage key of a variant: `original` or a thumbnail's bound (`320`, `1280`)."""
    return f"files/{file_id}/{variant}"


class FilePipeline:
    """The queue of files to check on this node and the workers that check them.

    `submit` never waits. The queue survives a restart of `run` (a
    supervisor's), and `run` queues again whatever the store says this node
    has not finished, so no file is forgotten; a file is never in the queue
    twice.
    """

    def __init__(
        self,
        store: Store,
        files: FileServices,
        limits: PipelineLimits,
        on_done: FileDone | None = None,
    ) -> None:
        self._store = store
        self._files = files
        self._limits = limits
        self._on_done = on_done
        self._send, self._receive = trio.open_memory_channel[str](math.inf)
        self._queued: set[str] = set()
        self._cpu = trio.CapacityLimiter(limits.workers)

    def submit(self, file_id: str) -> None:
        """Queue a spooled file for its checks (no-op if it is queued already)."""
        if file_id in self._queued:
            return
        self._queued.add(file_id)
        FILE_PIPELINE_QUEUE.set(len(self._queued))
        self._send.send_nowait(file_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Queue this node's unfinished files, then check files until cancelled."""
        for file in await self._store.unfinished_files(self._files.node_name):
            self.submit(file.id)
        task_status.started()
        async with trio.open_nursery() as nursery:
            for _ in range(self._limits.workers):
                nursery.start_soon(self._work)

    async def _work(self) -> None:
        async for file_id in self._receive:
            try:
                await self._retrying_store(file_id)
            except Exception as exc:
                # A bug (or a refused move): the file stays unfinished, to be taken up
                # again when the node restarts; the other files go on.
                _log.error("files.pipeline_failed", file_id=file_id, exc_info=exc)
            finally:
                self._queued.discard(file_id)
                FILE_PIPELINE_QUEUE.set(len(self._queued))

    async def _retrying_store(self, file_id: str) -> None:
        """`_process(file_id)`, again while the store is unavailable (capped backoff).

        Each attempt starts from the file's row: the steps already done are
        redone or skipped (moves never go back, storage puts replace), and the
        spooled bytes stay until the file is finished.
        """
        delay = self._limits.retry_first
        while True:
            try:
                await self._process(file_id)
                return
            except StoreUnavailable as exc:
                FILE_PIPELINE_RETRIES.labels("store").inc()
                _log.warning(
                    "files.store_unavailable", file_id=file_id, retry_in=delay, error=str(exc)
                )
            await trio.sleep(delay)
            delay = min(delay * 2, self._limits.retry_max)

    async def _process(self, file_id: str) -> None:
        file = await self._store.get_file(file_id)
        spool = spool_path(self._files.spool_dir, file_id)
        if (
            file is None
            or file.deleted_at is not None  # deleted while waiting: never checked nor stored
            or file.state in (FileState.READY, FileState.REJECTED)
        ):
            await trio.to_thread.run_sync(_remove, spool)
            return
        work = spool.with_name(file_id + WORK_SUFFIX)
        keep_spool = False
        try:
            if not await trio.Path(spool).is_file():
                await self._finish(file, FileState.REJECTED, reason=Rejection.INTERRUPTED)
                return
            await self._check(file, spool, work)
        except StoreUnavailable:
            keep_spool = True  # the next attempt needs the bytes
            raise
        finally:
            with trio.CancelScope(shield=True):
                if not keep_spool:
                    await trio.to_thread.run_sync(_remove, spool)
                await trio.to_thread.run_sync(_remove, work)

    async def _check(self, file: StoredFile, spool: Path, work: Path) -> None:
        if file.encrypted:
            await self._store_opaque(file, spool)
            return
        verdict = await trio.to_thread.run_sync(check_type, spool, file.declared_type)
        if verdict.rejection is not None:
            await self._finish(file, FileState.REJECTED, reason=verdict.rejection)
            return
        if file.state is FileState.PENDING:
            file = await self._store.move_file(file.id, FileState.SCANNING, now_ms())
        image = None
        if verdict.content_type in INLINE_SAFE:
            try:
                image = await self._process_image(spool, work, verdict.content_type)
            except ImageRejected as rejected:
                await self._finish(file, FileState.REJECTED, reason=rejected.reason)
                return
        result = await self._retrying(file, "scan", lambda: self._files.scanner.scan(spool))
        if result.status is ScanStatus.INFECTED:
            _log.warning("files.infected", file_id=file.id, signature=result.signature)
            await self._finish(file, FileState.REJECTED, reason=Rejection.INFECTED)
            return
        checks = await self._store_bytes(file, spool, verdict.content_type, image, result)
        await self._finish(file, FileState.READY, checks=checks)

    async def _store_opaque(self, file: StoredFile, spool: Path) -> None:
        """An end-to-end encrypted file: its bytes as they came, as `application/octet-stream`.

        No type check, image processing or scan: they would only see ciphertext,
        and could protect nobody (docs/security.md). Its receivers decrypt it.
        """
        if file.state is FileState.PENDING:
            file = await self._store.move_file(file.id, FileState.SCANNING, now_ms())
        await self._put(file, "original", spool, OPAQUE)
        checks = FileChecks(content_type=OPAQUE, scan="unscanned")
        await self._finish(file, FileState.READY, checks=checks)

    async def _process_image(self, spool: Path, work: Path, content_type: str) -> ProcessedImage:
        limits = self._limits

        def process() -> ProcessedImage:
            work.mkdir(exist_ok=True)
            return process_image(
                spool,
                work,
                content_type=content_type,
                max_pixels=limits.max_pixels,
                max_frames=limits.max_frames,
            )

        return await trio.to_thread.run_sync(process, limiter=self._cpu)

    async def _store_bytes(
        self,
        file: StoredFile,
        spool: Path,
        content_type: str,
        image: ProcessedImage | None,
        result: ScanResult,
    ) -> FileChecks:
        """Put the original (re-encoded if an image) and thumbnails; what READY records."""
        source, stored_type = (image.path, image.content_type) if image else (spool, content_type)
        await self._put(file, "original", source, stored_type)
        variants = []
        for thumbnail in image.thumbnails if image else ():
            name = str(thumbnail.bound)
            await self._put(file, name, thumbnail.path, thumbnail.content_type)
            variants.append(
                FileVariant(
                    name=name,
                    width=thumbnail.width,
                    height=thumbnail.height,
                    size=(await trio.Path(thumbnail.path).stat()).st_size,
                    content_type=thumbnail.content_type,
                )
            )
        scan: Literal["clean", "unscanned"] = (
            "clean" if result.status is ScanStatus.CLEAN else "unscanned"
        )
        return FileChecks(
            content_type=stored_type,
            scan=scan,
            width=image.width if image else None,
            height=image.height if image else None,
            variants=tuple(variants),
        )

    async def _put(self, file: StoredFile, variant: str, source: Path, content_type: str) -> None:
        disposition = content_disposition(file.name, content_type)
        storage = self._files.storage

        async def put() -> None:
            await storage.put(
                variant_key(file.id, variant),
                source,
                content_type=content_type,
                content_disposition=disposition,
            )

        await self._retrying(file, "storage", put)

    async def _retrying(self, file: StoredFile, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """`step()`, again and again while its service is unreachable (capped backoff)."""
        delay = self._limits.retry_first
        while True:
            try:
                return await step()
            except (ScannerUnavailable, StorageUnavailable) as exc:
                FILE_PIPELINE_RETRIES.labels(what).inc()
                _log.warning(
                    f"files.{what}_unavailable", file_id=file.id, retry_in=delay, error=str(exc)
                )
            await trio.sleep(delay)
            delay = min(delay * 2, self._limits.retry_max)

    async def _finish(
        self,
        file: StoredFile,
        state: FileState,
        *,
        reason: Rejection | None = None,
        checks: FileChecks | None = None,
    ) -> None:
        done = await self._store.move_file(
            file.id, state, now_ms(), reason=reason.value if reason else None, checks=checks
        )
        FILE_OUTCOMES.labels(state.value).inc()
        if reason in (Rejection.INFECTED, Rejection.INTERRUPTED):  # the checks count the others
            FILE_REJECTIONS.labels(reason.value).inc()
        _log.info("files.checked", file_id=file.id, state=state.value, reason=done.reason)
        if self._on_done is not None:
            await self._on_done(done)


def _remove(path: Path) -> None:
    """Delete a spooled file or work folder; a missing one is fine."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


FILES_TOPIC = "files"
"""Bus topic every node listens to: `<origin node> <user id> <file frame JSON>`."""


class Uploader(Protocol):
    """What a connection offers (a `ChatConnection` fits)."""

    def send(self, payload: bytes) -> bool: ...


class FileNotices:
    """Tells every connection of a file's uploader, on every node, that it was checked.

    `checked` (the pipeline's `on_done`) sends a `file` frame to the owner's
    connections here and publishes it for the other nodes, which send it to
    theirs (`delivered_elsewhere`); a node ignores its own publication, so
    each connection gets the frame once. Best effort, like memberships: the
    bus may lose a publication, and `GET /api/v1/files/{id}` has the truth.
    """

    def __init__(self, connections_of: Callable[[str], Sequence[Uploader]], bus: Bus | None):
        self._connections_of = connections_of
        self._bus = bus
        self._origin = secrets.token_hex(6).encode()

    async def checked(self, file: StoredFile) -> None:
        """`file` became READY or REJECTED: tell its owner's connections everywhere."""
        payload = protocol.encode(protocol.FileUpdate(file=file_info(file)))
        self._tell(file.owner_id, payload)
        if self._bus is None:
            return
        envelope = b" ".join((self._origin, file.owner_id.encode(), payload))
        try:
            await self._bus.publish(FILES_TOPIC, envelope)
        except Exception as exc:  # best effort: the store has the file's state
            _log.warning("files.notice_not_published", error=str(exc))

    def delivered_elsewhere(self, envelope: bytes) -> None:
        """A bus envelope from `FILES_TOPIC`: send it to this node's connections of the user."""
        origin, _, rest = envelope.partition(b" ")
        if origin == self._origin:
            return  # told here already
        user_id, _, payload = rest.partition(b" ")
        try:
            frame = protocol.decode_server_frame(payload)
        except protocol.ProtocolError as exc:  # not from a Chorus node of ours
            _log.warning("files.notice_dropped", reason="malformed", error=str(exc))
            return
        if isinstance(frame, protocol.FileUpdate):
            self._tell(user_id.decode(errors="replace"), payload)

    def _tell(self, user_id: str, payload: bytes) -> None:
        for connection in self._connections_of(user_id):
            connection.send(payload)
