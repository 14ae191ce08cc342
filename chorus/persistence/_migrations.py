"""Versioned schema migrations shipped as package data (`migrations/<dialect>/NNNN_name.sql`)."""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Literal, TypeAlias

import attrs

Dialect: TypeAlias = Literal["sqlite", "postgres"]
"""A directory under `migrations/`: one per backend, since their SQL differs."""

_FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")


@attrs.frozen(kw_only=True)
class Migration:
    """One schema change; versions start at 1 and have no gaps."""

    version: int
    name: str
    sql: str


@functools.cache
def load_migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """Every migration of `dialect`, in version order.

    Raises `RuntimeError` if the shipped files are misnamed or their versions
    are not 1, 2, 3…: that is a packaging bug, and applying a partial or
    misordered set would corrupt databases.
    """
    folder = resources.files("chorus.persistence") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise RuntimeError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        found.append(
            Migration(
                version=int(match["version"]),
                name=match["name"],
                sql=entry.read_text(encoding="utf-8"),
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(
            f"{dialect} migration versions must be 1, 2, 3… without gaps: {versions}"
        )
    return tuple(found)
