"""`chorus backup` and `chorus restore` for the embedded default: SQLite plus local files.

A backup is a directory: `chorus.db` (a consistent copy made with SQLite's
online backup API, so the node may keep serving meanwhile), `files/` (the
local file store), `node-id`, and `chorus-backup.json` (what it holds). The
database is copied first, in one step, so it is one consistent snapshot; the
files after it: every file a message of the snapshot names is already on
disk by then (a file is stored before its message), and files stored later
are harmless extras. PostgreSQL and S3 are backed up with their own tools
(docs/operations.md, Backups).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

DATABASE_FILE = "chorus.db"
FILES_DIR = "files"
NODE_NAME_FILE = "node-id"
"""File in `data_dir` holding the node's stable name (its upload spool is found again by it)."""
MANIFEST = "chorus-backup.json"
LOCK_FILE = "serve.lock"
"""Held (shared) by every `chorus serve` on the data dir; `restore` needs it exclusively."""
FORMAT = 1
_PROGRESS_EVERY = 100
"""Files copied between two progress lines."""

Report = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, for the operator."""


@attrs.frozen
class Summary:
    """What a backup or restore copied."""

    database_bytes: int
    files: int
    file_bytes: int


@contextlib.contextmanager
def serving_lock(data_dir: Path) -> Iterator[None]:
    """Held by `chorus serve` while it runs: `restore` refuses a data dir whose lock is taken.

    A shared `flock`, so it changes nothing for nodes themselves; the kernel
    drops it when the process ends, however it ends (SIGKILL included).
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def backup(data_dir: Path, dest: Path, report: Report) -> Summary:
    """Copy the node's database and local files from `data_dir` into the new directory `dest`."""
    source = data_dir / DATABASE_FILE
    if not source.is_file():
        raise BackupError(f"no database at {source} (is --data-dir right?)")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} exists and is not empty: back up into a new directory")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    report(f"database: copying {source}")
    database_bytes = _copy_database(source, dest / DATABASE_FILE)
    report(f"database: {database_bytes} bytes")
    node_name = data_dir / NODE_NAME_FILE
    if node_name.is_file():
        shutil.copy2(node_name, dest / NODE_NAME_FILE)
    files, file_bytes = _copy_files(data_dir / FILES_DIR, dest / FILES_DIR, report)
    summary = Summary(database_bytes, files, file_bytes)
    manifest = {"format": FORMAT, "created_at": int(time.time()), **attrs.asdict(summary)}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return summary


def restore(source: Path, data_dir: Path, report: Report, *, force: bool = False) -> Summary:
    """Copy the backup in `source` into `data_dir`.

    Refuses a data dir a running node holds (always) and a non-empty one
    (unless `force`: then its database, files and node name are replaced).
    """
    if not (source / MANIFEST).is_file() or not (source / DATABASE_FILE).is_file():
        raise BackupError(f"{source} is not a chorus backup (no {MANIFEST} or {DATABASE_FILE})")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _exclusive(data_dir):
        leftovers = [path for path in data_dir.iterdir() if path.name != LOCK_FILE]
        if leftovers and not force:
            raise BackupError(
                f"{data_dir} is not empty: restore into a new directory, or pass --force "
                "to replace its database and files"
            )
        for name in (DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm"):
            (data_dir / name).unlink(missing_ok=True)
        shutil.rmtree(data_dir / FILES_DIR, ignore_errors=True)
        report(f"database: copying {source / DATABASE_FILE}")
        database_bytes = _copy_database(source / DATABASE_FILE, data_dir / DATABASE_FILE)
        report(f"database: {database_bytes} bytes")
        if (source / NODE_NAME_FILE).is_file():
            shutil.copy2(source / NODE_NAME_FILE, data_dir / NODE_NAME_FILE)
        files, file_bytes = _copy_files(source / FILES_DIR, data_dir / FILES_DIR, report)
    return Summary(database_bytes, files, file_bytes)


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"a running `chorus serve` uses {data_dir}: stop it before restoring"
            ) from None
        yield
    finally:
        os.close(fd)


def _copy_database(source: Path, target: Path) -> int:
    """SQLite's online backup in one step: one read transaction, so one consistent snapshot.

    In WAL mode (the store's) a reader blocks no writer, so the serving node
    goes on storing meanwhile. A multi-step copy would restart whenever the
    node writes between two steps, and could never finish under load.
    """
    src = sqlite3.connect(source, timeout=30)  # only reads (it exists: checked before)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)  # it holds password hashes and the signing key
    return target.stat().st_size


def _copy_files(source: Path, target: Path, report: Report) -> tuple[int, int]:
    """Copy the file store's objects (not the dot-files of writes in progress)."""
    if not source.is_dir():
        report("files: none")
        return 0, 0
    paths = sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.parts[-1:])
    )
    copied = size = 0
    for path in paths:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            shutil.copy2(path, destination)
        except FileNotFoundError:
            continue  # deleted since it was listed: so is its message
        copied += 1
        size += destination.stat().st_size
        if copied % _PROGRESS_EVERY == 0:
            report(f"files: {copied}/{len(paths)} ({size} bytes)")
    report(f"files: {copied} ({size} bytes)")
    return copied, size
